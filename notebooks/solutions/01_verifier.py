"""Reference solutions to the exercises of notebooks/01_verifier.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

from justrl_lite.verifier import DAPO_INNER_WINDOW


def fits_window(answer: str) -> bool:
    """Exercise 1: the box must start inside the last 100 characters, so the whole string \\boxed{answer}
    (7 + len(answer) + 1 characters) must be at most 100 long."""
    return len("\\boxed{" + answer + "}") <= DAPO_INNER_WINDOW


def predicted_rewards() -> list[int]:
    """Exercise 2: exact box, a space inside the box (not the exact string), box followed by more than 100
    characters, the last box counts, box never closed, \\text{42} is not the string 42."""
    return [+1, -1, -1, +1, -1, -1]
