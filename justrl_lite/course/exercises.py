"""Notebook exercises: stubs that fail until solved, reference solutions that CI injects.

A notebook's exercise is a stub function decorated with ``@exercise("<notebook stem>")`` whose body raises
``NotImplementedError``; the check cell below it runs inside ``with checking("Exercise k"):``.

    @exercise("03a_from_reinforce_to_grpo")
    def reinforce_gradient(...):
        raise NotImplementedError("Exercise 1: ...")

    with checking("Exercise 1"):
        ...asserts that call reinforce_gradient...

1. By default (a student in Jupyter or Colab) the decorator returns the stub unchanged: the check cell prints
   ``Exercise 1: not solved yet`` and the notebook still runs to the end; once the student writes the body,
   the check runs and the cell prints ``Exercise 1: passed``, or ``Exercise 1: NOT RIGHT YET - <what is
   wrong>`` when a check fails (``expect(condition, message)`` raises ``ExerciseFailed``: the message says what
   is wrong, never the answer).
2. With the environment variable ``JUSTRL_SOLUTIONS=1`` (CI: ``tests/test_exercises.py``) the decorator
   returns the function of the same name from ``notebooks/solutions/<notebook stem>.py`` instead, so the
   checks run against the reference solutions and must pass.
3. Every check records its verdict; the notebook's last code cell, ``scoreboard(k)``, prints
   ``Scoreboard: j of k exercises solved`` and names each one not solved, so Run-all on an unsolved notebook
   says so at its end.
A check cell swallows ``NotImplementedError`` and ``ExerciseFailed`` (a wrong answer); any other error (a bug
in the student's function, e.g. a shape error) propagates with its traceback.
The checks themselves, for the core algorithm, live in ``justrl_lite/course/exercise_checks.py``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType

from justrl_lite.config import PROJECT_ROOT
from justrl_lite.errors import JustRLError

SOLUTIONS_ENV = "JUSTRL_SOLUTIONS"
"""Set to 1 to replace every exercise stub by its reference solution."""

SOLUTIONS_DIR = PROJECT_ROOT / "notebooks" / "solutions"
"""One file per notebook, ``<notebook stem>.py``, defining each exercise's function under the stub's name."""

PASSED, NOT_SOLVED, WRONG, CRASHED = "passed", "not solved yet", "NOT RIGHT YET", "raised an error (traceback above)"

RESULTS: dict[str, str] = {}
"""Verdict of every check run in this kernel, by name ("Exercise 1" -> PASSED / NOT_SOLVED / WRONG / CRASHED)."""


class ExerciseError(JustRLError, RuntimeError):
    """A reference solution is missing: the solutions file or the function in it."""


class ExerciseFailed(AssertionError):
    """A check found a wrong answer; the message says what is wrong without giving the answer away."""


def expect(condition: object, message: str) -> None:
    """Raise ``ExerciseFailed(message)`` unless ``condition`` holds: a check's assert that explains itself."""
    if not condition:
        raise ExerciseFailed(message)


def solutions_enabled() -> bool:
    """True when ``$JUSTRL_SOLUTIONS`` asks for the reference solutions (1, true, yes)."""
    return os.environ.get(SOLUTIONS_ENV, "").strip().lower() in ("1", "true", "yes")


def load_solutions(notebook: str, solutions_dir: Path = SOLUTIONS_DIR) -> ModuleType:
    """Import ``<solutions_dir>/<notebook>.py`` as a module (its name need not be a valid identifier)."""
    path = Path(solutions_dir) / f"{notebook}.py"
    if not path.is_file():
        raise ExerciseError(f"no reference solutions for notebook {notebook!r}: expected {path}; "
                            f"unset {SOLUTIONS_ENV} to work on the exercises yourself")
    spec = importlib.util.spec_from_file_location(f"justrl_solutions_{notebook}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def exercise(notebook: str, solutions_dir: Path = SOLUTIONS_DIR) -> Callable[[Callable], Callable]:
    """Decorator for an exercise stub: the stub itself, or with ``$JUSTRL_SOLUTIONS`` the reference solution."""
    def wrap(stub: Callable) -> Callable:
        if not solutions_enabled():
            return stub
        solution = getattr(load_solutions(notebook, solutions_dir), stub.__name__, None)
        if not callable(solution):
            raise ExerciseError(f"{Path(solutions_dir) / notebook}.py defines no function {stub.__name__!r}; "
                                "add the reference solution under the stub's name")
        return solution
    return wrap


class checking:  # lower case: reads as a sentence, `with checking("Exercise 1"):`
    """Context manager for a check cell: prints ``<name>: passed``, ``<name>: not solved yet`` when a stub
    raised ``NotImplementedError``, or ``<name>: NOT RIGHT YET - <message>`` when a check raised
    ``ExerciseFailed``; records the verdict in ``RESULTS``; every other exception propagates."""

    def __init__(self, name: str):
        self.name = name
        self.status: str | None = None

    def __enter__(self) -> checking:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if exc_type is None:
            self.status = PASSED
            print(f"{self.name}: {PASSED}")
        elif issubclass(exc_type, NotImplementedError):
            self.status = NOT_SOLVED
            print(f"{self.name}: {NOT_SOLVED} ({exc}); write the function above, run it, then this cell")
        elif issubclass(exc_type, ExerciseFailed):
            self.status = WRONG
            print(f"{self.name}: {WRONG} - {exc}")
        else:
            RESULTS[self.name] = CRASHED  # a bug in the function: the traceback says where
            return False
        RESULTS[self.name] = self.status
        return True


def scoreboard(n_exercises: int) -> tuple[int, int]:
    """Print ``Scoreboard: j of n exercises solved`` for checks "Exercise 1".."Exercise n" -> (j, n).

    A check cell that never ran counts as not solved. Called by each notebook's last code cell.
    """
    names = [f"Exercise {k}" for k in range(1, n_exercises + 1)]
    solved = sum(RESULTS.get(name) == PASSED for name in names)
    rule = "=" * 64
    lines = [rule, f"Scoreboard: {solved} of {n_exercises} exercises solved"]
    lines += [f"  {name}: {RESULTS.get(name, 'check cell not run')}"
              for name in names if RESULTS.get(name) != PASSED]
    if solved < n_exercises:
        lines.append("  Not done yet: write each function marked above, run it, then run its check cell.")
    else:
        lines.append("  All solved.")
    print("\n".join(lines + [rule]))
    return solved, n_exercises
