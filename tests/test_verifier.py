"""Tests of justrl_lite.verifier: the strict DAPO reward, the lenient ablation reward and the evaluation grader.

Real ground truths come from the nine benchmark files in ../shared/justrl_data/. Fuzz inputs are fresh every
run; the seed is printed (shown on failure) and can be replayed with JUSTRL_TEST_SEED=<seed>. Setting
JUSTRL_FULL_GRADER_SWEEP=1 sends a wrong answer for *every* benchmark row through SymPy (about a minute);
by default a fresh random sample of those rows is checked.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import boxed, fresh_rng

from justrl_lite.boxed import last_boxed_only_string, remove_boxed
from justrl_lite.grading import pool as grader_pool
from justrl_lite.grading.grade import (
    MAX_ANSWER_CHARS,
    MAX_SYMPY_CHARS,
    grade,
    grade_many,
    normalize_answer,
    plain_number,
)
from justrl_lite.grading.pool import DEFAULT_POOL, GraderPool
from justrl_lite.verifier import DAPO_INNER_WINDOW, dapo_reward, lenient_reward

DATA_DIR = Path(os.environ.get("JUSTRL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "justrl_data"))
BENCHMARK_FILES = {
    "AIME24": "AIME24_test.parquet", "AIME25": "AIME25_test.parquet", "AMC23": "AMC23_test.parquet",
    "MATH-500": "MATH-500_test.parquet", "Minerva": "Minerva_test.parquet",
    "OlympiadBench": "Olympiad-Bench_test.parquet", "HMMT25": "HMMT25_test.parquet",
    "BRUMO25": "BRUMO25_test.parquet", "CMIMC25": "CMIMC25_test.parquet",
}
TIMEOUT = 1.0  # seconds per SymPy check in these tests
SLACK = 0.75  # scheduling slack on a loaded 2-core machine
N_FUZZ = 10_000
N_FUZZ_SYMPY = 200
N_SYMPY_NEGATIVES = 24  # benchmark rows whose wrong answer goes through SymPy, per run (all with the sweep)
SLOW_SYMPY = [
    "9^{9^{9^{9}}}", "10^{10^{10^{10}}}", "2^{2^{2^{2^{2^{2}}}}}", "(10^{100})!", "99999999999999!",
    "\\binom{10^{12}}{10^{6}}", "7^{7^{7^{7}}}+1",
]
SLOW_PAPER = ["9**9**9", "10**10**10", "7**7**7**7+1", "(10**100)!", "2**2**2**2**2**2"]
"""Answers the authors' guard lets through to ``parse_expr`` (no ``^``, at most two letters) that never finish."""




# ---- data ------------------------------------------------------------------------------------------------------

def read_ground_truths(path: Path) -> list[str]:
    """Ground truths as stored: verl rows keep them in reward_model.ground_truth, the others in answer."""
    import pandas as pd

    frame = pd.read_parquet(path)
    if "reward_model" in frame.columns:
        return [str(rm["ground_truth"]) for rm in frame["reward_model"]]
    return [str(a) for a in frame["answer"]]


@pytest.fixture(scope="module")
def benchmarks() -> dict[str, list[str]]:
    if not DATA_DIR.is_dir():
        pytest.skip(f"benchmark data not found at {DATA_DIR} (the repo must sit beside shared/justrl_data)")
    missing = [f for f in BENCHMARK_FILES.values() if not (DATA_DIR / f).is_file()]
    if missing:
        pytest.skip(f"benchmark files missing from {DATA_DIR}: {missing}")
    return {name: read_ground_truths(DATA_DIR / f) for name, f in BENCHMARK_FILES.items()}


def answer_of(ground_truth: str) -> str:
    """The answer a model should box: the ground truth, with AIME24's stored \\boxed{} removed."""
    if ground_truth.startswith("\\boxed{") and ground_truth.endswith("}"):
        return ground_truth[len("\\boxed{"):-1]
    return ground_truth


