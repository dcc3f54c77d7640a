"""A ``JustRLConfig`` as markdown tables: every field with its meaning, and where two configs differ and why.

  1. ``recipe_table(cfg)``: every field, its value and its docstring (the docstrings are read from
     ``config.py``'s source by ``field_docs``, so the table and the code cannot drift);
  2. ``diff_table(a, b, reasons)``: only the fields where ``a`` and ``b`` differ, each with a one-line reason
     (``PRESET_REASONS[name]`` for a preset); the README's preset tables are this function's output
     (``tests/test_readme.py``).
"""

from __future__ import annotations

import ast
import inspect
from dataclasses import fields
from typing import Any

from justrl_lite.config import JustRLConfig
from justrl_lite.config_presets import TINY_REASONS


def field_names() -> list[str]:
    """The fields of ``JustRLConfig``, in declaration order."""
    return [f.name for f in fields(JustRLConfig)]


def field_docs() -> dict[str, str]:
    """Field name -> its docstring, read from ``JustRLConfig``'s source (so the docs and the code cannot drift)."""
    tree = ast.parse(inspect.getsource(JustRLConfig))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[node.target.id] = " ".join(str(nxt.value.value).split())  # type: ignore[union-attr]
    return docs


def show_value(v: Any) -> str:
    """A value as a markdown table cell: in backticks, newlines as ``\\n`` and ``|`` escaped."""
    if isinstance(v, str):
        return "`" + v.replace("\n", "\\n").replace("|", "\\|") + "`"
    return f"`{v}`"


def recipe_table(cfg: JustRLConfig) -> str:
    """Markdown table of every field of ``cfg`` with its value and docstring."""
    docs = field_docs()
    rows = ["| field | value | meaning |", "|---|---|---|"]
    for name in field_names():
        rows.append(f"| `{name}` | {show_value(getattr(cfg, name))} | {docs.get(name, '')} |")
    return "\n".join(rows)


def diff_table(a: JustRLConfig, b: JustRLConfig, reasons: dict[str, str] | None = None,
               names: tuple[str, str] = ("paper", "tiny")) -> str:
    """Markdown table of every field where ``a`` and ``b`` differ, with a one-line reason per field."""
    reasons = TINY_REASONS if reasons is None else reasons
    rows = [f"| field | {names[0]} | {names[1]} | why |", "|---|---|---|---|"]
    for name in field_names():
        va, vb = getattr(a, name), getattr(b, name)
        if va != vb:
            rows.append(f"| `{name}` | {show_value(va)} | {show_value(vb)} | {reasons.get(name, '')} |")
    return "\n".join(rows)
