"""What runs inside a grader worker subprocess (``grading/pool.py`` starts, times and kills them).

    one JSON job per stdin line  ->  run_job(job)  ->  one JSON answer {"equal": bool} per line

Two kinds of job, one per grader: ``math-verify``'s ``verify`` of two boxed answers (LaTeX extraction only), and
the authors' ``simplify(parse_expr(expr)) == 0`` (``paper``). Every failure inside a check (MemoryError,
RecursionError, a SymPy bug) answers "not equal" and the worker lives on; the address space is capped
(``WORKER_MEMORY_BYTES``) and SIGALRM ends the worker if its parent dies mid-check. math-verify and SymPy are
imported here only, by the worker process.
"""

from __future__ import annotations

import json
import os
import sys
from functools import lru_cache

from justrl_lite.boxed import BOX_OPEN

WORKER_MEMORY_BYTES = 2 * 1024**3
"""Address-space cap of a worker: a runaway answer (a huge power or factorial) fails with MemoryError before it
can exhaust the machine's RAM within its timeout."""


def serve_worker() -> None:
    """Main loop of a grader worker: one JSON job per stdin line, one JSON answer per line on the protocol pipe."""
    import signal

    # the protocol gets a private copy of stdout; anything a library prints goes to /dev/null
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    sys.stdout = open(os.devnull, "w")

    def send(message: dict) -> None:
        protocol.write(json.dumps(message).encode() + b"\n")

    try:
        limit_worker_memory(WORKER_MEMORY_BYTES)
        math_verify_equal("1", "1")  # import math-verify and warm its parser before saying "ready"
        paper_difference_is_zero("(1)-(1)")
    except Exception as e:  # a broken install: tell the parent once, in words
        send({"ready": False, "error": f"{type(e).__name__}: {e}"})
        return
    send({"ready": True})
    # backstop if the parent dies mid-check: SIGALRM's default action ends this process, even inside C code
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    for line in sys.stdin.buffer:
        try:
            job = json.loads(line)
            signal.setitimer(signal.ITIMER_REAL, float(job["limit"]) + 1.0)
            equal = run_job(job)
        except Exception:  # MemoryError, RecursionError, SymPy bugs: the answer is wrong, the worker lives on
            equal = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        send({"equal": equal})


def limit_worker_memory(max_bytes: int) -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the timeout still bounds the check
        pass


@lru_cache(maxsize=4096)
def parse_boxed(answer: str) -> tuple:
    """math-verify's parse of ``\\boxed{answer}``: LaTeX extraction only, its own (signal) timeout off."""
    import logging

    from math_verify import LatexExtractionConfig, parse

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    # LatexExtractionConfig only: the plain-expression extractor goes through sympy's eval-based parse_expr
    return tuple(parse(BOX_OPEN + answer + "}", extraction_config=[LatexExtractionConfig()], parsing_timeout=None))


def run_job(job: dict) -> bool:
    if job.get("kind") == "paper":
        return paper_difference_is_zero(job["expr"])
    return math_verify_equal(job["gold"], job["pred"])


def paper_difference_is_zero(expr: str) -> bool:
    """Runs inside the worker: the authors' SymPy step, ``simplify(parse_expr(expr)) == 0``."""
    import sympy
    from sympy.parsing import sympy_parser

    # a^b is Python's a**b; "2x" and "sin x" are products and applications
    transformations = sympy_parser.standard_transformations + (sympy_parser.implicit_multiplication_application,)
    parsed = sympy_parser.parse_expr(expr.replace("^", "**"), transformations=transformations)
    return bool(sympy.simplify(parsed) == 0)


def math_verify_equal(gold: str, pred: str) -> bool:
    """Runs inside the worker: is ``pred`` mathematically equal to ``gold`` by math-verify?"""
    from math_verify import verify

    parsed_gold, parsed_pred = parse_boxed(gold), parse_boxed(pred)
    if not parsed_gold or not parsed_pred:
        return False
    return bool(verify(list(parsed_gold), list(parsed_pred), timeout_seconds=None))
