"""The toy task: integer-answer arithmetic with step-by-step worked solutions, in DAPO-Math-17k's row schema.

A problem is a running total changed a few times by small numbers::

    What is 6 - 1 - 3 + 7?

and its worked solution is written the way DeepSeek-R1-Distill answers (the prompt ends in ``<think>\\n``;
the reasoning closes with ``</think>`` and a boxed summary)::

    6 - 1 = 5.
    5 - 3 = 2.
    2 + 7 = 9.
    </think>

    The answer is \\boxed{9}.

Why this task (it has to make a tiny world behave like the paper's):
  1. The skill is small and exact: add or subtract 1..9 on totals in 0..19, a few hundred facts a
     million-parameter model learns in minutes. The answer is a plain integer, graded by ``dapo_reward``.
  2. Every step can go wrong, and one wrong step makes the answer wrong, so pass@1 falls with the number of
     steps the way it falls with problem difficulty at 1.5B.
  3. All numbers of one problem differ. Each step must fetch "the term after the one I just used" from the
     prompt; with repeated numbers that lookup is ambiguous and a tiny model never learns it reliably.
  4. ``demonstration`` writes *imperfect* solutions (``DemoNoise``): a step's result is off by 1 or 2 with some
     probability (the slip is carried on), some steps are followed by a redundant "Check:" line, and some
     solutions wander ("Wait, let me check again.") for rounds that run past the response-length cap. A model
     fine-tuned on these (``make_base``) knows the arithmetic (most demonstrated steps are right) but *samples*
     slips and wandering at temperature 1.0: a base with modest pass@1, high pass@8 and long responses, which
     is what RL has to work with in the paper.
  5. Train and test splits share no problem (the arithmetic ``signature`` is unique across both splits), and
     everything is deterministic by seed.

Rows follow DAPO-Math-17k (``to_row``), so one loader, prompt builder and verifier serve the toy and the paper.
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from justrl_lite.config import PROJECT_ROOT

DATA_SOURCE = "toy-arith"
DEFAULT_DIR = PROJECT_ROOT / "data" / "toy"
N_TRAIN = 4000
N_TEST = 500

START_RANGE = (2, 15)
"""The first total is drawn from this range (inclusive)."""
OPERAND_RANGE = (1, 9)
"""Every change is a number in this range (inclusive), added or taken away; no number repeats in a problem."""
MAX_TOTAL = 19
"""Running totals stay in 0..MAX_TOTAL: a change that would leave the range flips its sign."""
STEP_CHOICES = (3, 4)
"""Number of changes (reasoning steps) per problem."""


@dataclass(frozen=True)
class Problem:
    """One problem: a first number and the signed changes applied to it, left to right."""

    start: int
    changes: tuple[int, ...]  # signed, e.g. (+5, -3, +8, -2)

    @property
    def answer(self) -> int:
        return self.start + sum(self.changes)

    @property
    def signature(self) -> tuple[int, ...]:
        """The arithmetic that identifies a problem: no signature is shared between splits."""
        return (self.start, *self.changes)

    @property
    def text(self) -> str:
        terms = "".join(f" {'+' if c > 0 else '-'} {abs(c)}" for c in self.changes)
        return f"What is {self.start}{terms}?"


@dataclass(frozen=True)
class DemoNoise:
    """How imperfect a demonstration is. ``DemoNoise()`` (all zero) writes the clean worked solution."""

    step_error_prob: float = 0.0
    """Probability that a step's result is off by 1 or 2 (the wrong total is carried into the next step)."""

    check_prob: float = 0.0
    """Probability that a step is followed by a redundant ``Check:`` line repeating it."""

    wander_prob: float = 0.0
    """Probability that the solution wanders: rounds of "Wait, let me check again." before concluding."""

    wander_rounds: tuple[int, int] = (4, 5)
    """Number of re-checking rounds of a wandering solution (inclusive range); long enough to hit the cap."""


def sample_problem(rng: random.Random) -> Problem:
    """Draw one problem; all randomness comes from ``rng``."""
    total = start = rng.randint(*START_RANGE)
    # all numbers of a problem differ, so "the term after the number I just used" is never ambiguous
    pool = [n for n in range(OPERAND_RANGE[0], OPERAND_RANGE[1] + 1) if n != start]
    changes = []
    for n in rng.sample(pool, rng.choice(STEP_CHOICES)):
        sign = rng.choice((1, -1))
        if not 0 <= total + sign * n <= MAX_TOTAL:
            sign = -sign
        total += sign * n
        changes.append(sign * n)
    return Problem(start, tuple(changes))


