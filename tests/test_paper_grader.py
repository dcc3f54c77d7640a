"""The paper's rule grader (``grader="paper"``): its decisions against rules re-derived by hand from the authors'
``grade_answer_verl`` (thunlp/JustRL ``evals/utils.py``), on the nine benchmarks' ground truths written in
equivalent and non-equivalent forms; and its disagreement with our math-verify grader.

Each expected decision below is worked out from the authors' rules (named in the table), not read back from
the code under test. Fresh random rows each run (seed printed; replay with JUSTRL_TEST_SEED); with
JUSTRL_FULL_GRADER_SWEEP=1 every row is used and the measured disagreement is printed (run with ``-s``).
"""

from __future__ import annotations

import os
import re
import time
from fractions import Fraction
from pathlib import Path

import pytest
from helpers import boxed, fresh_rng

import justrl_lite.boxed as boxed_module
from justrl_lite.boxed import paper_boxed_answer
from justrl_lite.grading.grade import grade, grade_many
from justrl_lite.grading.latex_text import latex_to_text
from justrl_lite.grading.paper_grader import mathd_normalize, split_tuple
from justrl_lite.grading.pool import GraderPool

DATA_DIR = Path(os.environ.get("JUSTRL_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "justrl_data"))
BENCHMARK_FILES = {
    "AIME24": "AIME24_test.parquet", "AIME25": "AIME25_test.parquet", "AMC23": "AMC23_test.parquet",
    "MATH-500": "MATH-500_test.parquet", "Minerva": "Minerva_test.parquet",
    "OlympiadBench": "Olympiad-Bench_test.parquet", "HMMT25": "HMMT25_test.parquet",
    "BRUMO25": "BRUMO25_test.parquet", "CMIMC25": "CMIMC25_test.parquet",
}
TIMEOUT = 2.0
FULL = os.environ.get("JUSTRL_FULL_GRADER_SWEEP") == "1"





@pytest.fixture(scope="module")
def truths() -> dict[str, list[str]]:
    """Ground truths as stored, per benchmark."""
    import pandas as pd

    if not all((DATA_DIR / f).is_file() for f in BENCHMARK_FILES.values()):
        pytest.skip(f"benchmark data not found at {DATA_DIR}")
    out = {}
    for name, f in BENCHMARK_FILES.items():
        frame = pd.read_parquet(DATA_DIR / f)
        col = [rm["ground_truth"] for rm in frame["reward_model"]] if "reward_model" in frame else frame["answer"]
        out[name] = [str(a) for a in col]
    return out


def unboxed(truth: str) -> str:
    return truth[len("\\boxed{"):-1] if truth.startswith("\\boxed{") and truth.endswith("}") else truth


# ---- each of the authors' rules, on ground truths of the nine benchmarks ---------------------------------------

HAND = [  # (response, ground truth as stored, decision, the rule that decides it)
    (boxed("204"), "\\boxed{204}", True, "a boxed ground truth is unboxed (AIME24)"),
    (boxed("205"), "\\boxed{204}", False, "integers: SymPy, (204)-(205) != 0"),
    ("so it is 204", "\\boxed{204}", False, "no \\boxed in the response: no answer"),
    ("\\fbox{204}", "\\boxed{204}", False, "\\fbox is never read (only when no \\boxed, which then fails)"),
    (boxed("204") + " then \\boxed 7", "\\boxed{204}", False, "the last \\boxed counts, and '\\boxed 7' is no box"),
    (boxed("204") + " then " + boxed("7"), "\\boxed{204}", False, "the last box counts"),
    ("\\boxed{204", "\\boxed{204}", False, "an unclosed box is no answer"),
    (boxed("204.0"), "\\boxed{204}", True, "a float equal to an integer is written as that integer"),
    (boxed("\\frac{226}{2}"), "113", False, "exactly one side an integer: strict, no SymPy (AIME24 #1)"),
    (boxed("2^{10}"), "1024", False, "'2^10' is no integer string: strict integer rule"),
    (boxed("1,000"), "1000", True, "thousands commas of an integer are dropped"),
    (boxed("10\\%"), "10", True, "MATH normalisation drops \\%"),
    (boxed("27\\text{ days}"), "27", True, "MATH normalisation: '\\text{ ' starts a unit"),
    (boxed("k = 27"), "27", True, "MATH normalisation: a short 'k =' is dropped"),
    (boxed("\\dfrac{14}{3}"), "\\frac{14}{3}", True, "MATH normalisation: dfrac -> frac (MATH-500 #2)"),
    (boxed("14/3"), "\\frac{14}{3}", True, "MATH normalisation: a/b -> \\frac{a}{b}"),
    (boxed("\\frac{28}{6}"), "\\frac{14}{3}", False, "two integer fractions must match as written"),
    (boxed("28/6"), "\\frac{14}{3}", False, "two integer fractions must match as written"),
    (boxed("0.5"), "\\frac{1}{2}", True, "MATH normalisation: 0.5 -> \\frac{1}{2}"),
    (boxed("0.50"), "\\frac{1}{2}", True, "SymPy: (1/2)-(0.50) simplifies to 0"),
    (boxed("4\\frac{2}{3}"), "\\frac{14}{3}", True, "a mixed number 4 2/3 is read 4+2/3; SymPy"),
    (boxed("\\frac{1}{\\sqrt{13}}"), "\\frac{\\sqrt{13}}{13}", True, "SymPy: 1/sqrt(13) - sqrt(13)/13 = 0"),
    (boxed("\\frac{\\sqrt{13}}{2}"), "\\frac{\\sqrt{13}}{2}", True, "equal strings (BRUMO25)"),
    (boxed("(3, \\frac{\\pi}{2})"), "\\left( 3, \\frac{\\pi}{2} \\right)", True,
     "MATH normalisation drops \\left/\\right"),
    (boxed("(3, \\frac{2\\pi}{4})"), "\\left( 3, \\frac{\\pi}{2} \\right)", True, "tuples element by element, SymPy"),
    (boxed("[3, \\frac{\\pi}{2}]"), "\\left( 3, \\frac{\\pi}{2} \\right)", False, "a tuple's brackets must match"),
    (boxed("(3, \\pi)"), "\\left( 3, \\frac{\\pi}{2} \\right)", False, "tuples element by element"),
    (boxed("(3)"), "\\left( 3, \\frac{\\pi}{2} \\right)", False, "tuples of another length"),
    (boxed("q - p"), "p - q", False, "SymPy: (p-q)-(q-p) != 0 (MATH-500 #3)"),
    (boxed("-q + p"), "p - q", True, "SymPy: two letters are allowed"),
    (boxed("c+b+a"), "a+b+c", False, "three distinct letters: no SymPy, and the strings differ"),
    (boxed("\\frac{x+1}{2}"), "\\frac{x}{2}+\\frac{1}{2}", False, "\\frac{x+1}{2} reads 'x+1/2' (no parentheses)"),
    (boxed("x^2+2x+1"), "(x+1)^2", True, "SymPy with implicit multiplication"),
    (boxed("\\text{evelyn}"), "\\text{Evelyn}", True, "answers compare in lower case (MATH-500)"),
    (boxed("\\text{(C)}"), "\\text{(C)}", True, "equal strings"),
    (boxed(""), "5", False, "an empty answer"),
    (boxed("5"), "", False, "an empty ground truth"),
    (boxed("4.5\\times10^{33}"), "4.5e33", False, "'^{' stops SymPy; the strings differ (Minerva #1)"),
    (boxed("41.8"), "41.8", True, "equal strings (Minerva)"),
    (boxed("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}"), "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", True,
     "equal strings (a MATH-500 matrix)"),
    (boxed("\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}"), "\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", False,
     "a matrix reads '[1/5;-18/5]': SymPy cannot parse it, and the strings differ"),
    (boxed("\\frac{1}{3}"), "\\frac{13}{32}", False, "two integer fractions, different (CMIMC25)"),
]


@pytest.mark.parametrize(("response", "truth", "decision", "rule"), HAND, ids=[h[3] for h in HAND])
def test_each_rule_of_the_authors_grader(response, truth, decision, rule, pool):
    assert grade(response, truth, TIMEOUT, pool=pool, grader="paper") is decision, rule


def test_grade_many_paper_equals_grade_one_by_one(pool):
    many = grade_many([r for r, *_ in HAND], [t for _, t, *_ in HAND], TIMEOUT, pool=pool, grader="paper")
    assert many == [d for _, _, d, _ in HAND]


def test_unknown_grader_is_one_clear_error():
    with pytest.raises(ValueError, match="unknown grader 'sympy'"):
        grade(boxed("1"), "1", grader="sympy")


# ---- the pieces, each against a re-derivation ------------------------------------------------------------------

def reference_paper_box(text: str) -> str | None:
    """The authors' extraction, re-derived: braces counted from the last \\boxed; content iff it reads \\boxed{..}."""
    start = text.rfind("\\boxed")
    if start < 0:
        return None
    depth = 0
    for i in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if text[i] == "}" and depth == 0:
            found = text[start:i + 1]
            return found[7:-1] if found.startswith("\\boxed{") else None
    return None


@pytest.mark.parametrize("chunk", [1, 3, 4096])
def test_paper_boxed_answer_matches_its_re_derivation(chunk, monkeypatch):
    rng, seed = fresh_rng()
    monkeypatch.setattr(boxed_module, "_CHUNK", chunk)
    pieces = ["{", "}", "\\boxed", "\\boxed{", "a", "}{", " ", "\\boxed}"]
    for _ in range(3000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randrange(0, 30)))
        assert paper_boxed_answer(text) == reference_paper_box(text), (seed, text)


@pytest.mark.parametrize(("latex", "text"), [
    ("\\frac{a}{b}", "a/b"), ("\\frac12", "1/2"), ("\\frac{x+1}{2}", "x+1/2"), ("\\sqrt{2}", "\u221a(2)"),
    ("\\sqrt[3]{x}", "\u221a(x)"), ("\\text{Evelyn}", "Evelyn"), ("\\pi r", "\u03c0r"), ("\\infty", "\u221e"),
    ("A \\cup B", "A \u222aB"), ("2\\cdot 3", "2\u00b73"), ("3\\times 4", "3\u00d74"), ("x \\le 1", "x \u22641"),
    ("\\left(1, 2\\right)", "(1, 2)"), ("1\\,000", "1 000"), ("\\{1\\}", "{1}"), ("\\unknown{5}", "5"),
    ("\\mathrm{cm}", "cm"), ("\\alpha+\\Omega", "\u03b1+\u03a9"), ("$x$", "x"), ("5\\mbox{cm}", "5"),
    ("\\textcolor{red}{5}", "5"), ("k \\geqslant 2", "k \u2a7e2"),
    ("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}", "[ -1  0;  0 -1 ]"),  # cells right-aligned to the widest
    ("\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}", "[   1/5; -18/5 ]"), ("\\begin{cases} 1 \\end{cases}", " 1 "),
])
def test_latex_to_text(latex, text):
    assert latex_to_text(latex) == text


@pytest.mark.parametrize(("raw", "normal"), [
    ("\\dfrac12", "\\frac{1}{2}"), ("\\tfrac{3}4", "\\frac{3}4"), ("0.5", "\\frac{1}{2}"), ("3/4", "\\frac{3}{4}"),
    ("5\\text{ cm}", "5"), ("k = 5", "5"), ("\\sqrt3", "\\sqrt{3}"), (".5", "\\frac{1}{2}"), (" .25", "0.25"),
    ("\\left(1, 2\\right)", "(1,2)"), ("90^\\circ", "90"), ("\\text{Evelyn}", "Evelyn"), ("10\\%", "10"),
    ("\\frac", "\\frac"), ("5\\text{ a}\\text{ b}", "5\\text{ a}\\text{ b}"), ("\\sqrt", "\\sqrt"),
])
def test_mathd_normalize(raw, normal):
    assert mathd_normalize(raw) == normal


def test_split_tuple():
    assert split_tuple("(1,2)") == ["1", "2"] and split_tuple("[1,2)") == ["1", "2"]
    assert split_tuple("(1,000,2)") == ["1000", "2"]  # a thousands comma is no separator
    assert split_tuple("((1,2),3)") == ["((1,2),3)"] and split_tuple("1,2") == ["1,2"] and split_tuple("") == []


# ---- every benchmark row ---------------------------------------------------------------------------------------

def test_every_answer_as_written_or_retyped_is_accepted_by_string_rules(truths, pool):
    """Exact, re-spaced, \\dfrac and \\text{}-wrapped forms pass MATH normalisation, so no SymPy is needed."""
    checks = pool.stats["checks"]
    for name, rows in truths.items():
        for truth in rows:
            a = unboxed(truth)
            forms = [boxed(a), boxed(f"  {a} "), boxed(a.replace("\\frac", "\\dfrac"))]
            if "\n" not in a:
                forms.append(boxed("\\text{" + a + "}"))
            for response in forms:
                assert grade(response, truth, 0, pool=pool, grader="paper"), (name, truth, response)
    assert pool.stats["checks"] == checks


def test_integer_answers_are_compared_strictly(truths, pool):
    rng, seed = fresh_rng()
    integers = [(t, int(unboxed(t))) for rows in truths.values() for t in rows if re.fullmatch(r"-?\d+", unboxed(t))]
    sample = integers if FULL else rng.sample(integers, 40)
    responses, expected = [], []
    for _, n in sample:
        responses += [boxed(f"{n}.0"), boxed(f"\\frac{{{2 * n}}}{{2}}"), boxed(str(n + 1)), boxed(f"{n:,}")]
        # n.0 is the integer n; 2n/2 is no integer string (strict rule); n+1 differs (SymPy); 1,000 is 1000
        expected += [True, False, False, True]
    verdicts = grade_many(responses, [t for t, _ in sample for _ in range(4)], TIMEOUT, pool=pool, grader="paper")
    assert verdicts == expected, seed


def test_integer_fractions_must_match_as_written(truths, pool):
    fractions = [(t, int(m[1]), int(m[2])) for rows in truths.values() for t in rows
                 if (m := re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", t))]
    assert len(fractions) >= 60
    responses, expected = [], []
    for _, p, q in fractions:
        value = Fraction(p, q)
        responses += [boxed(f"{p}/{q}"), boxed(f"\\dfrac{{{p}}}{{{q}}}"), boxed(f"\\frac{{{3 * p}}}{{{3 * q}}}")]
        expected += [True, True, False]
        if value.denominator in (2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50):  # a terminating decimal: SymPy says equal
            responses.append(boxed(str(float(value))))
            expected.append(True)
    truths_for = [t for t, p, q in fractions for _ in range(3 + (Fraction(p, q).denominator in
                                                                 (2, 4, 5, 8, 10, 16, 20, 25, 32, 40, 50)))]
    assert grade_many(responses, truths_for, TIMEOUT, pool=pool, grader="paper") == expected


# ---- the two graders side by side ------------------------------------------------------------------------------

def written_forms(truth: str) -> dict[str, str]:
    """Responses for one ground truth: the forms the issue measured (equivalent ones and wrong ones)."""
    a = unboxed(truth)
    forms = {"exact": boxed(a), "re-spaced": boxed(f" {a} "), "text": boxed("\\text{" + a + "}"),
             "dollars": boxed(f"${a}$"), "unboxed": f"The answer is {a}."}
    if "\\frac" in a:
        forms["dfrac"] = boxed(a.replace("\\frac", "\\dfrac"))
    if re.fullmatch(r"-?\d+", a):
        forms["decimal"], forms["perturbed"] = boxed(f"{a}.0"), boxed(str(int(a) + 1))
    else:
        forms["perturbed"] = boxed(a + "+1")
        if m := re.fullmatch(r"\\frac\{(\d+)\}\{(\d+)\}", a):
            forms["decimal"] = boxed(f"{int(m[1]) / int(m[2]):.6g}")
    return forms


def test_the_two_graders_agree_on_exact_and_unboxed_forms_and_rarely_elsewhere(truths):
    rng, seed = fresh_rng()
    rows = [(b, t) for b, ts in truths.items() for t in ts]
    sample = rows if FULL else rng.sample(rows, 150)
    items = [(b, kind, response, t) for b, t in sample for kind, response in written_forms(t).items()]
    own = GraderPool(max_workers=2)
    try:
        responses, answers = [i[2] for i in items], [i[3] for i in items]
        paper = grade_many(responses, answers, TIMEOUT, pool=own, grader="paper")
        ours = grade_many(responses, answers, TIMEOUT, pool=own, grader="math-verify")
    finally:
        own.close()
    for (bench, kind, _, truth), p, m in zip(items, paper, ours):
        if kind == "exact":
            assert p and m, (seed, bench, truth)
        if kind == "unboxed":
            assert not p and not m, (seed, bench, truth)
    differ = [(i, p, m) for i, p, m in zip(items, paper, ours) if p != m]
    rate = len(differ) / len(items)
    by_kind: dict[str, int] = {}
    for (_, kind, _, _), _, _ in differ:
        by_kind[kind] = by_kind.get(kind, 0) + 1
    print(f"graders disagree on {len(differ)} of {len(items)} responses ({100 * rate:.1f}%), by form: {by_kind}")
    assert rate < 0.10, (seed, by_kind)


def test_long_or_pathological_latex_answers_are_decided_fast(pool):
    """Our bound (the authors have none): a boxed answer over 1,000 characters is no answer, and LaTeX within
    the bound is read in-process in well under a second, however it nests."""
    assert grade(boxed("1" + " " * 1000), "1", 0, pool=pool, grader="paper") is False
    assert grade(boxed("1" + " " * 900), "1", 0, pool=pool, grader="paper") is True
    nasty = ["\\begin{pmatrix}1&2\\\\" * 60, "\\begin{pmatrix}" * 35 + "1" + "\\end{pmatrix}" * 35,
             "\\begin{pmatrix}{" * 70, "\\frac{" * 160 + "1" + "}" * 160, "\\sqrt{" * 150 + "}" * 150, "\\pi --" * 160]
    for answer in nasty:
        started = time.monotonic()
        assert grade(boxed(answer[:1000]), "\\frac{1}{2}", 0, pool=pool, grader="paper") is False
        assert time.monotonic() - started < 0.5, answer[:40]
