"""benchmarks/step_phases.py runs end to end and reports both rollout paths' phases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_step_phases_reports_both_rollout_paths():
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_phases.py"), "--steps", "1"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in ("wall seconds", "process CPU seconds"):
        assert table in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| generate |", "| drop-finished |"))]
    assert len(rows) == 4, proc.stdout
    for row in rows:  # every cell is a number of seconds, the step total is positive
        cells = [c.strip() for c in row.strip("|").split("|")[1:]]
        assert float(cells[-1]) > 0 and all(float(c.split()[0]) >= 0 for c in cells), row


def test_step_phases_refuses_an_unknown_variant():
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_phases.py"), "--variants", "vllm"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--variants must name" in proc.stderr


def test_step_phases_from_a_metrics_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    steps = [dict(step=s, **{"time/rollout": r, "time/reward": 0.0, "time/old_logprob": 1.0, "time/update": u,
                             "time/step": r + 1.0 + u}) for s, r, u in ((1, 2.0, 1.0), (2, 4.0, 3.0), (3, 9.0, 9.0))]
    path.write_text("\n".join(json.dumps(r) for r in [{"step": 0, "val/pass@1": 0.5}, *steps]) + "\n")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "step_phases.py"), "--from-metrics", str(path),
                           "--last-step", "2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # steps 1-2: rollout median 3.0, sum 6 of 12 s; old log-prob 1.0, 2 of 12; update median 2.0, 4 of 12
    assert "| 3.00 (50%) | 0.00 (0%) | 1.00 (17%) | 2.00 (33%) | 6.00 | 12 s |" in proc.stdout, proc.stdout
