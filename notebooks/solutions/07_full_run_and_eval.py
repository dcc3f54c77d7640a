"""Reference solutions to the exercises of notebooks/07_full_run_and_eval.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations


def run_cost(steps: int, reference_steps: int, reference_days: float, gpus: int) -> tuple[float, float]:
    """Exercise 1: GPU-hours per step = gpus x reference_days x 24 / reference_steps; days scale with the steps."""
    gpu_hours_per_step = gpus * reference_days * 24 / reference_steps
    gpu_hours = gpu_hours_per_step * steps
    return gpu_hours, gpu_hours / (gpus * 24)


def avg_at_n(records: list[dict]) -> float:
    """Exercise 2: group the lines by problem, average each problem's correct flags, then average the problems."""
    per_problem: dict[str, list[bool]] = {}
    for r in records:
        per_problem.setdefault(str(r["example_id"]), []).append(bool(r["correct"]))
    return 100 * sum(sum(c) / len(c) for c in per_problem.values()) / len(per_problem)
