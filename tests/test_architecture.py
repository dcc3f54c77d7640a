"""The package's shape (issue 19): no import cycle, no second address for a name, at most 30 top-level modules.

The import graph is read from the source with ``ast``: every ``import`` and ``from ... import`` anywhere in a
module (inside functions too), except type-only imports under ``if TYPE_CHECKING:``. Importing ``a.b.c`` also
runs ``a/b/__init__.py``, so it counts as an edge to ``a.b`` as well.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "justrl_lite"
MAX_TOP_LEVEL = 30


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_sources(root: Path = ROOT) -> dict[str, ast.Module]:
    """``justrl_lite.x.y`` -> its parsed source, for every module of the package."""
    return {module_name(p, root): ast.parse(p.read_text()) for p in sorted((root / PACKAGE).rglob("*.py"))}


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    skipped = {id(x) for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
               for b in n.body for x in ast.walk(b)}
    return [n for n in ast.walk(tree) if id(n) not in skipped]


def imported_modules(tree: ast.AST, modules: set[str]) -> set[str]:
    """The package modules ``tree`` imports at run time, with the packages whose ``__init__`` that runs."""
    out: set[str] = set()
    for n in runtime_nodes(tree):
        names: list[str] = []
        if isinstance(n, ast.Import):
            names = [a.name for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            names = [f"{n.module}.{a.name}" if f"{n.module}.{a.name}" in modules else n.module for a in n.names]
        for name in names:
            parts = name.split(".")
            out |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)} & modules
    return out


def import_graph(sources: dict[str, ast.Module]) -> dict[str, set[str]]:
    modules = set(sources)
    graph = {m: imported_modules(tree, modules) for m, tree in sources.items()}
    for m, targets in graph.items():  # a sub-package's own __init__ is not an edge from its modules
        graph[m] = {t for t in targets if t != m and not m.startswith(t + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph.get(m, ())):
            if state.get(t) == 1:
                return stack[stack.index(t):] + [t]
            if t not in state and (cycle := visit(t)):
                return cycle
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (cycle := visit(m)):
            return cycle
    return None


def defined_names(tree: ast.Module) -> set[str]:
    """Names a module defines at its top level (functions, classes, assignments), not the names it imports."""
    out: set[str] = set()
    for n in runtime_nodes(tree):
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(n.name)
        elif isinstance(n, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            out |= {x.id for t in targets for x in ast.walk(t) if isinstance(x, ast.Name)}
    return out


def second_addresses(tree: ast.AST, sources: dict[str, ast.Module], where: str) -> list[str]:
    """``from justrl_lite.X import name`` where X does not define ``name`` (a re-export), as readable lines."""
    bad = []
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module and n.module.startswith(PACKAGE):
            for a in n.names:
                if f"{n.module}.{a.name}" in sources or n.module not in sources:
                    continue
                if a.name not in defined_names(sources[n.module]):
                    bad.append(f"{where}: `from {n.module} import {a.name}`: {n.module} does not define it")
    return bad


def module_aliases(tree: ast.AST, sources: dict[str, ast.Module]) -> dict[str, str]:
    """Local names bound to a package module: ``import justrl_lite.evaluate as ev``, ``from justrl_lite import x``."""
    out = {}
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            out |= {a.asname: a.name for a in n.names if a.asname and a.name in sources}
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            out |= {a.asname or a.name: f"{n.module}.{a.name}" for a in n.names if f"{n.module}.{a.name}" in sources}
    return out


def outside_imports(tree: ast.Module) -> set[str]:
    """Names a module binds by importing from outside the package (``torch``, ``Path``): not package names."""
    out: set[str] = set()
    for n in tree.body:
        if isinstance(n, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in n.names if not a.name.startswith(PACKAGE)}
        elif isinstance(n, ast.ImportFrom) and not (n.module or "").startswith(PACKAGE):
            out |= {a.asname or a.name for a in n.names}
    return out


def second_addresses_through_modules(tree: ast.AST, sources: dict[str, ast.Module], where: str) -> list[str]:
    """``ev.NAME`` read where ``ev`` is a package module that does not define ``NAME`` (reached through an import).

    Assigning to such an attribute (a benchmark or test patching a function where it is used) is not a read."""
    aliases = module_aliases(tree, sources)
    bad = []
    for n in ast.walk(tree):
        if (isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id in aliases
                and isinstance(n.ctx, ast.Load) and not n.attr.startswith("__")):  # patching where used is fine
            module = aliases[n.value.id]
            if (f"{module}.{n.attr}" not in sources and n.attr not in defined_names(sources[module])
                    and n.attr not in outside_imports(sources[module])):
                bad.append(f"{where}: `{n.value.id}.{n.attr}`: {module} does not define it")
    return sorted(set(bad))


def code_sources(root: Path = ROOT) -> dict[str, str]:
    """Every Python source that imports the package: package, tests, benchmarks, notebook solutions and cells."""
    out = {str(p.relative_to(root)): p.read_text()
           for d in ("justrl_lite", "tests", "benchmarks", "notebooks") for p in sorted((root / d).rglob("*.py"))}
    for nb in sorted((root / "notebooks").glob("*.ipynb")):  # one source per notebook: names cross cells
        cells = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
        lines = [ln for text in cells for ln in text.splitlines() if not ln.lstrip().startswith(("%", "!"))]
        out[str(nb.relative_to(root))] = "\n".join(lines)
    return out


def test_the_import_graph_has_no_cycle():
    assert find_cycle(import_graph(package_sources())) is None


def test_no_module_defines_a_module_level_getattr():
    shims = [m for m, tree in package_sources().items()
             if any(isinstance(n, ast.FunctionDef) and n.name == "__getattr__" for n in tree.body)]
    assert not shims, f"module-level __getattr__ (a second address for names) in {shims}"


def test_at_most_30_top_level_modules():
    top = sorted(p.name for p in (ROOT / PACKAGE).glob("*.py") if p.name != "__init__.py")
    assert len(top) <= MAX_TOP_LEVEL, f"{len(top)} top-level modules: move the periphery into a sub-package"


def test_every_import_names_the_defining_module():
    sources = package_sources()
    bad = [line for where, text in code_sources().items() for tree in [ast.parse(text)]
           for line in second_addresses(tree, sources, where) + second_addresses_through_modules(tree, sources, where)]
    assert not bad, "import these from the module that defines them:\n" + "\n".join(bad)


def test_the_checks_catch_a_cycle_a_reexport_and_a_type_only_import():
    a = ast.parse("from justrl_lite.b import g\n\ndef f():\n    pass\n")
    b = ast.parse("def g():\n    from justrl_lite.a import f\n    return f\n")
    typed = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from justrl_lite.a import f\n")
    sources = {"justrl_lite.a": a, "justrl_lite.b": b}
    assert find_cycle(import_graph(sources)) == ["justrl_lite.a", "justrl_lite.b", "justrl_lite.a"]
    assert find_cycle(import_graph({"justrl_lite.a": a, "justrl_lite.b": typed})) is None
    reexport = ast.parse("from justrl_lite.a import g\nfrom justrl_lite.a import f\n")
    assert second_addresses(reexport, sources, "x") == ["x: `from justrl_lite.a import g`: justrl_lite.a does not "
                                                         "define it"]
    through = ast.parse("import justrl_lite.a as m\nm.f()\nm.g()\n")
    assert second_addresses_through_modules(through, sources, "y") == ["y: `m.g`: justrl_lite.a does not define it"]