def as_float(answer: str) -> float | None:
    try:
        return float(answer.replace("$", "").replace(" ", ""))
    except ValueError:
        return None


def wrong_answer(answers: list[str], i: int) -> str:
    """Another row's answer that is really different: another string after normalisation and, when both are
    plain numbers, another value."""
    mine = answers[i]
    for k in range(1, len(answers)):
        other = answers[(i + k) % len(answers)]
        if normalize_answer(other) == normalize_answer(mine):
            continue
        a, b = as_float(mine), as_float(other)
        if a is not None and b is not None and abs(a - b) <= 1e-6 * max(abs(a), abs(b)):
            continue
        return other
    raise AssertionError(f"no different answer for {mine!r}")


# ---- every benchmark row ---------------------------------------------------------------------------------------

def test_dapo_reward_on_every_benchmark_row(benchmarks):
    for name, ground_truths in benchmarks.items():
        answers = [answer_of(g) for g in ground_truths]
        for i, answer in enumerate(answers):
            response = "Some reasoning... so the final answer is " + boxed(answer)
            # the whole box must fit in the last 100 characters, so a few long answers can never earn +1
            fits = len(boxed(answer)) <= DAPO_INNER_WINDOW
            assert dapo_reward(response, answer) == (1.0 if fits else -1.0), (name, i, answer)
            assert dapo_reward("So " + boxed(wrong_answer(answers, i)), answer) == -1.0, (name, i)
    # exact strings: a ground truth stored boxed (AIME24) never equals the boxed content; callers unbox it
    stored = benchmarks["AIME24"][0]
    assert stored.startswith("\\boxed{")
    assert dapo_reward(boxed(answer_of(stored)), stored) == -1.0


def test_grade_accepts_every_benchmark_answer_by_string_match(benchmarks, pool):
    checks_before = pool.stats["checks"]
    for name, ground_truths in benchmarks.items():
        for i, stored in enumerate(ground_truths):
            response = "Reasoning.\n\nThe answer is " + boxed(answer_of(stored)) + "."
            assert grade(response, stored, TIMEOUT, pool=pool), (name, i, stored)
            assert lenient_reward(response, stored, TIMEOUT, pool=pool) == 1.0, (name, i, stored)
    # the normalised string match comes first: a verbatim answer never reaches SymPy
    assert pool.stats["checks"] == checks_before


def test_grade_rejects_a_different_answer_on_every_benchmark_row(benchmarks, pool):
    rng, seed = fresh_rng()
    needs_sympy: list[tuple[str, int, str, str]] = []
    for name, ground_truths in benchmarks.items():
        answers = [answer_of(g) for g in ground_truths]
        for i, stored in enumerate(ground_truths):
            wrong = wrong_answer(answers, i)
            response = "The answer is " + boxed(wrong)
            # timeout=0: only the string stage (normalised match, plain numbers) may answer
            if grade(response, stored, 0):
                raise AssertionError(f"{name} row {i}: {response!r} accepted for {stored!r}")
            if plain_number(normalize_answer(wrong)) is None or plain_number(normalize_answer(answers[i])) is None:
                needs_sympy.append((name, i, response, stored))
    full = os.environ.get("JUSTRL_FULL_GRADER_SWEEP") == "1"
    sample = needs_sympy if full else rng.sample(needs_sympy, N_SYMPY_NEGATIVES)
    checks_before = pool.stats["checks"]
    verdicts = grade_many([r for _, _, r, _ in sample], [g for _, _, _, g in sample], 5.0, pool=pool)
    accepted = [(name, i, r, g) for (name, i, r, g), v in zip(sample, verdicts) if v]
    assert not accepted, f"seed {seed}: wrong answers accepted: {accepted}"
    assert pool.stats["checks"] - checks_before == len(sample)  # each one was really decided by SymPy


