"""The README's generated table and measured numbers match the code and the stored metrics they cite."""

from __future__ import annotations

import re
from pathlib import Path

from justrl_lite.config import JustRLConfig
from justrl_lite.config_presets import ONE_GPU_REASONS
from justrl_lite.config_tables import diff_table
from justrl_lite.metrics import read_metrics
from justrl_lite.scale.estimate_report import hardware_table

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_diff_table_is_the_generated_one():
    block = re.search(r"<!-- diff-table:start -->\n(.*?)\n<!-- diff-table:end -->", README, flags=re.S)
    assert block, "README lost its diff-table markers"
    assert block.group(1) == diff_table(JustRLConfig.paper(), JustRLConfig.tiny()), (
        "README's paper-vs-tiny table is stale: "
        "regenerate it from diff_table(JustRLConfig.paper(), JustRLConfig.tiny())")


def _block(name: str) -> str:
    block = re.search(rf"<!-- {name}:start -->\n(.*?)\n<!-- {name}:end -->", README, flags=re.S)
    assert block, f"README lost its {name} markers"
    return block.group(1)


def test_readme_hardware_table_is_the_estimators():
    assert _block("hardware-table") == hardware_table(), (
        "README's per-preset hardware table is stale: regenerate it from justrl_lite.scale.estimate.hardware_table()")


def test_readme_one_gpu_table_is_the_generated_one():
    want = diff_table(JustRLConfig.paper(), JustRLConfig.one_gpu(), ONE_GPU_REASONS, names=("paper", "one_gpu"))
    assert _block("one-gpu-diff-table") == want, (
        "README's paper-vs-one_gpu table is stale: regenerate it with diff_table(..., ONE_GPU_REASONS)")


def test_readme_heldout_numbers_come_from_the_stored_tiny_run():
    rows = read_metrics(ROOT / "data" / "tiny_run" / "metrics.jsonl")
    val = {r["step"]: r["val/pass@1"] for r in rows if "val/pass@1" in r}
    line = next(ln for ln in README.splitlines() if ln.startswith("| held-out pass@1"))
    quoted = [float(x) / 100 for x in re.findall(r"([0-9.]+)%", line)]
    header = next(ln for ln in README.splitlines() if ln.startswith("| step |"))
    steps = [int(x) for x in re.findall(r"\d+", header)]
    assert len(quoted) == len(steps) and steps == sorted(val)
    for step, q in zip(steps, quoted):
        assert abs(val[step] - q) < 0.0005, (step, val[step], q)
