"""Algorithm 1, generated from the code: the numbered steps of ``trainer.py``'s docstring, each pointing at the
package functions that implement it.

The text of step N is item N of the "One training step" list in the trainer's module docstring (its ``-> x.py``
tails dropped). Its functions are read from the code: the calls that follow the comment ``# N.`` in
``trainer.train_step`` (items 1-6) or ``trainer.train`` (item 7), each resolved to where it is defined with
``inspect`` (a method called on an annotated argument, ``engine.generate``, to its class). Renaming a function,
moving it or reordering the steps changes the box; a step without its comment, or a comment without its step,
is an error (``algorithm_steps``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import textwrap
import typing
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace

STEP_COMMENT = re.compile(r"^\s*#\s*(\d+)\.\s")                   # "# 3. score each response ..."
DOC_ITEM = re.compile(r"^  (\d+)\.\s(.*)$")                        # "  3. score each response: ..."
MODULE_TAIL = re.compile(r"\s*->\s*([\w.]+\.py)\s*$")              # "...   -> reward.py"
PACKAGE = "justrl_lite"


@dataclass(frozen=True)
class Step:
    """One line of Algorithm 1: item ``number`` of the docstring and the package functions its code calls."""

    number: int
    text: str               # the docstring's item, tails dropped, continuation lines joined by newlines
    modules: tuple[str, ...]  # the ``-> x.py`` tails the docstring names for this item
    where: str              # the function whose source holds the step, e.g. "trainer.train_step"
    calls: tuple[str, ...]  # "module.function" (or "module.Class.method") in source order, each once


def docstring_steps(doc: str) -> dict[int, tuple[str, tuple[str, ...]]]:
    """Item number -> (text, modules named by ``-> x.py``) of the list after "One training step"."""
    lines = doc.split("One training step", 1)[1].splitlines()[1:]
    items: dict[int, list[str]] = {}
    modules: dict[int, list[str]] = {}
    current = None
    for line in lines:
        if not line.strip():
            break
        m = DOC_ITEM.match(line)
        if m:
            current = int(m.group(1))
            items[current], modules[current] = [], []
            line, prefix = m.group(2), m.start(2)
        elif current is None:
            continue
        else:  # a continuation line: keep its indentation relative to the item's text
            line = line[min(prefix, _indent(line)):]
        tail = MODULE_TAIL.search(line)
        if tail:
            modules[current].append(tail.group(1))
            line = line[:tail.start()]
        items[current].append(line.rstrip())
    return {n: ("\n".join(items[n]), tuple(modules[n])) for n in items}


def qualified_name(obj) -> str | None:
    """``"advantage.grpo_advantages"`` for a function or class of the package; None for anything else."""
    module = getattr(obj, "__module__", None) or ""
    if not (module == PACKAGE or module.startswith(PACKAGE + ".")) or not hasattr(obj, "__qualname__"):
        return None
    return f"{module.removeprefix(PACKAGE + '.')}.{obj.__qualname__}"


def resolve(name: str):
    """The object a "module.function" (or "module.Class.method") name of ``Step.calls`` stands for."""
    module, _, attributes = name.partition(".")
    obj = importlib.import_module(f"{PACKAGE}.{module}")
    for attribute in attributes.split("."):
        obj = getattr(obj, attribute)
    return obj


def package_calls(fn: Callable) -> list[tuple[int, str]]:
    """(line within ``fn``'s source, "module.function") for each call in ``fn`` that resolves to the package."""
    source = textwrap.dedent(inspect.getsource(fn))
    namespace = fn.__globals__
    hints = _annotations(fn)
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        target = None
        if isinstance(node.func, ast.Name):
            target = namespace.get(node.func.id)
        elif isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            owner = hints.get(node.func.value.id, namespace.get(node.func.value.id))
            target = getattr(owner, node.func.attr, None) if owner is not None else None
        name = qualified_name(target) if target is not None else None
        if name is not None:
            found.append((node.lineno, node.col_offset, name))
    return [(line, name) for line, _, name in sorted(found)]


def marked_steps(fn: Callable) -> list[tuple[int, list[str]]]:
    """(N, the package calls of step N) for each comment ``# N.`` in ``fn``, in source order.

    Step N's code starts below its comment and ends at a blank line, at a line indented less, or at the next
    comment indented no deeper that follows code (so the comment may run over several lines).
    """
    lines = textwrap.dedent(inspect.getsource(fn)).splitlines()
    calls = package_calls(fn)
    steps = []
    for i, line in enumerate(lines):
        m = STEP_COMMENT.match(line)
        if not m:
            continue
        indent, end, seen_code = _indent(line), len(lines), False
        for j in range(i + 1, len(lines)):
            text = lines[j].strip()
            if not text or _indent(lines[j]) < indent or (text.startswith("#") and seen_code
                                                          and _indent(lines[j]) <= indent):
                end = j
                break
            seen_code = seen_code or not text.startswith("#")
        names = [name for at, name in calls if i + 1 < at <= end]  # ast lines are 1-based
        steps.append((int(m.group(1)), list(dict.fromkeys(names))))
    return steps


def _annotations(fn: Callable) -> dict[str, type]:
    """The argument annotations of ``fn`` that resolve in its module (one that does not is left out)."""
    hints = {}
    for name, annotation in getattr(fn, "__annotations__", {}).items():
        try:
            hints[name] = typing.get_type_hints(SimpleNamespace(__annotations__={name: annotation}),
                                                globalns=fn.__globals__)[name]
        except Exception:  # a name imported only for type checking, or a newer syntax: not a package method then
            continue
    return hints


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def algorithm_steps(functions: tuple[Callable, ...] | None = None, doc: str | None = None) -> list[Step]:
    """The steps of the trainer's docstring joined with the code that implements them, in order."""
    if functions is None or doc is None:
        from justrl_lite import trainer

        functions = functions or (trainer.train_step, trainer.train)
        doc = doc or trainer.__doc__
    items = docstring_steps(doc)
    steps = []
    for fn in functions:
        where = qualified_name(fn) or fn.__qualname__
        for number, calls in marked_steps(fn):
            if number not in items:
                raise ValueError(f"{where} marks step {number}, which the docstring's list does not have")
            text, modules = items[number]
            steps.append(Step(number, text, modules, where, tuple(calls)))
    numbers = [s.number for s in steps]
    if numbers != sorted(items):
        raise ValueError(f"the code marks steps {numbers}; the docstring lists {sorted(items)}: "
                         f"mark each item once, in order, with a '# N.' comment above its code")
    return steps


def render_algorithm(steps: list[Step] | None = None, width: int = 112) -> str:
    """A plain-text box: the steps under the function that runs them, each followed by ``-> module.function``."""
    steps = algorithm_steps() if steps is None else steps
    title = ("Algorithm 1  JustRL: one training step "
             "(generated from justrl_lite/trainer.py by justrl_lite/course/algorithm.py)")
    inner = max(width - 4, len(title))
    body, where = [], None
    for s in steps:
        if s.where != where:
            where = s.where
            body.append(f"{where}:")
        lines = s.text.splitlines()
        body.append(f"  {s.number}. {lines[0]}")
        body.extend(f"     {line}" for line in lines[1:])
        body.extend(textwrap.wrap(", ".join(s.calls) or "(inline)", inner, initial_indent="       -> ",
                                  subsequent_indent="          ", break_on_hyphens=False))
    inner = max(inner, *map(len, body))
    rule = "+" + "-" * (inner + 2) + "+"
    return "\n".join([rule, f"| {title:<{inner}} |", rule, *(f"| {line:<{inner}} |" for line in body), rule])


if __name__ == "__main__":  # python -m justrl_lite.course.algorithm
    print(render_algorithm())