def test_strict_and_lenient_disagree_on_equivalent_forms_of_every_answer(benchmarks):
    for name, ground_truths in benchmarks.items():
        for i, stored in enumerate(ground_truths):
            answer = answer_of(stored)
            variants = ["  " + answer + " "]  # extra spaces inside the box
            if "\\frac" in answer:
                variants.append(answer.replace("\\frac", "\\dfrac"))
            for variant in variants:
                response = "So " + boxed(variant)
                # the string stage alone (timeout=0) accepts them; the strict verifier does not
                assert grade(response, stored, 0), (name, i, variant)
                assert lenient_reward(response, answer, 0) == 1.0, (name, i, variant)
                assert dapo_reward(response, answer) == -1.0, (name, i, variant)


@pytest.mark.parametrize(("answer", "ground_truth"), [
    ("0.5", "\\frac{1}{2}"),
    ("\\dfrac{1}{2}", "\\frac{1}{2}"),
    ("\\tfrac12", "\\frac{1}{2}"),
    ("  \\frac{ 1 }{ 2 } ", "\\frac{1}{2}"),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("b+a", "a+b"),
    ("\\sqrt{3}+2", "2+\\sqrt{3}"),
    ("(x+1)^2", "x^2+2x+1"),
    ("90^\\circ", "90"),
    ("\\text{Evelyn}", "Evelyn"),
    ("5\\text{ cm}", "5"),
    ("x = 5", "5"),
    ("1,000", "1000"),
    ("4.5 \\times 10^{33}", "4.5e33"),
    ("1.60", "1.6"),
    ("$2n-2$", "2n-2"),
])
def test_equivalent_forms_grade_true_but_strict_reward_refuses(answer, ground_truth):
    response = "Therefore the answer is " + boxed(answer)
    assert grade(response, ground_truth)  # the default pool, as callers use it
    assert grade(response, boxed(ground_truth))  # a boxed ground truth is unboxed
    assert lenient_reward(response, ground_truth) == 1.0
    assert dapo_reward(response, ground_truth) == -1.0


@pytest.mark.parametrize(("answer", "ground_truth"), [
    ("1.325e-27", "2.88e-19"),  # math-verify alone rounds both to 0 at 6 decimals
    ("2.88\\times10^{-19}", "1.325e-27"),
    ("0.0060001", "0.006"),
    ("\\frac{2}{1}", "\\frac{1}{2}"),
    ("(2,1)", "(1,2)"),
    ("x+2", "x+1"),
    ("\\text{Bob}", "\\text{Evelyn}"),
    ("", "0"),
])
def test_different_answers_grade_false(answer, ground_truth, pool):
    response = "Therefore the answer is " + boxed(answer)
    assert not grade(response, ground_truth, TIMEOUT, pool=pool)
    assert lenient_reward(response, ground_truth, TIMEOUT, pool=pool) == -1.0


# ---- the box and the windows -----------------------------------------------------------------------------------

def reference_last_box_content(text: str) -> str | None:
    """Re-derivation of last_boxed_only_string + remove_boxed: the text after the last "\\boxed{", up to the brace
    that balances it."""
    pieces = text.split("\\boxed{")
    if len(pieces) == 1:
        return None
    depth = 1
    for k, ch in enumerate(pieces[-1]):
        depth += (ch == "{") - (ch == "}")
        if depth == 0:
            return pieces[-1][:k]
    return None


def reference_dapo_reward(response: str, ground_truth: str) -> float:
    content = reference_last_box_content(response[-300:][-100:])
    return 1.0 if content is not None and content == ground_truth else -1.0


def random_text(rng: random.Random, pieces: list[str], max_pieces: int) -> str:
    return "".join(rng.choice(pieces) for _ in range(rng.randrange(max_pieces + 1)))


BOX_PIECES = ["\\boxed{", "{", "}", "{", "}", "1", "2", "x", " ", "\\frac", "a", "\n", "é"]


