"""Every module of the package is described once: a row of the README's package table, a heading of
docs/architecture.md, and a line of the package docstring. A new module that is not added there fails here."""

from __future__ import annotations

import re
from pathlib import Path

import justrl_lite

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "justrl_lite"
THEMED = ("course/", "evaluation/", "grading/", "scale/")  # each of their modules is described
WHOLE = ("toy/",)  # described as a whole


def package_modules() -> list[str]:
    """``config.py``, ..., ``grading/grade.py``, ..., and ``toy/`` as a whole."""
    files = sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py")
    subs = sorted(f"{p.name}/" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert subs == sorted(THEMED + WHOLE), subs
    themed = sorted(f"{sub}{p.name}" for sub in THEMED for p in (PACKAGE / sub).glob("*.py") if p.name != "__init__.py")
    return files + themed + list(WHOLE)


def table_modules(readme: str) -> list[str]:
    """The backticked names in the first column of the README's package table, in order."""
    section = readme.split("## The package, in the order data flows", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return [name for row in rows for name in re.findall(r"`([\w./]+)`", row.split("|")[1])]


def heading_modules(doc: str) -> list[str]:
    """The backticked module names in the ``## `` headings of a markdown document."""
    return [name for heading in re.findall(r"^## (.*)$", doc, flags=re.M)
            for name in re.findall(r"`([\w./]+\.py|[\w]+/)`", heading)]


def missing_and_repeated(listed: list[str], modules: list[str]) -> tuple[list[str], list[str]]:
    return ([m for m in modules if m not in listed],
            sorted({m for m in listed if listed.count(m) > 1} | {m for m in listed if m not in modules}))


def test_the_readme_package_table_has_one_row_per_module():
    missing, extra = missing_and_repeated(table_modules((ROOT / "README.md").read_text()), package_modules())
    assert not missing, f"add a row for {missing} to the README's package table"
    assert not extra, f"the README's package table lists {extra} more than once, or modules that do not exist"


def test_docs_architecture_has_a_heading_for_every_module():
    missing, extra = missing_and_repeated(heading_modules((ROOT / "docs" / "architecture.md").read_text()),
                                          package_modules())
    assert not missing, f"describe {missing} under a heading of docs/architecture.md"
    assert not extra, f"docs/architecture.md names {extra} in more than one heading, or modules that do not exist"


def test_the_package_docstring_names_every_module():
    words = set(re.findall(r"\b[\w/]+\b", justrl_lite.__doc__))
    missing = [m for m in package_modules() if m.removesuffix(".py").removesuffix("/") not in words]
    assert not missing, f"name {missing} in justrl_lite/__init__.py's module list"


def test_the_checks_catch_a_missing_and_a_repeated_module():
    readme = "## The package, in the order data flows\n\n| module | what |\n|---|---|\n| `a.py` | x |\n" \
             "| `b.py`, `a.py` | y |\n\n## Next\n| `c.py` | z |\n"
    assert table_modules(readme) == ["a.py", "b.py", "a.py"]
    assert missing_and_repeated(table_modules(readme), ["a.py", "b.py", "c.py"]) == (["c.py"], ["a.py"])
    assert heading_modules("## `a.py`, `toy/`\ntext `b.py`\n## `c.py` (see `d.md`)\n") == ["a.py", "toy/", "c.py"]
