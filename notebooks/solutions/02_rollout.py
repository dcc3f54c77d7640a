"""Reference solutions to the exercises of notebooks/02_rollout.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

from justrl_lite.rollout import RolloutBatch


def rows_of_prompt(i: int, n: int) -> list[int]:
    """Exercise 1: prompt-major, prompt i's responses are the n consecutive rows i*n .. i*n + n - 1."""
    return list(range(i * n, (i + 1) * n))


def response_logprob(batch: RolloutBatch, row: int) -> float:
    """Exercise 2: log pi(y | x) = sum_t log pi(y_t | x, y_<t) over the response mask (padding excluded)."""
    mask = batch.response_mask[row].bool()  # (R,)
    return float(batch.sampling_logprobs[row][mask].sum())
