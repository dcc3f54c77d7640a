"""verl's logged metrics read as justrl_lite metric rows, so ``python -m justrl_lite.plots`` draws verl runs too.

verl 0.9.1 logs the same quantities under its own names; ``read_run_metrics`` accepts any of
  * a native ``metrics.jsonl`` (returned as is),
  * a folder holding verl's TensorBoard event files (``$TENSORBOARD_DIR``, ``<output_dir>/tensorboard``),
  * verl's console output (lines ``step:12 - actor/entropy:1.31 - ...``; the bridge keeps ``verl_console.log``),
  * verl's ``file`` logger JSONL (lines ``{"step": 12, "data": {...}}``),
and returns one row per step, ``{"step": s, <justrl key>: value, ...}``, keeping verl's own keys beside ours.

Validation: verl logs ``val-core/<benchmark>/acc/mean@<n>`` (pass@1 averaged over n samples, graded by
``justrl_lite.scale.verl_reward``) per benchmark; ``val/pass@1`` is their plain mean over benchmarks (the native
trainer pools all held-out prompts, so the two differ when benchmarks differ in size).
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

VERL_TO_JUSTRL = {
    "critic/score/mean": "reward/mean",
    "actor/entropy": "policy/entropy",
    "response_length/mean": "response_length/mean",
    "response_length/max": "response_length/max",
    "response_length/clip_ratio": "response_length/truncated_frac",
    "actor/pg_loss": "actor/pg_loss",
    "actor/pg_clipfrac": "actor/clip_frac",
    "actor/pg_clipfrac_lower": "actor/dual_clip_frac",
    "actor/ppo_kl": "actor/approx_kl",
    "actor/grad_norm": "actor/grad_norm",
    "actor/lr": "actor/lr",
}
"""verl 0.9.1 metric name -> the native trainer's name for the same quantity (``justrl_lite.metrics``)."""

_VAL_ACC = re.compile(r"^val-core/(?P<source>.+)/acc/mean@\d+$")
_VAL_SCORE = re.compile(r"^val-aux/(?P<source>.+)/score/mean@\d+$")
_CONSOLE_STEP = re.compile(r"step:(\d+) - (.*)$")
_NUMBER = re.compile(r"^(?:np\.\w+\()?\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf|-inf)\s*\)?$")


def read_run_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Metric rows from a native ``metrics.jsonl`` or any of verl's logs (see the module docstring)."""
    from justrl_lite.metrics import read_metrics

    path = Path(path)
    if path.is_dir():
        return to_justrl_rows(read_tensorboard(path))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such metrics file or TensorBoard folder")
    first = next((line for line in path.read_text(errors="replace").splitlines() if line.strip()), "")
    try:
        record = json.loads(first)
    except json.JSONDecodeError:
        record = None
    if isinstance(record, dict) and "data" in record and "step" in record:
        return to_justrl_rows(read_file_logger(path))
    if isinstance(record, dict):
        return read_metrics(path)
    return to_justrl_rows(read_console_log(path))


def read_tensorboard(folder: Path) -> dict[int, dict[str, float]]:
    """step -> {tag: value} from every TensorBoard event file under ``folder``."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    steps: dict[int, dict[str, float]] = defaultdict(dict)
    runs = sorted({p.parent for p in folder.rglob("events.out.tfevents*")})
    for run in runs:
        acc = EventAccumulator(str(run), size_guidance={SCALARS: 0})
        acc.Reload()
        for tag in acc.Tags()[SCALARS]:
            for event in acc.Scalars(tag):
                steps[event.step][tag] = event.value
    return steps


def read_console_log(path: Path) -> dict[int, dict[str, float]]:
    """step -> {name: value} from verl's console lines ``step:N - name:value - ...`` (other lines ignored)."""
    steps: dict[int, dict[str, float]] = defaultdict(dict)
    for line in path.read_text(errors="replace").splitlines():
        match = _CONSOLE_STEP.search(line)
        if not match:
            continue
        for item in match.group(2).split(" - "):
            name, _, text = item.rpartition(":")
            number = _NUMBER.match(text.strip())
            if name and number:
                steps[int(match.group(1))][name.strip()] = float(number.group(1))
    return steps


def read_file_logger(path: Path) -> dict[int, dict[str, float]]:
    """step -> {name: value} from verl's ``file`` logger (one ``{"step", "data"}`` object a line)."""
    steps: dict[int, dict[str, float]] = defaultdict(dict)
    for line in path.read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            steps[int(record["step"])].update({k: float(v) for k, v in record["data"].items()
                                               if isinstance(v, (int, float)) and not isinstance(v, bool)})
    return steps


def to_justrl_rows(steps: dict[int, dict[str, float]]) -> list[dict[str, Any]]:
    """Rename verl metrics to ours (``VERL_TO_JUSTRL``) and average per-benchmark validation into ``val/*``."""
    rows = []
    for step in sorted(steps):
        verl = steps[step]
        row: dict[str, Any] = {"step": step, **verl}
        row.update({ours: verl[theirs] for theirs, ours in VERL_TO_JUSTRL.items() if theirs in verl})
        for pattern, key in ((_VAL_ACC, "val/pass@1"), (_VAL_SCORE, "val/reward")):
            per_source = {m.group("source"): v for name, v in verl.items() if (m := pattern.match(name))}
            row.update({f"{key}/{source}": v for source, v in per_source.items()})
            if per_source:
                # val/pass@1 = plain mean over benchmarks of their avg@n
                row[key] = sum(per_source.values()) / len(per_source)
        rows.append(row)
    return rows
