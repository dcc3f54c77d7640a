"""Evaluation graders: is the final answer of a response equal to the ground truth? Two graders, by name.

``grader="paper"``: the authors' rule grader (``grading/paper_grader.py``; thunlp/JustRL ``grade_answer_verl``), the one
the paper's numbers came from (with the CompassVerifier judge for what it rejects, ``evaluation/judge.py``).

``grader="math-verify"``: our lenient grader, also the lenient ablation reward's (``verifier.lenient_reward``)
and, by default, in-training validation's (the authors' validation on AIME24/25 and AMC23 used math-verify):

    a       = unbox(last_boxed(response))                            (the whole response; no box -> wrong)
    g       = ground_truth with one outer \\boxed{} removed when it is stored boxed (AIME24: "\\boxed{204}")
    correct = normalize_answer(a) == normalize_answer(g)                        (stage 1, in-process)
              or |a - g| <= 1e-6 * max(|a|, |g|)      if both are plain numbers  (stage 2, in-process)
              or math_verify.verify(parse(g), parse(a))  otherwise               (stage 2, SymPy, bounded)

Both take untrusted model output, so:
  1. string rules run first, in-process; only what they cannot decide reaches SymPy, in a worker subprocess of
     ``grader_pool.GraderPool`` that is killed and replaced when a check overruns ``timeout``;
  2. math-verify sees text only through its LaTeX parser; the paper grader's ``parse_expr`` (which evaluates
     Python) sees only what the authors' guard lets through (at most two distinct letters), in that worker;
  3. our grader caps inputs before parsing: a boxed answer longer than ``MAX_ANSWER_CHARS`` is no answer, and only
     answers of at most ``MAX_SYMPY_CHARS`` reach SymPy (the paper grader keeps the authors' rules, no cap);
  4. a call never raises: anything unexpected grades as wrong;
  5. ``grade_many`` grades each distinct (response, ground truth) pair once and runs each distinct SymPy job once
     per call (a collapsed policy repeating one degenerate box costs one check, not one per sample), and both
     graders screen a job's size before SymPy (``too_big_for_sympy``): a digit run longer than
     ``MAX_SYMPY_DIGITS`` or an exponent tower (``a^b^c``) is graded wrong at once instead of after ``timeout``
     seconds in a worker. ``python benchmarks/grader_repeats.py`` times both defences.
This module imports neither torch nor SymPy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from justrl_lite.boxed import last_boxed_only_string, remove_boxed, unbox_ground_truth
from justrl_lite.config_checks import GRADERS
from justrl_lite.grading.paper_grader import paper_rule_stage
from justrl_lite.grading.pool import DEFAULT_POOL, DEFAULT_TIMEOUT, GraderPool

DEFAULT_GRADER = "math-verify"
"""The grader of ``grade``/``grade_many`` when none is named (the lenient reward's; validation's by default)."""

EVAL_GRADER = "paper"
"""The default grader of evaluation and regrading: the authors' rule grader, since the paper's numbers came from it."""

MAX_ANSWER_CHARS = 1000
"""A boxed answer longer than this is no answer (the longest ground truth of the nine benchmarks has 210)."""

MAX_SYMPY_CHARS = 300
"""Answers (and ground truths) longer than this get the string match only, never SymPy."""

MAX_SYMPY_DIGITS = 100
"""A SymPy job holding a run of more digits than this is graded wrong without SymPy (the nine benchmarks' ground
truths are far shorter; ``MAX_ANSWER_CHARS``)."""

_DIGIT_RUN = re.compile(rf"\d{{{MAX_SYMPY_DIGITS + 1}}}")
# a tower a^n^c: an exponent that is a number and is itself raised (10^{10^{10}}, 9^9^9); e^{x^2} is not one
_TOWER = re.compile(r"(?:\^|\*\*)\s*\{?\s*\d[\d.]*\s*\}?\s*(?:\^|\*\*)")

NUMBER_REL_TOL = Decimal("1e-6")
"""Two plain numbers (``12``, ``-0.5``, ``2.88e-19``, ``4.5\\times10^{33}``) are equal within this relative
tolerance, decided without SymPy: math-verify rounds to 6 decimal places instead, which calls 2.88e-19 and
1.325e-27 equal (Minerva has many such answers)."""


# ---- our MATH-style answer normalisation ---------------------------------------------------------------------------

_SIZED_DELIMITER = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|bigg|Bigg)(?![a-zA-Z])\.?")
_SPACING = re.compile(r"\\[,:;! ]|\\q?quad(?![a-zA-Z])|~")
_DEGREES = re.compile(r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|°|\\degree(?![a-zA-Z])")
_PERCENT = re.compile(r"\\?%")
_RIGHT_UNITS = re.compile(r"\\(?:text|mbox|mathrm)\{\s[^{}]*\}\s*$")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|textnormal|mbox|mathrm)\s*\{([^{}]*)\}")
_WHITESPACE = re.compile(r"\s+")
_FRAC_FIRST_SHORT = re.compile(r"\\frac(\w)")
_FRAC_SECOND_SHORT = re.compile(r"\\frac(\{[^{}]*\})(\w)")
_SQRT_SHORT = re.compile(r"\\sqrt(\w)")
_BARE_DECIMAL = re.compile(r"(^|[-+(,{=\[])\.(\d)")
_THOUSANDS = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
_INTEGER_RATIO = re.compile(r"(-?)(\d+)/(\d+)")
_PLAIN_NUMBER = re.compile(
    r"(?P<mantissa>[-+]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:[eE](?P<e>[-+]?\d{1,4})|(?:\\times|\\cdot)10\^(?:\{(?P<braced>[-+]?\d{1,4})\}|(?P<digit>\d)))?"
)


@lru_cache(maxsize=4096)
def normalize_answer(answer: str) -> str:
    """MATH-style (Hendrycks) normal form of an answer string, for the string-match stage of ``grade``.

    Two answers that differ only in typesetting map to the same string, e.g. ``\\left( 3, \\dfrac{\\pi}{2} \\right)``
    and ``(3,\\frac{\\pi}{2})``, ``90^\\circ`` and ``90``, ``\\text{Evelyn}`` and ``Evelyn``, ``5\\text{ cm}`` and
    ``5``, ``x = 5`` and ``5``, ``.5`` and ``0.5``, ``1,000`` and ``1000``, ``3/4`` and ``\\frac{3}{4}``.
    Mathematical equivalence (``0.5`` and ``\\frac{1}{2}``) is SymPy's job, not this function's.
    """
    s = answer.strip().replace("\n", " ")
    # math-mode dollars and escaped dollar signs carry no value
    s = s.replace("\\$", "").replace("$", "")
    # \left( -> (, \right) -> ), \left. -> nothing; spacing commands vanish
    s = _SIZED_DELIMITER.sub("", s)
    s = _SPACING.sub("", s)
    # \dfrac and \tfrac are \frac at another size
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    # degrees and percent signs are units of the number
    s = _DEGREES.sub("", s)
    s = _PERCENT.sub("", s)
    # a trailing "\text{ cm}" (text starting with a space) is a unit: drop it; other text wrappers keep their words
    s = _RIGHT_UNITS.sub("", s)
    s = _TEXT_WRAPPER.sub(r"\1", s)
    # "x = 5" -> "5" when the left side is a short name
    if s.count("=") == 1:
        left, right = s.split("=")
        if len(left.strip()) <= 2:
            s = right
    s = _WHITESPACE.sub("", s)
    # shorthand TeX: \frac12 -> \frac{1}{2}, \frac{1}2 -> \frac{1}{2}, \sqrt3 -> \sqrt{3}
    s = _FRAC_FIRST_SHORT.sub(r"\\frac{\1}", s)
    s = _FRAC_SECOND_SHORT.sub(r"\\frac\1{\2}", s)
    s = _SQRT_SHORT.sub(r"\\sqrt{\1}", s)
    # ".5" -> "0.5"
    s = _BARE_DECIMAL.sub(r"\g<1>0.\2", s)
    # a sentence's full stop is not part of the answer
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1]
    # thousands separators: "1,000" and "1{,}000" -> "1000"
    s = s.replace("{,}", "")
    if _THOUSANDS.fullmatch(s):
        s = s.replace(",", "")
    # integer ratio: "3/4" -> "\frac{3}{4}"
    ratio = _INTEGER_RATIO.fullmatch(s)
    if ratio:
        s = f"{ratio[1]}\\frac{{{ratio[2]}}}{{{ratio[3]}}}"
    return s


_SCIENTIFIC = re.compile(r"(-?\d+(?:\.\d+)?)[eE]([-+]?\d+)")


def sympy_ready(answer: str) -> str:
    """The answer as math-verify should read it: no math-mode dollars, ``4.5e33`` written ``4.5\\times10^{33}``."""
    s = answer.strip().replace("$", "").strip()
    scientific = _SCIENTIFIC.fullmatch(s)
    if scientific:
        s = f"{scientific[1]}\\times10^{{{scientific[2]}}}"
    return s


def plain_number(normal_answer: str) -> Decimal | None:
    """The value of a normalised answer that is one plain number (decimal or scientific notation), else None."""
    match = _PLAIN_NUMBER.fullmatch(normal_answer)
    if match is None:
        return None
    exponent = match["e"] or match["braced"] or match["digit"] or "0"
    # m e k  and  m \times 10^{k}  both mean m * 10^k
    return Decimal(match["mantissa"]).scaleb(int(exponent))


def numbers_equal(a: Decimal, b: Decimal, rel_tol: Decimal = NUMBER_REL_TOL) -> bool:
    """|a - b| <= rel_tol * max(|a|, |b|)."""
    try:
        return abs(a - b) <= rel_tol * max(abs(a), abs(b))
    except (ArithmeticError, InvalidOperation):  # exponents beyond Decimal's range
        return False


# ---- the math-verify grader -----------------------------------------------------------------------------------

def _string_stage(response: str, ground_truth: str) -> tuple[bool | None, str, str]:
    """(verdict, ground truth, answer) from the cheap checks; verdict None means "ask SymPy"."""
    if not isinstance(response, str) or not isinstance(ground_truth, str):
        return False, "", ""
    # the last brace-matched box of the whole response; none (or absurdly long) -> wrong
    boxed = last_boxed_only_string(response, max_content_chars=MAX_ANSWER_CHARS)
    if boxed is None:
        return False, "", ""
    answer = remove_boxed(boxed)
    truth = unbox_ground_truth(ground_truth)
    # stage 1: MATH-style normalised string match (an empty box is no answer, an empty truth has none)
    normal_answer, normal_truth = normalize_answer(answer), normalize_answer(truth)
    if not normal_answer or not normal_truth:
        return False, truth, answer
    if normal_answer == normal_truth:
        return True, truth, answer
    # stage 2 for two plain numbers: relative tolerance, no SymPy
    number_answer, number_truth = plain_number(normal_answer), plain_number(normal_truth)
    if number_answer is not None and number_truth is not None:
        return numbers_equal(number_answer, number_truth), truth, answer
    if len(answer) > MAX_SYMPY_CHARS or len(truth) > MAX_SYMPY_CHARS:
        return False, truth, answer
    # stage 2 otherwise: SymPy equivalence
    return None, truth, answer


Job = tuple[int, dict]
"""(index of the pair, a worker job) for the SymPy stage."""


def check_grader(grader: str) -> None:
    if grader not in GRADERS:
        raise ValueError(f"unknown grader {grader!r}: choose one of {', '.join(GRADERS)}")


def too_big_for_sympy(job: dict) -> bool:
    """Would SymPy likely spend its whole timeout on this job? (a digit run over ``MAX_SYMPY_DIGITS``, a tower
    whose middle exponent is a number: ``10^{10^{10}}``; a rare small one such as ``2^{2^{3}}`` is refused too)."""
    text = " ".join(str(v) for k, v in job.items() if k != "kind")
    return _DIGIT_RUN.search(text) is not None or _TOWER.search(text) is not None


def _rule_stage(response: str, ground_truth: str, grader: str, timeout: float) -> tuple[bool, list[dict]]:
    """(verdict so far, SymPy jobs that must all succeed): no jobs means the verdict is final."""
    try:
        if not isinstance(response, str) or not isinstance(ground_truth, str):
            return False, []
        if grader == "paper":
            stage = paper_rule_stage(response, ground_truth)
            if isinstance(stage, bool):
                return stage, []
            jobs = [{"kind": "paper", "expr": expr} for expr in stage]
        else:
            verdict, truth, answer = _string_stage(response, ground_truth)
            if verdict is not None:
                return verdict, []
            jobs = [{"kind": "math-verify", "gold": sympy_ready(truth), "pred": sympy_ready(answer)}]
    except Exception:  # untrusted input must never stop an evaluation
        return False, []
    if jobs and (timeout <= 0 or any(too_big_for_sympy(job) for job in jobs)):  # string rules only
        return False, []
    return True, jobs


def grade(response: str, ground_truth: str, timeout: float = DEFAULT_TIMEOUT, *,
          pool: GraderPool | None = None, grader: str = DEFAULT_GRADER) -> bool:
    """Is the final answer of ``response`` equal to ``ground_truth``, by ``grader`` (``"paper"``/``"math-verify"``)?

    String rules first, then SymPy in a worker subprocess bounded by ``timeout`` seconds (``timeout <= 0``: string
    rules only). Never raises on model output; an overrun, a crash or malformed input grades as wrong.
    """
    check_grader(grader)
    verdict, jobs = _rule_stage(response, ground_truth, grader, timeout)
    pool = pool or DEFAULT_POOL
    # every SymPy check must pass (the paper grader checks a tuple element by element)
    return verdict and all(_safe_run(pool, job, timeout) for job in jobs)


def grade_many(responses: Sequence[str], ground_truths: Sequence[str], timeout: float = DEFAULT_TIMEOUT, *,
               pool: GraderPool | None = None, grader: str = DEFAULT_GRADER) -> list[bool]:
    """``grade`` over pairs: string rules in this thread, SymPy checks spread over the pool's workers."""
    check_grader(grader)
    if len(responses) != len(ground_truths):
        raise ValueError(f"grade_many: {len(responses)} responses but {len(ground_truths)} ground truths")
    pool = pool or DEFAULT_POOL
    # each distinct pair once: repeats of one degenerate answer cost one check
    first: dict[tuple, int] = {}
    for i, pair in enumerate(zip(responses, ground_truths)):
        first.setdefault(pair if all(isinstance(x, str) for x in pair) else (i,), i)
    stages = {i: _rule_stage(responses[i], ground_truths[i], grader, timeout) for i in first.values()}
    # each distinct SymPy job once
    jobs = {_job_key(job): job for verdict, pair_jobs in stages.values() if verdict for job in pair_jobs}
    results: dict[tuple, bool] = {}
    if jobs:
        def check(key: tuple) -> tuple[tuple, bool]:
            return key, _safe_run(pool, jobs[key], timeout)

        with ThreadPoolExecutor(max_workers=min(pool.max_workers, len(jobs))) as executor:
            results = dict(executor.map(check, list(jobs)))
    verdict_of = {i: verdict and all(results[_job_key(job)] for job in pair_jobs)
                  for i, (verdict, pair_jobs) in stages.items()}
    return [verdict_of[first[pair if all(isinstance(x, str) for x in pair) else (i,)]]
            for i, pair in enumerate(zip(responses, ground_truths))]


def _job_key(job: dict) -> tuple:
    return tuple(sorted(job.items()))


def _safe_run(pool: GraderPool, job: dict, timeout: float) -> bool:
    try:
        return pool.run(job, timeout)
    except Exception:
        return False
