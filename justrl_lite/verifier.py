"""Verifiers: the strict DAPO box reward JustRL trains with, the lenient ablation reward, and the evaluation grader.

Training reward, the "DAPO verifier" (``dapo_reward``):

    window = response[-300:][-100:]
    reward = +1  if  unbox(last_boxed(window)) == ground_truth        (exact string equality)
             -1  otherwise                                           (no box, an unclosed box, any other string)

Evaluation grader (``grade``) and the lenient ablation reward (``lenient_reward``):

    a       = unbox(last_boxed(response))                            (the whole response; no box -> wrong)
    g       = ground_truth with one outer \\boxed{} removed when it is stored boxed (AIME24: "\\boxed{204}")
    correct = normalize_answer(a) == normalize_answer(g)                        (stage 1, in-process)
              or |a - g| <= 1e-6 * max(|a|, |g|)      if both are plain numbers  (stage 2, in-process)
              or math_verify.verify(parse(g), parse(a))  otherwise               (stage 2, SymPy, bounded)
    grade   = correct;        lenient_reward = +1 if correct else -1

JustRL's fixed choices, and where they depart from textbook practice:
  1. Binary outcome reward +1 / -1 (not 1 / 0); the caller puts it on the last response token.
  2. Only the last 300 characters, then the last 100 of those, are searched: the box must close the response.
     The 300 cut never changes the result (the last 100 of the last 300 are the last 100); it is kept because
     the authors' code does it.
  3. The last ``\\boxed{`` is brace-matched; no box, or an unclosed one, scores -1 (no fallback to an earlier box).
  4. Exact string equality with the ground truth *as given*: ``0.5`` for ``\\frac{1}{2}``, ``\\dfrac``, one extra
     space all score -1, and so does any answer too long to fit in the 100-character window. Callers pass the
     unboxed answer (``MathRow.answer``), not a boxed ground truth. Textbook math RL (DeepScaleR and others)
     rewards with a lenient, SymPy-backed check instead; the paper's ablation that swapped one in on top of a
     length penalty (``lenient_reward``) plateaued lower on AIME24 (about 45% against 50% with the length
     penalty alone and 55% for plain JustRL), with entropy collapsing.
  5. Evaluation is lenient on purpose: last box of the whole response, MATH-style normalised string match,
     then SymPy equivalence through math-verify. The paper's last stage, a model judge
     (CompassVerifier-3B) for what the rules reject, lives in ``evaluate.py`` (opt-in ``--judge``, GPU only).

``grade`` and ``lenient_reward`` take untrusted model output, so:
  - text is never executed: only math-verify's LaTeX parser sees it (no ``eval``-based expression parser);
  - the string match runs first, in-process; only when it fails does the SymPy check run, in a reusable worker
    subprocess (``GraderPool``) that is killed and replaced when a check overruns ``timeout``. math-verify's own
    timeouts use ``signal.alarm``, which works only in a main thread, so they are switched off and the bound is
    enforced from outside; it therefore holds in threads and in (daemonic) worker processes alike;
  - inputs are capped before parsing: a boxed answer longer than ``MAX_ANSWER_CHARS`` is no answer, and only
    answers of at most ``MAX_SYMPY_CHARS`` reach SymPy;
  - a call never raises: anything unexpected grades as wrong.
This module imports neither torch nor SymPy; only the worker subprocess imports math-verify.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import selectors
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path

BOX_OPEN = "\\boxed{"
DAPO_OUTER_WINDOW = 300
DAPO_INNER_WINDOW = 100

DEFAULT_TIMEOUT = 5.0
"""Seconds one SymPy equivalence check may take; past it the worker is killed and the answer counts as wrong."""

WORKER_START_TIMEOUT = 60.0
"""Seconds a new worker may take to import math-verify (about 1 s). Not charged to ``timeout``."""

MAX_ANSWER_CHARS = 1000
"""A boxed answer longer than this is no answer (the longest ground truth of the nine benchmarks has 210)."""

MAX_SYMPY_CHARS = 300
"""Answers (and ground truths) longer than this get the string match only, never SymPy."""

NUMBER_REL_TOL = Decimal("1e-6")
"""Two plain numbers (``12``, ``-0.5``, ``2.88e-19``, ``4.5\\times10^{33}``) are equal within this relative
tolerance, decided without SymPy: math-verify rounds to 6 decimal places instead, which calls 2.88e-19 and
1.325e-27 equal (Minerva has many such answers)."""

WORKER_MEMORY_BYTES = 2 * 1024**3
"""Address-space cap of a worker: a runaway answer (a huge power or factorial) fails with MemoryError before it
can exhaust the machine's RAM within its timeout."""


# ---- the box -------------------------------------------------------------------------------------------------

