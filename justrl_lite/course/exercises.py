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
   the check's asserts run and the cell prints ``Exercise 1: passed`` (or fails with the assert).
2. With the environment variable ``JUSTRL_SOLUTIONS=1`` (CI: ``tests/test_exercises.py``) the decorator
   returns the function of the same name from ``notebooks/solutions/<notebook stem>.py`` instead, so the
   checks run against the reference solutions and must pass.
A check cell only swallows ``NotImplementedError``; any other error, a failed assert included, propagates.
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

PASSED, NOT_SOLVED = "passed", "not solved yet"


class ExerciseError(JustRLError, RuntimeError):
    """A reference solution is missing: the solutions file or the function in it."""


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
    """Context manager for a check cell: prints ``<name>: passed``, or ``<name>: not solved yet`` when a
    stub raised ``NotImplementedError``; every other exception (a failed assert) propagates."""

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
            return False
        if issubclass(exc_type, NotImplementedError):
            self.status = NOT_SOLVED
            print(f"{self.name}: {NOT_SOLVED} ({exc}); write the function above, run it, then this cell")
            return True
        return False
