"""The authors' rule grader (``grade_answer_verl`` in thunlp/JustRL ``evals/utils.py``), rewritten from its rules.

    g = ground_truth, unboxed when it holds a \\boxed        (empty ground truth -> wrong)
    a = paper_boxed_answer(response)                          (no \\boxed{...} -> wrong)
    correct = mathd(a) == mathd(g)                            (Hendrycks' MATH normalisation, string equality)
              or sympy_rules(normalize(a), normalize(g))      (below)

sympy_rules, on the two normalised strings:
  1. equal strings -> correct; an empty answer -> wrong;
  2. tuples and intervals (``(..)``/``[..]`` with commas) are compared element by element, and a tuple ground
     truth needs the same opening and closing bracket;
  3. per element: two integer fractions (``3/6``) must match as written (unreduced fractions are not reduced);
     if exactly one side is an integer, wrong (an integer ground truth is compared strictly);
     otherwise ``simplify((g) - (a)) == 0`` by SymPy, when the authors' guard allows it (at most two distinct
     letters, no ``^{``, ``^(`` or long powers), in a killable worker (``grader_pool``) bounded in time.
Checked once against the authors' own ``grade_answer_verl`` (run from their source, with pylatexenc 2.10) on
responses built from the nine benchmarks' ground truths in many written forms: the same decision on each.
Everything but that SymPy call runs here, in-process, in microseconds. One departure, to bound that time: a boxed
answer longer than ``MAX_PAPER_ANSWER_CHARS`` (1,000 characters) is no answer. ``paper_rule_stage`` returns either a
verdict or the SymPy expressions still to check (all must simplify to zero).
"""

from __future__ import annotations

import re

from justrl_lite.boxed import paper_boxed_answer
from justrl_lite.grading.latex_text import latex_to_text

# ---- Hendrycks' MATH normalisation (the "mathd" string match) ------------------------------------------------

_TEXT_WRAPPED = re.compile(r"^\\text\{(?P<text>.+?)\}$")


class _NotNormalisable(Exception):
    """A step of the MATH normalisation gave up: the answer is then compared as it stands."""


def mathd_normalize(answer: str | None) -> str | None:
    """Hendrycks' MATH normal form; an answer a step cannot handle is returned stripped (and unwrapped)."""
    if answer is None:
        return None
    answer = answer.strip()
    m = _TEXT_WRAPPED.search(answer)
    if m is not None:
        answer = m.group("text").strip()
    try:
        return _mathd_steps(answer)
    except (_NotNormalisable, IndexError):
        return answer


def _mathd_steps(s: str) -> str:
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    # a unit is text after "\text{ " (with its space): keep what comes before it; twice -> give up
    if "\\text{ " in s:
        parts = s.split("\\text{ ")
        if len(parts) != 2:
            raise _NotNormalisable
        s = parts[0]
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    # "k = 5" -> "5" when the left side has at most two characters
    if s.count("=") == 1 and len(s.split("=")[0]) <= 2:
        s = s.split("=")[1]
    s = _braced_sqrt(s)
    s = s.replace(" ", "")
    s = _braced_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_to_frac(s)


def _braced_sqrt(s: str) -> str:
    """``\\sqrt3`` -> ``\\sqrt{3}`` (one character); ``\\sqrt`` at the very end cannot be fixed."""
    head, *pieces = s.split("\\sqrt")
    for piece in pieces:
        head += "\\sqrt" + (piece if piece[0] == "{" else "{" + piece[0] + "}" + piece[1:])
    return head


def _braced_fracs(s: str) -> str:
    """``\\frac12`` -> ``\\frac{1}{2}``, ``\\frac1{2}`` -> ``\\frac{1}{2}``; a one-character tail -> unchanged."""
    head, *pieces = s.split("\\frac")
    for piece in pieces:
        head += "\\frac"
        if piece[0] == "{":
            head += piece
            continue
        if len(piece) < 2:
            return s
        a, b, rest = piece[0], piece[1], piece[2:]
        head += "{" + a + "}" + (b + rest if b == "{" else "{" + b + "}" + rest)
    return head


def _slash_to_frac(s: str) -> str:
    """``3/4`` -> ``\\frac{3}{4}`` when both sides are integers written plainly."""
    parts = s.split("/")
    if len(parts) != 2:
        return s
    try:
        a, b = int(parts[0]), int(parts[1])
    except ValueError:
        return s
    return f"\\frac{{{a}}}{{{b}}}" if s == f"{a}/{b}" else s


# ---- the SymPy-side normalisation ------------------------------------------------------------------------------

UNITS = ("degree", "cm", "centimeter", "meter", "mile", "second", "minute", "hour", "day", "week", "month",
         "year", "foot", "feet", "inch", "yard")
_UNIT_PATTERNS = [re.compile(unit + r"(es)?(s)? *(\^[0-9]+)?") for unit in UNITS]
_THOUSANDS_COMMA = re.compile(r"(\d)(,)(\d\d\d)($|\D)")
_MIXED_NUMBER = re.compile(r"([0-9]) +([0-9])")
_INTEGER_FRACTION = re.compile(r"^-?[0-9]+.?/0*[1-9][0-9]*.?$")
_UNICODE_TO_SYMPY = (("\u221a", "sqrt"), ("\u03c0", "pi"), ("\u221e", "inf"), ("\u222a", "U"), ("\u00b7", "*"),
                     ("\u00d7", "*"))
TUPLE_BRACKETS = "()[]"
MAX_PAPER_ANSWER_CHARS = 1000
"""A boxed answer longer than this is no answer (ours, not the authors': the longest ground truth has 210
characters, and reading a long answer's LaTeX in-process could take seconds)."""
TOO_SLOW_FOR_SYMPY = ("^{", "^(")
_LONG_POWERS = (re.compile(r"\^[0-9]+\^"), re.compile(r"\^[0-9][0-9]+"))


