"""Reference solutions to the exercises of notebooks/00_overview.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

from justrl_lite.benchmarks import BENCHMARKS


def total_responses(cfg) -> int:
    """Exercise 1: every step samples rollouts_per_prompt responses for each of its prompts_per_step prompts."""
    return cfg.prompts_per_step * cfg.rollouts_per_prompt * cfg.total_steps


def least_helped(results, base: str, rl: str) -> str:
    """Exercise 2: the RL row minus the base row over the benchmark columns; the column of the smallest gain."""
    gain = results.loc[rl, list(BENCHMARKS)] - results.loc[base, list(BENCHMARKS)]
    return str(gain.astype(float).idxmin())
