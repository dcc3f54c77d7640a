"""Reference solutions to the exercises of notebooks/03_advantage.ipynb.

Each function has the name and signature of the notebook's stub. `justrl_lite.course.exercises.exercise` swaps them in
when JUSTRL_SOLUTIONS=1 (tests/test_exercises.py does); a student never needs this file.
"""

from __future__ import annotations

import math


def advantage_of_correct(k: int, n: int) -> float:
    """Exercise 1: k scores of +1 and n - k of -1 have mean (2k - n)/n and unbiased std 2 sqrt(k(n-k) / (n(n-1)));
    (1 - mean) / std = sqrt((n - 1)(n - k) / (n k))."""
    return math.sqrt((n - 1) * (n - k) / (n * k))


def mixed_fraction(p: float, n: int) -> float:
    """Exercise 2: a group carries signal unless all n samples are right (p^n) or all wrong ((1 - p)^n)."""
    return 1 - p**n - (1 - p) ** n