def last_boxed_only_string(text: str, max_content_chars: int | None = None) -> str | None:
    """The last ``\\boxed{...}`` of ``text`` with brace-matched content, or None (no box, or never closed).

    ``max_content_chars`` stops the brace scan early: a box whose content is longer counts as never closed.
    """
    start = text.rfind(BOX_OPEN)
    if start < 0:
        return None
    stop = len(text)
    if max_content_chars is not None:
        stop = min(stop, start + len(BOX_OPEN) + max_content_chars + 1)
    depth = 0
    # the scan starts on the "{" of "\boxed{"; the box closes when its braces balance
    for i in range(start + len(BOX_OPEN) - 1, stop):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return text[start : i + 1]
    return None


def remove_boxed(boxed: str) -> str:
    """``\\boxed{x}`` -> ``x``."""
    if not (boxed.startswith(BOX_OPEN) and boxed.endswith("}")):
        raise ValueError(f"not a boxed string: {boxed[:50]!r}")
    return boxed[len(BOX_OPEN) : -1]


def unbox_ground_truth(ground_truth: str) -> str:
    """Remove one outer ``\\boxed{}`` when the whole ground truth is one box (AIME24 stores ``\\boxed{204}``)."""
    stripped = ground_truth.strip()
    if stripped.startswith(BOX_OPEN) and last_boxed_only_string(stripped) == stripped:
        return remove_boxed(stripped)
    return ground_truth


# ---- training reward: the strict DAPO verifier ----------------------------------------------------------------

def dapo_reward(response: str, ground_truth: str) -> float:
    """The strict-box DAPO reward JustRL trains with: +1.0 if the last box equals ``ground_truth`` exactly, else -1.0."""
    if not isinstance(response, str) or not isinstance(ground_truth, str):
        return -1.0
    # 1-2. keep the last 300 characters, then the last 100 of those
    window = response[-DAPO_OUTER_WINDOW:][-DAPO_INNER_WINDOW:]
    # 3. last brace-matched \boxed{...}; none -> incorrect
    boxed = last_boxed_only_string(window)
    if boxed is None:
        return -1.0
    # 4. exact string equality, no normalisation
    return 1.0 if remove_boxed(boxed) == ground_truth else -1.0


# ---- MATH-style answer normalisation ---------------------------------------------------------------------------

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


# ---- the SymPy stage: math-verify in a worker subprocess -------------------------------------------------------

def _serve_worker() -> None:
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
        _limit_worker_memory(WORKER_MEMORY_BYTES)
        _math_verify_equal("1", "1")  # import math-verify and warm its parser before saying "ready"
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
            equal = _math_verify_equal(job["gold"], job["pred"])
        except Exception:  # MemoryError, RecursionError, SymPy bugs: the answer is wrong, the worker lives on
            equal = False
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
        send({"equal": equal})


