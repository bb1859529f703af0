"""No import cycles between the modules of `perse`.

The graph is read from the source (no module is imported): every ``import`` and ``from ... import``
statement counts, at module level and inside functions alike, since a deferred import is still a
dependency. An edge goes to the most specific module named: ``from perse.cli.common import check_size``
is an edge to ``perse.cli.common``, ``from perse.render import render`` one to the ``perse.render``
package, ``from perse.track import fit`` one to ``perse.track.fit``.

Not counted: the package ``__init__`` that Python runs before any of its submodules. Importing
``perse.cli.common`` from ``perse.cli.render`` runs ``perse/cli/__init__.py``, which imports
``perse.cli.render`` to register its parser; counting that implicit step would make every package whose
``__init__`` gathers its own submodules a cycle with each of them, though none of them reads a name the
package has not defined yet. A submodule that imports its own package by name (``from perse.drive
import X`` inside ``perse/drive/``) is an explicit edge and does count.
"""

from __future__ import annotations

import ast
import pkgutil
from pathlib import Path

import perse

ROOT = Path(perse.__file__).parent


def perse_modules() -> dict[str, Path]:
    """{dotted module name: source file} of every module and package under perse/, found with pkgutil
    on the file system (nothing is imported)."""
    found = {"perse": ROOT / "__init__.py"}

    def walk(folder: Path, prefix: str) -> None:
        for info in pkgutil.iter_modules([str(folder)]):
            name = prefix + info.name
            if info.ispkg:
                found[name] = folder / info.name / "__init__.py"
                walk(folder / info.name, name + ".")
            else:
                found[name] = folder / f"{info.name}.py"

    walk(ROOT, "perse.")
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of dotted `name` that is a perse module (None outside perse)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imported_modules(module: str, source: Path, modules: dict[str, Path]) -> set[str]:
    """The perse modules that `module` (whose code is in `source`) imports anywhere in its body."""
    is_package = source.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets: set[str | None] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"), str(source))):
        if isinstance(node, ast.Import):
            targets.update(_resolve(alias.name, modules) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from .x import y / from .. import z
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                targets.add(_resolve(f"{base}.{alias.name}", modules) if base else None)
    targets.discard(None)
    targets.discard(module)
    return targets  # type: ignore[return-value]


def import_graph() -> dict[str, set[str]]:
    modules = perse_modules()
    return {name: imported_modules(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle [a, b, ..., a] of the directed graph, or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def test_the_graph_sees_every_kind_of_import():
    graph = import_graph()
    assert len(graph) > 50 and "perse.cli.common" in graph
    assert "perse.cli.common" in graph["perse.cli.render"]  # module level, from-import of a module
    assert "perse.render" in graph["perse.cli.render"]      # inside a function, from-import of a name


def test_find_cycle_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]


def test_no_import_cycles_in_perse():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
