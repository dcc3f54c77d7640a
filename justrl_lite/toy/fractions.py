"""The fractions toy task: same-denominator fraction sums whose answers have several correct written forms and
whose solutions take several paths of different lengths, in DAPO-Math-17k's row schema.

A problem adds and takes away fractions over one denominator::

    What is 3/4 - 5/4 + 1/4 + 7/4?

and the ground truth is stored in ONE canonical form, MATH's reduced LaTeX fraction (here ``\\frac{3}{2}``; also
``-2``, ``-\\frac{1}{2}``). A worked solution picks a path and a written form for its boxed answer, e.g. the careful
path::

    All over 4.
    3 - 5 = -2.
    -2 + 1 = -1.
    -1 + 7 = 6.
    6/4 = 3/2.
    </think>

    The answer is \\boxed{\\frac{3}{2}}.

or the shortcut ``3 - 5 + 1 + 7 = 6.`` in one line, or the grouped order ``3 + 1 = 4.``, ``4 + 7 = 11.``,
``11 - 5 = 6.``; the box may hold ``\\frac{3}{2}``, ``\\dfrac{3}{2}``, ``3/2`` or ``1.5``.

Why this task (the first toy, ``task.py``, cannot test the paper's ablations: one written form, one path):
  1. Several correct written forms. ``\\frac{3}{4}``, ``\\dfrac{3}{4}``, ``3/4`` and ``0.75`` (``WRITTEN_FORMS``)
     are the same number; only the canonical one equals the ground truth as a string. The strict training reward
     (``dapo_reward``) scores the others -1, the lenient verifier (``lenient_reward``: normalised string match,
     then SymPy) scores them +1, so the two disagree on a measurable share of the base's samples, which is the
     paper's "+lenient verifier" ablation made visible.
  2. Several valid paths of different lengths (``PATHS``): ``stepwise`` (one operation per line, left to right),
     ``grouped`` (the fractions added first, then the ones taken away: another order, same length) and
     ``shortcut`` (all numerators in one line). The careful paths are longer but more reliable on harder
     problems: the teacher slips on a careful line with a fixed probability, on the shortcut line with a
     probability that grows with the number of operations (``FracNoise``), so which path a policy explores, and
     how long it writes, changes its reward; the base samples all paths and forms, so it has entropy to lose.
  3. Harder problems have more terms (``TERM_CHOICES``: 3 or 4 terms, 2 or 3 operations); numerators are distinct
     small numbers (the "next term" lookup is never ambiguous, as in ``task.py``), running totals may go negative,
     so answers are negative, positive, integers and proper or improper fractions. Denominators
     (``DENOMINATORS``) have no prime factor but 2 and 5, so every answer has an exact decimal form.
  4. Some solutions wander ("Wait, let me check again.") past the 128-token response cap, as in ``task.py``: a
     length penalty has something to remove.
  5. Train and test splits share no problem (the ``signature`` is unique across both), everything is
     deterministic by seed, and rows follow DAPO-Math-17k (``to_row``), so the trainer reads them unchanged.

Train on it with the tiny preset and ``FRACTIONS_OVERRIDES`` (the base:
``python -m justrl_lite.toy.make_fractions_base``). The paper's three ablation arms, 3 seeds each, run with a
response cap of 52 tokens and an overlong buffer of 14, chosen from the base's measured lengths so that the
penalty zone holds about a fifth of its responses (``python -m justrl_lite.toy.overlong_zone``,
``data/toy_frac/overlong_zone.json``); the exact command is ``data/ablations_frac/COMMAND``::

    python -m justrl_lite.ablations --seeds 1 2 3 --out runs/ablations_frac --store data/ablations_frac \\
        model_name_or_path=data/toy_frac/base train_data=data/toy_frac/train.jsonl val_data=data/toy_frac/test.jsonl \\
        max_response_length=52 val_max_response_length=52 overlong_buffer_len=14 total_steps=50 val_every=10
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from justrl_lite.config import PROJECT_ROOT
from justrl_lite.toy.task import distinct_problems, splits_cli, write_split_files

DATA_SOURCE = "toy-frac"
DEFAULT_DIR = PROJECT_ROOT / "data" / "toy_frac"
N_TRAIN = 4000
N_TEST = 500

DENOMINATORS = (2, 4, 5, 8, 10)
"""Every problem's common denominator; only factors 2 and 5, so every answer has a terminating decimal."""
NUMERATOR_RANGE = (1, 9)
"""Numerators of the terms (inclusive); distinct within a problem."""
TOTAL_RANGE = (-5, 15)
"""Running numerator totals stay in this range: a change that would leave it flips its sign."""
TERM_CHOICES = (3, 4)
"""Terms per problem (2 or 3 operations): the difficulty."""

PATHS = ("stepwise", "grouped", "shortcut")
"""Solution paths: one operation a line left to right; additions first, then subtractions; all in one line."""
WRITTEN_FORMS = ("latex", "dfrac", "slash", "decimal")
"""Written forms of the boxed answer: ``\\frac{3}{4}`` (canonical), ``\\dfrac{3}{4}``, ``3/4``, ``0.75``."""