def test_last_boxed_only_string_matches_its_re_derivation():
    rng, seed = fresh_rng()
    for _ in range(3000):
        text = random_text(rng, BOX_PIECES, 40)
        found = last_boxed_only_string(text)
        expected = reference_last_box_content(text)
        assert (None if found is None else remove_boxed(found)) == expected, (seed, text)
        cap = rng.randrange(0, 30)
        capped = last_boxed_only_string(text, max_content_chars=cap)
        assert capped == (found if expected is not None and len(expected) <= cap else None), (seed, text, cap)


def test_dapo_reward_matches_its_re_derivation():
    rng, seed = fresh_rng()
    for _ in range(3000):
        response = random_text(rng, BOX_PIECES, 150)
        truth = rng.choice(["1", "2", "x", "", "{1}", reference_last_box_content(response) or "1"])
        assert dapo_reward(response, truth) == reference_dapo_reward(response, truth), (seed, response, truth)


def test_dapo_windows_at_their_exact_edges():
    rng, seed = fresh_rng()
    filler_chars = "abc xyz.,;=+-\n0123456789"
    for _ in range(200):
        numerator, denominator = rng.randrange(1, 99), rng.randrange(1, 99)
        answer = rng.choice([str(rng.randrange(10**6)), f"\\frac{{{numerator}}}{{{denominator}}}"])
        box = boxed(answer)
        head = "".join(rng.choice(filler_chars) for _ in range(rng.randrange(0, 500)))
        for start_from_end, expected in [(100, 1.0), (101, -1.0), (len(box), 1.0), (299, -1.0), (300, -1.0),
                                         (301, -1.0)]:
            tail = "".join(rng.choice(filler_chars) for _ in range(start_from_end - len(box)))
            response = head + box + tail
            assert len(response) - response.rfind("\\boxed{") == start_from_end
            assert dapo_reward(response, answer) == expected, (seed, start_from_end, response)
            # the evaluation grader searches the whole response
            assert grade(response, answer, 0), (seed, response)
            # the 300 cut changes nothing: the last 100 of the last 300 are the last 100
            assert dapo_reward(response[-300:], answer) == dapo_reward(response[-100:], answer) == expected


@pytest.mark.parametrize(("response", "truth", "strict", "graded"), [
    ("\\boxed{1} then \\boxed{2}", "2", 1.0, True),  # two boxes: the last wins
    ("\\boxed{1} then \\boxed{2}", "1", -1.0, False),
    ("\\boxed{1} then \\boxed{1", "1", -1.0, False),  # the last box is unclosed: no fallback to the earlier one
    ("answer: \\boxed{\\frac{1}{2}", "\\frac{1}{2}", -1.0, False),
    ("answer: \\boxed{1}}", "1", 1.0, True),  # an extra closing brace after the box is harmless
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}", 1.0, True),  # nested braces are matched
    ("\\boxed{\\boxed{3}}", "3", 1.0, True),  # the innermost box is the last one opened
    ("\\boxed{{1}}", "{1}", 1.0, True),
    ("the answer is 3", "3", -1.0, False),  # no box
    ("\\boxed 3", "3", -1.0, False),
    ("\\boxed{}", "", 1.0, False),  # an empty box equals an empty string, but is no answer to grade
    ("", "3", -1.0, False),
])
def test_box_rules(response, truth, strict, graded, pool):
    assert dapo_reward(response, truth) == strict
    assert grade(response, truth, TIMEOUT, pool=pool) is graded
    assert lenient_reward(response, truth, TIMEOUT, pool=pool) == (1.0 if graded else -1.0)


def test_answers_too_long_are_no_answer():
    long_answer = "1" * (MAX_ANSWER_CHARS + 1)
    assert not grade(boxed(long_answer), long_answer, 0)
    assert grade(boxed(long_answer[:-1]), long_answer[:-1], 0)


