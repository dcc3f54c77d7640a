"""Time the evaluation grader on repeated adversarial answers, with and without its defences (issue 22).

A collapsed policy can repeat one degenerate box in every sample: an exponent tower, a 20,000-digit number. Each
such answer is cut off by the worker's timeout, so graded one by one they cost ``timeout`` seconds each (over the
pool's workers). ``grading.grade_many`` now grades each distinct (response, answer) pair once per call and screens
a SymPy job's size first (``grading.too_big_for_sympy``). This script grades ``--copies`` copies of each answer in
``ADVERSARIAL`` plus one slow answer the screen lets through, then:
  before: the defences switched off (the screen patched to pass everything, one ``grade_many`` call per pair);
  after:  one ``grade_many`` call over all pairs, as ``evaluate`` does per ``generate`` batch.

    python benchmarks/grader_repeats.py                      # 4 copies, the paper grader, 5 s timeout
    python benchmarks/grader_repeats.py --copies 16 --grader math-verify
"""

from __future__ import annotations

import argparse
import time

import justrl_lite.grading.grade as grading
from justrl_lite.config_checks import GRADERS
from justrl_lite.grading.pool import GraderPool

ADVERSARIAL = {"paper": ["9**9**9", "9" * 20000, "(10**100)!"],
               "math-verify": ["9^{9^{9^{9}}}", "9" * 20000, "(10^{100})!"]}
"""A tower, a 20,000-digit number (both refused by the screen) and a factorial (past it; only the timeout stops
it). Graded against a non-integer truth, so that the paper grader's integer rule does not decide them first."""


def run(grader: str, copies: int, timeout: float, workers: int, defended: bool) -> tuple[float, int, int]:
    """(seconds, SymPy checks sent, timeouts) for grading every copy of every answer."""
    responses = [f"\\boxed{{{a}}}" for a in ADVERSARIAL[grader] for _ in range(copies)]
    truths = ["\\frac{1}{3}"] * len(responses)
    pool = GraderPool(max_workers=workers)
    pool.warm(workers)
    screen = grading.too_big_for_sympy
    started = time.monotonic()
    try:
        if defended:
            grading.grade_many(responses, truths, timeout, pool=pool, grader=grader)
        else:
            grading.too_big_for_sympy = lambda job: False
            for r, t in zip(responses, truths):
                grading.grade_many([r], [t], timeout, pool=pool, grader=grader)
        return time.monotonic() - started, pool.stats["checks"], pool.stats["timeouts"]
    finally:
        grading.too_big_for_sympy = screen
        pool.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--copies", type=int, default=4, help="copies of each adversarial answer")
    p.add_argument("--grader", choices=GRADERS, default="paper")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per SymPy check (evaluate's default)")
    p.add_argument("--workers", type=int, default=2, help="grader worker processes")
    args = p.parse_args()
    n = args.copies * len(ADVERSARIAL[args.grader])
    for label, defended in (("before (no dedupe, no screen)", False), ("after (dedupe + screen)", True)):
        seconds, checks, timeouts = run(args.grader, args.copies, args.timeout, args.workers, defended)
        print(f"{label}: {n} answers, {seconds:.1f} s, {checks} SymPy checks, {timeouts} timeouts")


if __name__ == "__main__":
    main()