FRACTIONS_OVERRIDES = (
    f"model_name_or_path=data/{DEFAULT_DIR.name}/base",
    f"train_data=data/{DEFAULT_DIR.name}/train.jsonl",
    f"val_data=data/{DEFAULT_DIR.name}/test.jsonl",
    "output_dir=runs/tiny_frac",
)
"""``JustRLConfig.tiny().with_overrides(FRACTIONS_OVERRIDES)`` trains on this task (the same command-line overrides
work for ``python -m justrl_lite.full_run`` and ``python -m justrl_lite.ablations``)."""


@dataclass(frozen=True)
class Problem:
    """One problem: a denominator, a first numerator and the signed numerator changes, left to right."""

    denominator: int
    start: int
    changes: tuple[int, ...]  # signed, e.g. (-5, +1, -7)

    @property
    def total(self) -> int:
        """The numerator of the (unreduced) sum."""
        return self.start + sum(self.changes)

    @property
    def answer(self) -> Fraction:
        return Fraction(self.total, self.denominator)

    @property
    def ground_truth(self) -> str:
        """The answer in its one canonical written form (MATH's reduced LaTeX fraction)."""
        return write_answer(self.answer, "latex")

    @property
    def signature(self) -> tuple[int, ...]:
        """The arithmetic that identifies a problem: no signature is shared between splits."""
        return (self.denominator, self.start, *self.changes)

    @property
    def text(self) -> str:
        d = self.denominator
        terms = "".join(f" {'+' if c > 0 else '-'} {abs(c)}/{d}" for c in self.changes)
        return f"What is {self.start}/{d}{terms}?"


class Demo(NamedTuple):
    """A written solution and what it says: ``text``, whether its answer's value is right, its path and form."""

    text: str
    correct: bool  # the boxed value equals the answer, in whatever written form
    path: str
    form: str
    value: Fraction  # the boxed value


@dataclass(frozen=True)
class FracNoise:
    """How a teacher writes solutions. ``FracNoise()`` writes the clean stepwise solution in canonical form."""

    path_probs: tuple[float, float, float] = (1.0, 0.0, 0.0)
    """Probabilities of ``PATHS`` (stepwise, grouped, shortcut)."""

    form_probs: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)
    """Probabilities of ``WRITTEN_FORMS`` (latex, dfrac, slash, decimal) for the boxed answer."""

    step_error_prob: float = 0.0
    """Probability that a careful (one-operation) line's result is off by 1 or 2 (carried on)."""

    shortcut_error_prob: float = 0.0
    """Probability that the shortcut line is off by 1 or 2 on a two-operation problem ..."""

    shortcut_error_growth: float = 0.0
    """... plus this much for every further operation: the shortcut gets worse as problems get harder."""

    wander_prob: float = 0.0
    """Probability that the solution wanders: rounds of "Wait, let me check again." before concluding."""

    wander_rounds: tuple[int, int] = (3, 4)
    """Number of re-checking rounds of a wandering solution (inclusive range); long enough to hit the cap."""


def sample_problem(rng: random.Random) -> Problem:
    """Draw one problem; all randomness comes from ``rng``."""
    denominator = rng.choice(DENOMINATORS)
    numbers = rng.sample(range(NUMERATOR_RANGE[0], NUMERATOR_RANGE[1] + 1), rng.choice(TERM_CHOICES))
    total = start = numbers[0]
    changes = []
    for n in numbers[1:]:
        sign = rng.choice((1, -1))
        if not TOTAL_RANGE[0] <= total + sign * n <= TOTAL_RANGE[1]:
            sign = -sign
        total += sign * n
        changes.append(sign * n)
    return Problem(denominator, start, tuple(changes))


def sample_problems(n: int, seed: int, exclude=()) -> list[Problem]:
    """``n`` problems with distinct signatures, none of them in ``exclude``; deterministic by ``seed``."""
    return distinct_problems(sample_problem, n, seed, exclude)


