"""The sandboxed worker pool: untrusted math (SymPy) runs in killable subprocesses, each check bounded in time.

    verdict = worker(job)   if it answers within ``timeout`` seconds
              False         if it overruns (the worker is killed and replaced), crashes, or cannot start

Two kinds of job, one per grader (``grading/grade.py``):
  1. ``math-verify``: math-verify's ``verify(parse(\\boxed{gold}), parse(\\boxed{pred}))``, LaTeX extraction
     only (its plain-expression extractor goes through SymPy's ``eval``-based ``parse_expr``).
  2. ``paper``: the authors' rule grader's last step (thunlp/JustRL ``evals/utils.py``): ``parse_expr`` of
     ``(gold)-(pred)`` with ``^`` read as ``**`` and implicit multiplication, then ``simplify(...) == 0``.
     ``parse_expr`` evaluates Python: the caller sends only expressions the authors' guard lets through (at
     most two distinct letters, no ``^{``/``^(``, no long powers), and the worker adds what the authors lacked:
     a time limit, a memory cap, a separate process.
math-verify's own timeouts use ``signal.alarm``, which works only in a main thread, so they are switched off
and the bound is enforced from outside; it therefore holds in threads and in (daemonic) worker processes alike.
This module imports neither torch nor SymPy; only the worker subprocess does (``grading/worker.py``, the code that
runs inside it).
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

DEFAULT_TIMEOUT = 5.0
"""Seconds one SymPy equivalence check may take; past it the worker is killed and the answer counts as wrong."""

WORKER_START_TIMEOUT = 60.0
"""Seconds a new worker may take to import math-verify (about 1 s). Not charged to ``timeout``."""


# ---- the pool ---------------------------------------------------------------------------------------------------

def _worker_command() -> list[str]:
    project_root = str(Path(__file__).resolve().parents[2])  # the folder holding justrl_lite/
    code = ("import sys; sys.path[0:1] = [" + repr(project_root) + "]; "
            "from justrl_lite.grading.worker import serve_worker; serve_worker()")
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

    def check(self, job: dict, seconds: float) -> bool | None:
        """The worker's verdict on ``job``, or None when the worker overran ``seconds`` or died."""
        try:
            self.proc.stdin.write(json.dumps({**job, "limit": seconds}).encode() + b"\n")
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
        return self.run({"kind": "math-verify", "gold": gold, "pred": pred}, timeout)

    def paper_zero(self, expr: str, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """The authors' ``simplify(parse_expr(expr)) == 0`` for ``expr = "(gold)-(pred)"``, within ``timeout``."""
        return self.run({"kind": "paper", "expr": expr}, timeout)

    def run(self, job: dict, timeout: float = DEFAULT_TIMEOUT) -> bool:
        """One job in a worker, within ``timeout`` seconds; False on an overrun, a crash or a broken worker."""
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
            verdict = worker.check(job, remaining)
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