def _limit_worker_memory(max_bytes: int) -> None:
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        limit = max_bytes if hard == resource.RLIM_INFINITY else min(max_bytes, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # not on this platform: the timeout still bounds the check
        pass


@lru_cache(maxsize=4096)
def _parse_boxed(answer: str) -> tuple:
    """math-verify's parse of ``\\boxed{answer}``: LaTeX extraction only, its own (signal) timeout off."""
    import logging

    from math_verify import LatexExtractionConfig, parse

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    # LatexExtractionConfig only: the plain-expression extractor goes through sympy's eval-based parse_expr
    return tuple(parse(BOX_OPEN + answer + "}", extraction_config=[LatexExtractionConfig()], parsing_timeout=None))


def _math_verify_equal(gold: str, pred: str) -> bool:
    """Runs inside the worker: is ``pred`` mathematically equal to ``gold`` by math-verify?"""
    from math_verify import verify

    parsed_gold, parsed_pred = _parse_boxed(gold), _parse_boxed(pred)
    if not parsed_gold or not parsed_pred:
        return False
    return bool(verify(list(parsed_gold), list(parsed_pred), timeout_seconds=None))


def _worker_command() -> list[str]:
    project_root = str(Path(__file__).resolve().parents[1])
    code = ("import sys; sys.path[0:1] = [" + repr(project_root) + "]; "
            "from justrl_lite.verifier import _serve_worker; _serve_worker()")
    return [sys.executable, "-c", code]


class _Worker:
    """One grader subprocess and the line-buffered pipe to it. Used by one thread at a time."""

    def __init__(self) -> None:
        # a new session: Ctrl-C in a terminal reaches the parent, which then ends the worker itself
        self.proc = subprocess.Popen(_worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        self.ready = False
        self._buffer = b""
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.proc.stdout, selectors.EVENT_READ)

    def _read_message(self, deadline: float) -> dict | None:
        """The next JSON line from the worker, or None when the deadline passes or the worker dies."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            try:
                if remaining <= 0 or not self._selector.select(remaining):
                    return None
                chunk = os.read(self.proc.stdout.fileno(), 65536)
            except (OSError, ValueError):  # the pool was closed under us
                return None
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return None
        return message if isinstance(message, dict) else None

    def wait_ready(self, seconds: float) -> tuple[bool, str | None]:
        """(ready, error): error is set when the worker started but cannot import math-verify."""
        message = self._read_message(time.monotonic() + seconds)
        if message is None:
            return False, None
        self.ready = bool(message.get("ready"))
        return self.ready, message.get("error")

    def check(self, gold: str, pred: str, seconds: float) -> bool | None:
        """math-verify's verdict, or None when the worker overran ``seconds`` or died."""
        try:
            self.proc.stdin.write(json.dumps({"gold": gold, "pred": pred, "limit": seconds}).encode() + b"\n")
            self.proc.stdin.flush()
        except (OSError, ValueError):  # the worker died, or the pool was closed under us
            return None
        message = self._read_message(time.monotonic() + seconds)
        if message is None or "equal" not in message:
            return None
        return bool(message["equal"])

    def kill(self) -> None:
        self._selector.close()
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for pipe in (self.proc.stdin, self.proc.stdout):
            try:
                pipe.close()
            except OSError:
                pass


class GraderPool:
    """Worker subprocesses that run math-verify; every check is bounded by its ``timeout``.

    A check takes an idle worker (or starts one, up to ``max_workers``), sends the two strings and waits at most
    ``timeout`` seconds, counting any wait for a busy pool; past it the worker is killed, a fresh one is started
    in the background, and the answer counts as wrong. Starting a worker (importing math-verify, about a second)
    is bounded by ``start_timeout`` and not charged to ``timeout``. After ``os.fork`` the child process starts
    its own workers and never touches its parent's.

    ``stats`` counts, since creation: ``checks`` sent to SymPy, ``timeouts`` (checks killed or crashed),
    ``worker_starts``, and ``busy`` (calls that found every worker busy until their deadline).
    """

    def __init__(self, max_workers: int | None = None, start_timeout: float = WORKER_START_TIMEOUT) -> None:
        self.max_workers = max_workers or max(1, min(4, os.cpu_count() or 1))
        self.start_timeout = start_timeout
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._starting = 0
        self._broken: str | None = None
        self.stats = {"checks": 0, "timeouts": 0, "worker_starts": 0, "busy": 0}

    def _ensure_own_process(self) -> None:
        if self._pid != os.getpid():
            self._reset()

    def _start_worker(self) -> _Worker | None:
        """Start a worker for a slot already reserved with ``self._starting += 1``."""
        try:
            worker: _Worker | None = _Worker()
        except OSError:
            worker = None
        with self._cond:
            self._starting -= 1
            if worker is not None:
                self._live.add(worker)
                self.stats["worker_starts"] += 1
            self._cond.notify()
        return worker

    def _checkout(self, deadline: float) -> _Worker | None:
        with self._cond:
            while True:
                if self._broken is not None:
                    return None
                if self._idle:
                    return self._idle.pop()
                if len(self._live) + self._starting < self.max_workers:
                    self._starting += 1
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.stats["busy"] += 1
                    return None
                self._cond.wait(remaining)
        return self._start_worker()

    def _checkin(self, worker: _Worker, healthy: bool) -> None:
        if healthy:
            with self._cond:
                self._idle.append(worker)
                self._cond.notify()
            return
        worker.kill()
        with self._cond:
            self._live.discard(worker)
            replace = self._broken is None
            if replace:
                self._starting += 1
            self._cond.notify()
        # start the replacement now, so that it imports math-verify while the caller moves on
        if replace:
            replacement = self._start_worker()
            if replacement is not None:
                self._checkin(replacement, True)

    def _make_ready(self, worker: _Worker) -> bool:
        if worker.ready:
            return True
        ready, error = worker.wait_ready(self.start_timeout)
        if error is not None:
            with self._cond:
                first = self._broken is None
                self._broken = error
            if first:
                warnings.warn(f"grade: the math-verify worker cannot start ({error}); only the string match "
                              "is used. Install the project's dependencies (`make venv`).", RuntimeWarning,
                              stacklevel=4)
        return ready

    def equivalent(self, gold: str, pred: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """math-verify's ``verify(parse(gold), parse(pred))`` on boxed strings, within ``timeout`` seconds."""
        self._ensure_own_process()
        deadline = time.monotonic() + timeout
        worker = self._checkout(deadline)
        if worker is None:
            return False
        healthy = False
        try:
            # starting a worker is not charged to the check
            if not worker.ready:
                started = time.monotonic()
                if not self._make_ready(worker):
                    return False
                deadline += time.monotonic() - started
            remaining = deadline - time.monotonic()
            if remaining <= 0:  # the deadline passed while waiting for a free worker: nothing was sent
                healthy = True
                return False
            with self._cond:
                self.stats["checks"] += 1
            verdict = worker.check(gold, pred, remaining)
            healthy = verdict is not None
            if not healthy:
                with self._cond:
                    self.stats["timeouts"] += 1
            return bool(verdict)
        finally:
            self._checkin(worker, healthy)

    def warm(self, n_workers: int = 1) -> None:
        """Block until at least ``n_workers`` workers (at most ``max_workers``) run and every idle one is ready."""
        self._ensure_own_process()
        with self._cond:
            workers, self._idle = self._idle, []
            n_new = max(0, min(n_workers, self.max_workers) - len(self._live) - self._starting)
            self._starting += n_new
        workers += [w for w in (self._start_worker() for _ in range(n_new)) if w is not None]
        for worker in workers:
            self._checkin(worker, self._make_ready(worker))

    def pids(self) -> list[int]:
        """Process ids of this pool's live workers."""
        with self._cond:
            return sorted(w.proc.pid for w in self._live)

    def close(self) -> None:
        """End every worker of this process (idle or busy). The pool starts new ones if used again."""
        if self._pid != os.getpid():
            return
        with self._cond:
            workers, self._idle = list(self._live), []
            self._live.clear()
        for worker in workers:
            worker.kill()


DEFAULT_POOL = GraderPool()
"""The pool ``grade``, ``grade_many`` and ``lenient_reward`` use unless given another."""
atexit.register(DEFAULT_POOL.close)


# ---- evaluation grader and the lenient ablation reward --------------------------------------------------------

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


def grade(response: str, ground_truth: str, timeout: float = DEFAULT_TIMEOUT, *,
          pool: GraderPool | None = None) -> bool:
    """The evaluation grader: is the last boxed answer of ``response`` equal to ``ground_truth``?

    Normalised string match first, then math-verify's SymPy equivalence in a worker subprocess bounded by
    ``timeout`` seconds (``timeout <= 0``: string stage only). Never raises; an overrun, a crash or malformed
    input grades as wrong.
    """
    try:
        verdict, truth, answer = _string_stage(response, ground_truth)
        if verdict is not None:
            return verdict
        if timeout <= 0:
            return False
        return (pool or DEFAULT_POOL).equivalent(sympy_ready(truth), sympy_ready(answer), timeout)
    except Exception:  # untrusted input must never stop an evaluation
        return False


def grade_many(responses: Sequence[str], ground_truths: Sequence[str], timeout: float = DEFAULT_TIMEOUT, *,
               pool: GraderPool | None = None) -> list[bool]:
    """``grade`` over pairs: string matches in this thread, SymPy checks spread over the pool's workers."""
    if len(responses) != len(ground_truths):
        raise ValueError(f"grade_many: {len(responses)} responses but {len(ground_truths)} ground truths")
    pool = pool or DEFAULT_POOL
    verdicts: list[bool] = []
    pending: list[tuple[int, str, str]] = []
    for i, (response, ground_truth) in enumerate(zip(responses, ground_truths)):
        try:
            verdict, truth, answer = _string_stage(response, ground_truth)
        except Exception:  # as in grade
            verdict, truth, answer = False, "", ""
        verdicts.append(bool(verdict))
        if verdict is None and timeout > 0:
            pending.append((i, sympy_ready(truth), sympy_ready(answer)))
    if not pending:
        return verdicts

    def check(job: tuple[int, str, str]) -> tuple[int, bool]:
        i, truth, answer = job
        try:
            return i, pool.equivalent(truth, answer, timeout)
        except Exception:
            return i, False

    with ThreadPoolExecutor(max_workers=min(pool.max_workers, len(pending))) as executor:
        for i, verdict in executor.map(check, pending):
            verdicts[i] = verdict
    return verdicts


def lenient_reward(response: str, ground_truth: str, timeout: float = DEFAULT_TIMEOUT, *,
                   pool: GraderPool | None = None) -> float:
    """The ablation's lenient (DeepScaleR-style) verifier: +1.0 if ``grade`` accepts, else -1.0.

    It searches the whole response for the last box and accepts normalised and SymPy-equivalent answers, so it
    rewards answers the strict ``dapo_reward`` refuses. The paper found that swapping it in made training worse.
    (DeepScaleR's reward also requires a ``</think>`` and grades only the text after it; that format rule is
    left out here.)
    """
    return 1.0 if grade(response, ground_truth, timeout, pool=pool) else -1.0