def make_splits(n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Train and test problems drawn from one stream of distinct signatures: the splits share no problem."""
    problems = sample_problems(n_train + n_test, seed)
    return problems[n_test:], problems[:n_test]


# ---- written forms ------------------------------------------------------------------------------

def write_answer(value: Fraction, form: str) -> str:
    """``value`` in one of ``WRITTEN_FORMS``; an integer is written as an integer in every form."""
    if value.denominator == 1:
        return str(value.numerator)
    sign, a, b = "-" if value < 0 else "", abs(value.numerator), value.denominator
    if form == "latex":
        return f"{sign}\\frac{{{a}}}{{{b}}}"
    if form == "dfrac":
        return f"{sign}\\dfrac{{{a}}}{{{b}}}"
    if form == "slash":
        return f"{sign}{a}/{b}"
    if form == "decimal":
        # exact: b has no prime factor but 2 and 5, so a / b terminates well within 28 digits
        return format(Decimal(value.numerator) / Decimal(b), "f")
    raise ValueError(f"unknown written form {form!r}: choose one of {WRITTEN_FORMS}")


# ---- solutions ----------------------------------------------------------------------------------

def _slip(value: int, prob: float, rng: random.Random) -> int:
    """``value``, or with probability ``prob`` off by 1 or 2."""
    return value + rng.choice((-2, -1, 1, 2)) if rng.random() < prob else value


def _operation(left: int, change: int) -> str:
    return f"{left} {'+' if change > 0 else '-'} {abs(change)}"


def _careful_lines(start: int, changes: list[int], noise: FracNoise, rng: random.Random) -> tuple[list[str], int]:
    """One operation a line, each result possibly slipped and carried on; returns (lines, final numerator)."""
    lines, total = [], start
    for change in changes:
        after = _slip(total + change, noise.step_error_prob, rng)
        lines.append(f"{_operation(total, change)} = {after}.\n")
        total = after
    return lines, total


def _work_lines(problem: Problem, path: str, noise: FracNoise, rng: random.Random) -> tuple[list[str], int]:
    """The numerator arithmetic of ``path``; returns (lines, the numerator it arrives at)."""
    changes = list(problem.changes)
    if path == "stepwise":
        return _careful_lines(problem.start, changes, noise, rng)
    if path == "grouped":  # the same operations in another order: additions first, then subtractions
        return _careful_lines(problem.start, [c for c in changes if c > 0] + [c for c in changes if c < 0],
                              noise, rng)
    if path == "shortcut":
        prob = noise.shortcut_error_prob + noise.shortcut_error_growth * (len(changes) - 2)
        total = _slip(problem.total, prob, rng)
        line = str(problem.start) + "".join(f" {'+' if c > 0 else '-'} {abs(c)}" for c in changes)
        return [f"{line} = {total}.\n"], total
    raise ValueError(f"unknown path {path!r}: choose one of {PATHS}")


def _reduce_line(numerator: int, denominator: int) -> str:
    """``-8/4 = -2.`` or ``6/8 = 3/4.`` when the fraction reduces; nothing when it is already in lowest terms."""
    value = Fraction(numerator, denominator)
    if value.denominator == denominator:
        return ""
    return f"{numerator}/{denominator} = {write_answer(value, 'slash')}.\n"


def demonstration(problem: Problem, rng: random.Random, noise: FracNoise = FracNoise()) -> Demo:
    """A worked solution of ``problem``: path and written form drawn from ``noise``, slips carried to the end."""
    path = rng.choices(PATHS, weights=noise.path_probs)[0]
    form = rng.choices(WRITTEN_FORMS, weights=noise.form_probs)[0]
    lines, numerator = _work_lines(problem, path, noise, rng)
    if rng.random() < noise.wander_prob:
        work = list(lines)
        for _ in range(rng.randint(*noise.wander_rounds)):
            lines.append("Wait, let me check again.\n")
            lines.extend(work)
    value = Fraction(numerator, problem.denominator)
    text = (f"All over {problem.denominator}.\n" + "".join(lines) + _reduce_line(numerator, problem.denominator)
            + f"</think>\n\nThe answer is \\boxed{{{write_answer(value, form)}}}.")
    return Demo(text, value == problem.answer, path, form, value)


def solution(problem: Problem, path: str = "stepwise", form: str = "latex") -> str:
    """The clean worked solution along ``path`` with the answer written in ``form`` (every step right)."""
    noise = FracNoise(path_probs=tuple(float(p == path) for p in PATHS),
                      form_probs=tuple(float(f == form) for f in WRITTEN_FORMS))
    return demonstration(problem, random.Random(0), noise).text


def path_of(response: str) -> str:
    """``"shortcut"`` when a line of ``response`` holds two or more operations before its ``=``, else ``"careful"``.

    Used to measure how reliable each kind of path is in a model's samples (stepwise and grouped both count as
    careful: telling them apart needs the problem).
    """
    for line in response.split("</think>")[0].splitlines():
        left = line.split("=")[0]
        if "=" in line and left.count(" + ") + left.count(" - ") >= 2:
            return "shortcut"
    return "careful"


# ---- rows and files -----------------------------------------------------------------------------

def to_row(problem: Problem, index: int, split: str) -> dict:
    """One row in DAPO-Math-17k's schema; the ground truth is the canonical written form."""
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": problem.text}],
        "ability": "math",
        "reward_model": {"ground_truth": problem.ground_truth, "style": "rule"},
        "extra_info": {"index": index, "split": split, "solution": solution(problem)},
    }


def write_splits(out_dir: Path = DEFAULT_DIR, n_train: int = N_TRAIN, n_test: int = N_TEST,
                 seed: int = 0) -> tuple[Path, Path]:
    """Write ``train.jsonl`` and ``test.jsonl`` under ``out_dir``; returns their paths."""
    return write_split_files(*make_splits(n_train, n_test, seed), to_row, out_dir)


def main(argv: list[str] | None = None) -> None:
    splits_cli(argv, "Write the fractions toy task's train/test splits as JSONL.", write_splits, DEFAULT_DIR,
               N_TRAIN, N_TEST)


if __name__ == "__main__":
    main()
