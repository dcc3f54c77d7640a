"""Reference solutions to the exercises of notebooks/02_rollout.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

from justrl_lite.rollout import RolloutBatch


def response_logprob(batch: RolloutBatch, row: int) -> float:
    """Exercise 1: log pi(y | x) = sum_t log pi(y_t | x, y_<t) over the response mask (padding excluded)."""
    mask = batch.response_mask[row].bool()  # (R,)
    return float(batch.sampling_logprobs[row][mask].sum())
