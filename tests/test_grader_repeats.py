"""The evaluation grader's defences against repetition and size (issue 22, item 6): identical pairs are graded
once per call, and a huge digit string or an exponent tower never reaches SymPy."""

from __future__ import annotations

import time

import pytest

from justrl_lite.grading.grade import MAX_SYMPY_DIGITS, grade, grade_many, too_big_for_sympy


def boxed(s: str) -> str:
    return f"so the answer is \\boxed{{{s}}}"


@pytest.mark.parametrize("grader", ["math-verify", "paper"])
def test_identical_pairs_are_graded_once_with_the_same_verdicts(pool, grader):
    slow = boxed("(10^{100})!") if grader == "math-verify" else boxed("(10**100)!")
    truth = "2" if grader == "math-verify" else "\\frac{1}{3}"
    pairs = [(slow, truth)] * 8 + [(boxed("\\frac{2}{4}"), "\\frac{1}{2}"), (boxed("0.5"), "\\frac{1}{2}"),
                                   (boxed("x+1"), "1+x"), (boxed("7"), "7")] * 3
    one_by_one = [grade(r, g, 2.0, pool=pool, grader=grader) for r, g in pairs[7:12]]
    checks, timeouts = pool.stats["checks"], pool.stats["timeouts"]
    started = time.monotonic()
    verdicts = grade_many([r for r, _ in pairs], [g for _, g in pairs], 2.0, pool=pool, grader=grader)
    elapsed = time.monotonic() - started
    assert verdicts[7:12] == one_by_one and verdicts[:8] == [False] * 8
    assert verdicts[12:] == verdicts[8:12] * 2 and verdicts[8:12] == one_by_one[1:]
    assert pool.stats["timeouts"] - timeouts == 1  # eight copies of the slow answer: one timeout, not eight
    assert pool.stats["checks"] - checks <= 4  # at most one SymPy check per distinct pair
    assert elapsed < 2.0 * 2 + 3, elapsed


@pytest.mark.parametrize("grader", ["math-verify", "paper"])
def test_huge_numbers_and_towers_are_refused_before_sympy(pool, grader):
    huge = "9" * 20000
    answers = [huge, "1" + "0" * (MAX_SYMPY_DIGITS + 1) + "/3", "9^{9^{9^{9}}}", "10^{10^{10}}", "9**9**9"]
    truth = "\\frac{1}{3}"
    checks = pool.stats["checks"]
    started = time.monotonic()
    assert grade_many([boxed(a) for a in answers] * 10, [truth] * 50, 5.0, pool=pool, grader=grader) == [False] * 50
    assert pool.stats["checks"] == checks and time.monotonic() - started < 2.0
    assert too_big_for_sympy({"kind": "paper", "expr": "(9**9**9)-(1)"})
    assert not too_big_for_sympy({"kind": "math-verify", "gold": "e^{x^2}", "pred": "(x^2)^3 + 2^{100}"})