def normalize(expr: str | None) -> str | None:
    """The authors' normal form for the SymPy rules: units, words and TeX removed, lower case, ints as ints."""
    if expr is None:
        return None
    m = _TEXT_WRAPPED.search(expr)
    if m is not None:
        expr = m.group("text")
    expr = expr.replace("\\%", "%").replace("\\$", "$").replace("$", "").replace("%", "")
    expr = expr.replace(" or ", " , ").replace(" and ", " , ")
    expr = expr.replace("million", "*10^6").replace("billion", "*10^9").replace("trillion", "*10^12")
    for unit in _UNIT_PATTERNS:
        expr = unit.sub("", expr)
    expr = re.sub(r"\^ *\\circ", "", expr)
    if expr and expr[0] == "{" and expr[-1] == "}":
        expr = expr[1:-1]
    expr = re.sub(r",\\! *", "", expr)
    if _is_float(expr) and _is_int(float(expr)):
        expr = str(int(round(float(expr))))
    if "\\" in expr:
        try:
            expr = _latex_for_sympy(expr)
        except (RecursionError, ValueError):  # too deep to read, or an empty matrix: left as written
            pass
    expr = re.sub("- *", "-", expr)
    # "7 3/4" is a mixed number: 7+3/4
    expr = _MIXED_NUMBER.sub(r"\1+\2", expr)
    expr = expr.replace(" ", "").replace("{", "").replace("}", "").lower()
    if _str_is_int(expr):
        expr = str(int(float(expr.replace(",", ""))))
    return expr


def _latex_for_sympy(expr: str) -> str:
    expr = expr.replace("\\tfrac", "\\frac").replace("\\dfrac", "\\frac")
    # a space before \frac keeps a mixed number "2\frac{1}{2}" apart: "2 1/2"
    text = latex_to_text(expr.replace("\\frac", " \\frac"))
    for symbol, name in _UNICODE_TO_SYMPY:
        text = text.replace(symbol, name)
    return text.strip()


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _is_int(x: float) -> bool:
    try:
        return abs(x - int(round(x))) <= 1e-7
    except (OverflowError, ValueError):
        return False


def _str_is_int(s: str) -> bool:
    try:
        return _is_int(float(strip_thousands_commas(s)))
    except ValueError:
        return False


def strip_thousands_commas(expr: str) -> str:
    """``1,234,567`` -> ``1234567``; a comma that separates tuple elements stays."""
    while True:
        stripped = _THOUSANDS_COMMA.sub(r"\1\3\4", expr)
        if stripped == expr:
            return stripped
        expr = stripped


def split_tuple(expr: str) -> list[str]:
    """Elements of a tuple or interval ``(a,b)``/``[a,b)`` (no nested brackets); anything else is one element."""
    expr = strip_thousands_commas(expr)
    if not expr:
        return []
    inner = expr[1:-1]
    if (len(expr) > 2 and expr[0] in TUPLE_BRACKETS and expr[-1] in TUPLE_BRACKETS
            and not any(ch in inner for ch in TUPLE_BRACKETS)):
        return [element.strip() for element in inner.split(",")]
    return [expr]


def is_integer_fraction(expr: str) -> bool:
    return _INTEGER_FRACTION.search(expr) is not None


def sympy_allowed(expr: str) -> bool:
    """The authors' guard before SymPy: at most two distinct letters, no ``^{``/``^(``, no long powers."""
    letters = {ch for ch in expr.replace("sqrt", "").replace("frac", "") if ch.isalpha()}
    if len(letters) > 2 or any(bad in expr for bad in TOO_SLOW_FOR_SYMPY):
        return False
    return not any(p.search(expr) for p in _LONG_POWERS)


# ---- the decision ----------------------------------------------------------------------------------------------

def sympy_rules(answer: str, truth: str) -> bool | list[str]:
    """Rules 1-3 of the module docstring: a verdict, or the ``(g)-(a)`` expressions SymPy must call zero."""
    truth_n, answer_n = normalize(truth), normalize(answer)
    if truth_n is None or answer_n is None:
        return False
    if truth_n == answer_n:
        return True
    if not answer_n:
        return False
    truth_elems, answer_elems = split_tuple(truth_n), split_tuple(answer_n)
    # a tuple ground truth: the brackets must match too
    if len(truth_elems) > 1 and (truth_n[0] != answer_n[0] or truth_n[-1] != answer_n[-1]):
        return False
    if len(truth_elems) != len(answer_elems):
        return False
    pending = []
    for g, a in zip(truth_elems, answer_elems):
        if is_integer_fraction(g) and is_integer_fraction(a):
            if g != a:  # unreduced fractions must match as written
                return False
        elif _str_is_int(g) != _str_is_int(a):  # exactly one integer: strict, no SymPy
            return False
        else:
            difference = f"({g})-({a})"
            if not sympy_allowed(difference):
                return False
            pending.append(difference)
    return pending


def paper_rule_stage(response: str, ground_truth: str) -> bool | list[str]:
    """``grade_answer_verl`` up to SymPy: True/False, or the expressions SymPy must simplify to zero."""
    if not ground_truth:
        return False
    truth: str | None = ground_truth
    if "\\boxed" in ground_truth:
        truth = paper_boxed_answer(ground_truth)
    answer = paper_boxed_answer(response) if "\\boxed" in response else None
    # our bound on untrusted text (the authors have none): a longer answer is no answer
    if answer is None or truth is None or len(answer) > MAX_PAPER_ANSWER_CHARS:
        return False
    if mathd_normalize(answer) == mathd_normalize(truth):
        return True
    return sympy_rules(answer, truth)