def distinct_problems(sample_fn, n: int, seed: int, exclude: Iterable = ()) -> list:
    """``n`` problems from ``sample_fn(rng)`` with distinct signatures, none in ``exclude``; deterministic by seed."""
    rng = random.Random(seed)
    seen = set(exclude)
    problems = []
    while len(problems) < n:
        p = sample_fn(rng)
        if p.signature not in seen:
            seen.add(p.signature)
            problems.append(p)
    return problems


def sample_problems(n: int, seed: int, exclude: Iterable[tuple[int, ...]] = ()) -> list[Problem]:
    """``n`` problems with distinct signatures, none of them in ``exclude``; deterministic by ``seed``."""
    return distinct_problems(sample_problem, n, seed, exclude)


def make_splits(n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Train and test problems drawn from one stream of distinct signatures: the splits share no problem."""
    problems = sample_problems(n_train + n_test, seed)
    return problems[n_test:], problems[:n_test]


def _step_line(before: int, change: int, after: int) -> str:
    return f"{before} {'+' if change > 0 else '-'} {abs(change)} = {after}.\n"


def demonstration(problem: Problem, rng: random.Random, noise: DemoNoise = DemoNoise()) -> tuple[str, bool]:
    """A worked solution of ``problem`` written with ``noise``; returns (text, whether its boxed answer is right).

    With the default ``DemoNoise()`` the text is the clean solution and the flag is always True.
    """
    lines = []
    steps = []  # (before, change, after) as written, slips included
    total = problem.start
    for change in problem.changes:
        after = total + change
        if rng.random() < noise.step_error_prob:
            after = max(0, after + rng.choice((-2, -1, 1, 2)))  # a slip, carried on by the next step
        lines.append(_step_line(total, change, after))
        if rng.random() < noise.check_prob:
            lines.append("Check: " + _step_line(total, change, after))
        steps.append((total, change, after))
        total = after
    if rng.random() < noise.wander_prob:
        for _ in range(rng.randint(*noise.wander_rounds)):
            lines.append("Wait, let me check again.\n")
            lines.extend(_step_line(*step) for step in steps)
    lines.append(f"</think>\n\nThe answer is \\boxed{{{total}}}.")
    return "".join(lines), total == problem.answer


def solution(problem: Problem) -> str:
    """The clean worked solution (every step right, no detours)."""
    return demonstration(problem, random.Random(0))[0]


def to_row(problem: Problem, index: int, split: str) -> dict:
    """One row in DAPO-Math-17k's schema; the ground truth is the plain integer string."""
    return {
        "data_source": DATA_SOURCE,
        "prompt": [{"role": "user", "content": problem.text}],
        "ability": "math",
        "reward_model": {"ground_truth": str(problem.answer), "style": "rule"},
        "extra_info": {"index": index, "split": split, "solution": solution(problem)},
    }


def write_jsonl(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def write_split_files(train: list, test: list, to_row_fn, out_dir: Path) -> tuple[Path, Path]:
    """Write a task's problems as ``train.jsonl`` and ``test.jsonl`` under ``out_dir`` (rows by ``to_row_fn``)."""
    paths = (Path(out_dir) / "train.jsonl", Path(out_dir) / "test.jsonl")
    for problems, split, path in zip((train, test), ("train", "test"), paths):
        write_jsonl([to_row_fn(p, i, split) for i, p in enumerate(problems)], path)
    return paths


def write_splits(out_dir: Path = DEFAULT_DIR, n_train: int = N_TRAIN, n_test: int = N_TEST,
                 seed: int = 0) -> tuple[Path, Path]:
    """Write ``train.jsonl`` and ``test.jsonl`` under ``out_dir``; returns their paths."""
    return write_split_files(*make_splits(n_train, n_test, seed), to_row, out_dir)


def splits_cli(argv: list[str] | None, description: str, write_splits_fn, default_dir: Path,
               n_train: int, n_test: int) -> None:
    """The command line of a toy task's split writer (``--out-dir``, ``--n-train``, ``--n-test``, ``--seed``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out-dir", default=str(default_dir))
    parser.add_argument("--n-train", type=int, default=n_train)
    parser.add_argument("--n-test", type=int, default=n_test)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for path in write_splits_fn(Path(args.out_dir), args.n_train, args.n_test, args.seed):
        print(f"wrote {path}")


def main(argv: list[str] | None = None) -> None:
    splits_cli(argv, "Write the toy task's train/test splits as JSONL.", write_splits, DEFAULT_DIR, N_TRAIN, N_TEST)


if __name__ == "__main__":
    main()