def test_only_short_answers_reach_sympy(pool):
    # \frac{1}{2}+0+0+...: equal to 0.5, but only SymPy can tell
    at_cap = "\\frac{1}{2}" + "+0" * ((MAX_SYMPY_CHARS - 11) // 2)
    over_cap = at_cap + "+0"
    assert len(at_cap) <= MAX_SYMPY_CHARS < len(over_cap)
    checks = pool.stats["checks"]
    assert grade(boxed(at_cap), "0.5", 5.0, pool=pool)
    assert pool.stats["checks"] == checks + 1
    assert not grade(boxed(over_cap), "0.5", 5.0, pool=pool)
    assert pool.stats["checks"] == checks + 1


def test_malformed_inputs_never_raise(pool):
    for response, truth in [(None, "1"), ("\\boxed{1}", None), (b"\\boxed{1}", "1"), (1, 1), ("\\boxed{1}", 1)]:
        assert dapo_reward(response, truth) == -1.0
        assert grade(response, truth, TIMEOUT, pool=pool) is False
        assert grade(response, truth, TIMEOUT, pool=pool, grader="paper") is False
        assert lenient_reward(response, truth, TIMEOUT, pool=pool) == -1.0


@pytest.mark.parametrize(("a", "b"), [
    ("\\left( 3, \\dfrac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"),
    ("90^{\\circ}", "90"), ("90°", "90"), ("10\\%", "10"), ("\\$5", "5"), ("$x$", "x"),
    ("\\text{Evelyn}", "Evelyn"), ("\\textbf{(C)}", "(C)"), ("12\\text{ inches}", "12"),
    ("x = 5", "5"), (".5", "0.5"), ("1,000", "1000"), ("1{,}000", "1000"), ("3/4", "\\frac{3}{4}"),
    ("\\frac12", "\\frac{1}{2}"), ("\\frac{1}2", "\\frac{1}{2}"), ("\\sqrt3", "\\sqrt{3}"), ("7.", "7"),
    ("a\\,b", "ab"), ("1\n2", "12"), ("\\left\\{1,2\\right\\}", "\\{1,2\\}"),
])
def test_normalize_answer_maps_typesetting_variants_together(a, b):
    assert normalize_answer(a) == normalize_answer(b)
    assert normalize_answer(normalize_answer(a)) == normalize_answer(a)


@pytest.mark.parametrize(("a", "b"), [
    ("\\frac{1}{2}", "\\frac{2}{1}"), ("(1,2)", "(2,1)"), ("2^{99}", "2^99"), ("abc = 5", "5"),
    ("\\sqrt{3}", "3"), ("1,2", "12"), ("-1", "1"), ("\\text{A}", "\\text{B}"),
])
def test_normalize_answer_keeps_different_answers_apart(a, b):
    assert normalize_answer(a) != normalize_answer(b)


def test_normalize_answer_is_idempotent_on_benchmark_answers(benchmarks):
    for ground_truths in benchmarks.values():
        for g in ground_truths:
            once = normalize_answer(answer_of(g))
            assert normalize_answer(once) == once, g


# ---- untrusted input: fuzz, time bounds, side effects ----------------------------------------------------------

def child_pids() -> set[int]:
    """Processes whose parent is this one (Linux /proc)."""
    me, kids = os.getpid(), set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                kids.add(int(entry.name))
    return kids


def payloads(sentinel: Path) -> list[str]:
    s = str(sentinel)
    return [
        f"__import__('os').system('touch {s}')", f"eval(\"open('{s}', 'w')\")", f"$(touch {s})", f"`touch {s}`",
        f"'; touch {s}; '", f"\\write18{{touch {s}}}", f"\\input{{{s}}}",
        f"exec('import os; os.system(\"touch {s}\")')",
        "().__class__.__base__.__subclasses__()", f"lambda: open('{s}','w').write('x')", f"{{{{7*7}}}}; touch {s}",
        f"import os; os.system('touch {s}')", f"os.system('touch {s}')",
    ]


def fuzz_pieces(sentinel: Path) -> list[str]:
    return ["\\boxed{", "{", "}", "{", "}", "\\frac", "\\dfrac", "\\left(", "\\right)", "^", "_", "$", "\\", " ",
            "\n", "1", "2", "42", "0.5", "x", "y", "+", "-", "=", ",", ".", "/", "\\sqrt", "\\text{", "^\\circ",
            "\\%", "é", "∑", "😀", "\u0000", "\ud800", "\u202e", "\\infty", "!", "e", "\\pi", "\\cdot", "("] + payloads(
        sentinel)


def adversarial_strings(rng: random.Random, sentinel: Path) -> list[str]:
    n = rng.randrange(200_000, 2_000_000)
    deep = rng.randrange(100, 5000)
    return [
        "{" * n, "}" * n, "\\boxed{" * (n // 7), "\\boxed{" + "{" * n, "\\boxed{" + "{" * n + "}" * n + "}",
        "a" * n + boxed("1"), boxed("1") + " " * n, boxed("\\frac{" * deep + "1" + "}" * deep),
        boxed("{" * 140 + "1" + "}" * 140), boxed("(" * 290), boxed("\\sqrt{" * 49 + "2" + "}" * 49),
        "\\boxed{\\boxed{\\boxed{" * 1000, "😀" * n, "\ud800" * 1000 + boxed("\udfff"), boxed("\x00" * 200),
        *(boxed(p) for p in payloads(sentinel)), *(boxed(s) for s in SLOW_SYMPY + SLOW_PAPER),
    ]


@pytest.mark.parametrize("grader", ["math-verify", "paper"])
def test_fuzz_no_exception_no_overrun_no_side_effect(tmp_path, pool, grader):
    rng, seed = fresh_rng()
    n_fuzz = N_FUZZ if grader == "math-verify" else N_FUZZ // 4
    sentinel = tmp_path / "pwned"
    pieces = fuzz_pieces(sentinel)
    truths = ["2", "\\frac{1}{2}", "x+1", "\\boxed{204}", "(1,2)", "0.5", ""]
    texts = [random_text(rng, pieces, 60) for _ in range(n_fuzz)] + adversarial_strings(rng, sentinel)

    # every string: the strict reward and the grader's string stage (timeout=0 never reaches SymPy)
    checks_before, timeouts_before, slowest = pool.stats["checks"], pool.stats["timeouts"], 0.0
    for text in texts:
        truth = rng.choice(truths + [reference_last_box_content(text) or "1"])
        started = time.monotonic()
        strict = dapo_reward(text, truth)
        graded = grade(text, truth, 0, pool=pool, grader=grader)
        slowest = max(slowest, time.monotonic() - started)
        assert strict == reference_dapo_reward(text, truth), (seed, text[:200])
        assert graded in (True, False), (seed, text[:200])
    assert pool.stats["checks"] == checks_before
    assert slowest < TIMEOUT, f"seed {seed}: a string-stage call took {slowest:.3f} s"
    print(f"string-stage fuzz: {len(texts)} strings, slowest call {slowest * 1e3:.1f} ms")

    # a few hundred through SymPy, including answers that would run SymPy for ever
    balanced = [p for p in pieces if p not in ("^", "!", "{", "}", "\\boxed{", "\\text{")]
    balanced += ["{1}", "{x+1}", "\\frac{1}{2}", "\\sqrt{2}", "\\text{a}", "{{2}}", "^{2}"]
    sympy_items = [(boxed(p), rng.choice(truths)) for p in payloads(sentinel)]
    # a tower is refused by the size screen before SymPy (grading.too_big_for_sympy); the rest must time out
    if grader == "math-verify":
        sympy_items += [(boxed(s), "2") for s in ["9^{9^{9^{9}}}", "(10^{100})!", rng.choice(SLOW_SYMPY[1:])]]
    else:  # a non-integer truth: the integer rule would reject without SymPy
        sympy_items += [(boxed(s), "\\frac{1}{3}") for s in ["9**9**9", "(10**100)!", rng.choice(SLOW_PAPER[1:])]]
    n_sympy = N_FUZZ_SYMPY if grader == "math-verify" else N_FUZZ_SYMPY // 3
    # the paper grader sends SymPy only non-integers with at most two letters: fuzz expressions in x
    in_x = ["1", "2", "42", "0.5", "x", "+", "-", "*", "**", "/", "(", ")", "\\sqrt{2}", "\\frac{1}{2}", "\\pi", " "]
    while len(sympy_items) < n_sympy:
        if grader == "math-verify":
            sympy_items.append((boxed(random_text(rng, balanced, 12)), rng.choice(truths)))
        else:
            sympy_items.append((boxed("x+" + random_text(rng, in_x, 10)), "x+1"))
    rng.shuffle(sympy_items)
    slowest, sympy_started = 0.0, time.monotonic()
    for text, truth in sympy_items:
        timeouts = pool.stats["timeouts"]
        started = time.monotonic()
        verdict = grade(text, truth, TIMEOUT, pool=pool, grader=grader)
        elapsed = time.monotonic() - started
        slowest = max(slowest, elapsed)
        assert verdict in (True, False)
        assert elapsed <= TIMEOUT + SLACK, f"seed {seed}: {elapsed:.2f} s for {text!r}"
        if pool.stats["timeouts"] > timeouts:
            pool.warm()  # the killed worker's replacement imports math-verify outside the timed calls
    sent = pool.stats["checks"] - checks_before
    # the paper grader's rules (integers strictly, at most two letters) keep more answers from SymPy
    least = n_sympy // 2 if grader == "math-verify" else n_sympy // 5
    assert sent >= least, f"seed {seed}: only {sent} of {n_sympy} fuzz answers reached SymPy"
    assert pool.stats["timeouts"] - timeouts_before >= 1  # the slow answer past the screen was cut off
    print(f"SymPy-path fuzz: {sent} checks, {pool.stats['timeouts']} timeouts, slowest call {slowest:.2f} s, "
          f"{time.monotonic() - sympy_started:.1f} s in all")

    assert not sentinel.exists(), f"seed {seed}: a payload created {sentinel}"
    if Path("/proc").is_dir():
        allowed = set(pool.pids()) | set(DEFAULT_POOL.pids())
        assert child_pids() <= allowed, f"stray child processes: {child_pids() - allowed}"
        assert len(pool.pids()) <= pool.max_workers


def test_grade_in_threads_honours_the_timeout(pool):
    pool.warm(n_workers=2)
    alarm_handler = signal.getsignal(signal.SIGALRM)

    def timed(response: str, truth: str) -> tuple[bool, float]:
        started = time.monotonic()
        return grade(response, truth, TIMEOUT, pool=pool), time.monotonic() - started

    result: dict[str, tuple[bool, float]] = {}
    thread = threading.Thread(target=lambda: result.update(slow=timed(boxed("(10^{100})!"), "2")))
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    verdict, elapsed = result["slow"]
    assert verdict is False and elapsed <= TIMEOUT + SLACK, elapsed

    pool.warm(n_workers=2)
    with ThreadPoolExecutor(max_workers=2) as executor:
        slow = executor.submit(timed, boxed("\\binom{10^{12}}{10^{6}}"), "2")
        fine = executor.submit(timed, boxed("0.5"), "\\frac{1}{2}")
        (slow_verdict, slow_elapsed), (fine_verdict, _) = slow.result(timeout=30), fine.result(timeout=30)
    assert slow_verdict is False and slow_elapsed <= TIMEOUT + SLACK, slow_elapsed
    assert fine_verdict is True  # a slow neighbour does not spoil a concurrent check
    assert signal.getsignal(signal.SIGALRM) == alarm_handler  # no signal-based timeout in this process


def test_waiting_for_a_busy_worker_counts_against_the_timeout():
    single = GraderPool(max_workers=1)
    try:
        single.warm()
        with ThreadPoolExecutor(max_workers=2) as executor:
            slow = executor.submit(grade, boxed("(10^{100})!"), "2", 1.5, pool=single)
            time.sleep(0.3)  # the slow check now holds the only worker
            started = time.monotonic()
            waiting = executor.submit(grade, boxed("0.5"), "\\frac{1}{2}", 0.5, pool=single)
            assert waiting.result(timeout=30) is False
            assert time.monotonic() - started <= 0.5 + SLACK
            assert slow.result(timeout=30) is False
        assert single.stats["busy"] == 1
    finally:
        single.close()


def _grade_in_forked_worker(parent_worker_pids: list[int]) -> dict:
    """Runs in a daemonic multiprocessing worker forked from the test process."""
    DEFAULT_POOL.warm()
    own = DEFAULT_POOL.pids()
    fine = grade(boxed("0.5"), "\\frac{1}{2}", TIMEOUT)
    started = time.monotonic()
    slow = grade(boxed("(10^{100})!"), "2", TIMEOUT)
    elapsed = time.monotonic() - started
    DEFAULT_POOL.close()
    return {"slow": slow, "elapsed": elapsed, "fine": fine, "shared": sorted(set(own) & set(parent_worker_pids))}


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method")
def test_grade_in_a_forked_worker_process():
    DEFAULT_POOL.warm()
    parent_pids = DEFAULT_POOL.pids()
    with multiprocessing.get_context("fork").Pool(1) as workers:
        out = workers.apply(_grade_in_forked_worker, (parent_pids,))
    assert out["slow"] is False and out["elapsed"] <= TIMEOUT + SLACK, out
    assert out["fine"] is True
    assert out["shared"] == []  # the child started its own workers, never used the parent's
    assert DEFAULT_POOL.pids() == parent_pids
    assert grade(boxed("0.5"), "\\frac{1}{2}", TIMEOUT)


def test_grade_many_equals_grade_one_by_one(pool):
    pairs = [(boxed("0.5"), "\\frac{1}{2}"), (boxed("3"), "4"), ("no box", "1"), (boxed("b+a"), "a+b"),
             (boxed("\\dfrac12"), "\\boxed{\\frac{1}{2}}"), (boxed("x+2"), "x+1")]
    many = grade_many([r for r, _ in pairs], [g for _, g in pairs], TIMEOUT, pool=pool)
    assert many == [grade(r, g, TIMEOUT, pool=pool) for r, g in pairs]
    assert many == [True, False, False, True, True, False]
    with pytest.raises(ValueError, match="2 responses but 1 ground truths"):
        grade_many(["a", "b"], ["a"])


def test_a_broken_worker_degrades_to_the_string_match(monkeypatch):
    failing = 'print(\'{"ready": false, "error": "ImportError: no module named math_verify"}\', flush=True)'
    monkeypatch.setattr(grader_pool, "_worker_command", lambda: [sys.executable, "-c", failing])
    broken = GraderPool(max_workers=1)
    try:
        with pytest.warns(RuntimeWarning, match="cannot start"):
            assert grade(boxed("0.5"), "\\frac{1}{2}", TIMEOUT, pool=broken) is False
        assert grade(boxed("\\dfrac12"), "\\frac{1}{2}", TIMEOUT, pool=broken) is True
        assert broken.stats["worker_starts"] == 1  # no restart loop
    finally:
        broken.close()


def test_a_worker_dying_mid_check_is_replaced(monkeypatch):
    dies = 'import sys; print(\'{"ready": true}\', flush=True); sys.stdin.readline(); sys.exit(3)'
    monkeypatch.setattr(grader_pool, "_worker_command", lambda: [sys.executable, "-c", dies])
    crashing = GraderPool(max_workers=1)
    try:
        assert crashing.equivalent("1", "1", TIMEOUT) is False
        assert crashing.stats["timeouts"] == 1 and crashing.stats["worker_starts"] == 2
    finally:
        crashing.close()


def test_importing_the_verifier_stays_light():
    code = ("import sys, justrl_lite.verifier; "
            "heavy = [m for m in ('torch', 'sympy', 'math_verify') if m in sys.modules]; "
            "assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
