"""Reference solutions to the exercises of notebooks/06_dynamics_and_ablations.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

import numpy as np

from justrl_lite.ablation_report import WINDOW
from justrl_lite.plots import VAL_KEY


def first_step_reaching(rows: list[dict], threshold: float) -> int | None:
    """Exercise 1: the logs are in step order; the first row with a validation at or above the threshold."""
    return next((r["step"] for r in rows if r.get(VAL_KEY) is not None and r[VAL_KEY] >= threshold), None)


def seed_spread(group: list[list[dict]], key: str) -> float:
    """Exercise 2: the final value per run (last validation, or the mean of the last WINDOW = 10 training steps),
    then max - min over the runs."""
    finals = []
    for rows in group:
        values = [r[key] for r in rows
                  if (r["step"] > 0 or key == VAL_KEY) and isinstance(r.get(key), (int, float))]
        finals.append(values[-1] if key == VAL_KEY else float(np.mean(values[-WINDOW:])))
    return max(finals) - min(finals)
