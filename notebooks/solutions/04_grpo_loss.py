"""Reference solutions to the exercises of notebooks/04_grpo_loss.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations


def prob_where_clip_starts(p_old: float, eps_high: float) -> float:
    """Exercise 1: for A > 0 the ratio p / p_old is clipped above 1 + eps_high, i.e. once p > p_old (1 + eps_high)."""
    return p_old * (1 + eps_high)


def authors_token_weights(micro_lengths: list[list[int]]) -> list[float]:
    """Exercise 2: a micro-batch's token mean (1 / its tokens) scaled by its share of the mini-batch's responses
    (its responses / M): weight = m_j / (M * T_j)."""
    M = sum(len(lens) for lens in micro_lengths)
    return [len(lens) / (M * sum(lens)) for lens in micro_lengths]
