"""benchmarks/vs_trl.py runs end to end (smoke mode: one small step of each trainer, alternated) when TRL is
installed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl",
                    reason="TRL is not installed: `pip install -e \".[bench]\"` to run the vs-TRL benchmark test")

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_vs_trl_smoke_runs_both_trainers_and_reports(tmp_path):
    out = tmp_path / "vs_trl.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_trl.py"), "--smoke", "--quiet",
                           "--json", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| 1 | justrl_lite |" in proc.stdout and "| 1 | TRL GRPOTrainer |" in proc.stdout
    assert "per-step wall-time ratio justrl_lite / TRL: median" in proc.stdout
    assert "per-step CPU-time ratio justrl_lite / TRL: median" in proc.stdout
    sides = json.loads(out.read_text())["1"]
    assert set(sides) == {"justrl_lite", "TRL GRPOTrainer"}
    for name, side in sides.items():
        assert len(side["wall"]) == len(side["cpu"]) == len(side["tokens"]) == 1, name
        assert side["wall"][0] > 0 and side["cpu"][0] > 0 and side["tokens"][0] > 0, name
        assert 0.0 <= side["val"]["val/pass@1"] <= 1.0, name
        assert -1.0 <= side["reward"][0] <= 1.0, name  # mean strict reward of the step's rollouts
        assert side["param_change"] > 0, f"{name} did not update its policy"
    assert set(sides["justrl_lite"]["phases"]) >= {"time/rollout", "time/old_logprob", "time/update"}
    # the table can be printed again from the file, without a run
    again = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "vs_trl.py"), "--report", str(out)], cwd=ROOT,
                           env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.splitlines()[:4] == proc.stdout.splitlines()[:4]


def _vs_trl_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("vs_trl", ROOT / "benchmarks" / "vs_trl.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["vs_trl"] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def test_pass_at_1_line_is_the_paired_t_test_by_seed():
    import math
    import random

    vs = _vs_trl_module()
    rng = random.Random(1234)
    for trial in range(20):
        n = rng.randint(2, 7)
        shift = rng.choice([0.0, 0.05])  # no effect, or justrl_lite 5 points higher on every seed
        pairs = {}
        for seed in range(n):
            trl = rng.uniform(0.5, 0.7)
            ours = trl + shift + rng.gauss(0, 0.01)
            pairs[seed] = (vs.Side("justrl_lite", val={"val/pass@1": ours}), vs.Side("TRL", val={"val/pass@1": trl}))
        d = [100 * (o.val["val/pass@1"] - t.val["val/pass@1"]) for o, t in pairs.values()]
        mean = sum(d) / n
        se = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1)) / math.sqrt(n)
        line = vs.pass_at_1_line(pairs)
        assert f"{mean:+.2f} +- {se:.2f} points (SE, {n} seeds" in line, line
        t = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447}[n - 1]
        expected = ("justrl_lite higher" if mean > t * se
                    else ("justrl_lite lower" if mean < -t * se else "no difference"))
        assert f"95% paired t: {expected}" in line, (trial, line)
    assert "one seed: no test" in vs.pass_at_1_line({1: pairs[0]})
