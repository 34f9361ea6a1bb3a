"""mmrphys.data has no import cycle (module level or in functions); the registry lists every loader."""

from __future__ import annotations

import ast
from pathlib import Path

import mmrphys.data

PKG = "mmrphys.data"


def _imports(path: Path, module: str) -> set[str]:
    """Modules of ``PKG`` imported anywhere in ``path`` (``if TYPE_CHECKING:`` blocks excluded)."""
    tree = ast.parse(path.read_text(), str(path))
    skip = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for stmt in node.body
        for n in ast.walk(stmt)
    }
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                parent = module.rsplit(".", node.level)[0]
                base = f"{parent}.{base}" if base else parent
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith(PKG + ".")}
    return found


def _graph() -> dict[str, set[str]]:
    root = Path(mmrphys.data.__file__).parent
    mods = {f"{PKG}.{p.stem}": p for p in root.glob("*.py") if p.stem != "__init__"}
    return {m: {i for i in _imports(p, m) if i in mods and i != m} for m, p in mods.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (c := visit(n)):
                return c
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (c := visit(m)):
            return c
    return None


def test_no_import_cycle_in_data():
    graph = _graph()
    assert len(graph) >= 15 and f"{PKG}.align" in graph[f"{PKG}.cache"]  # the scan sees the imports
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))
    assert _cycle({**graph, f"{PKG}.labels": {f"{PKG}.align"}})  # and would see a cycle


def test_registry_lists_each_builtin_under_its_own_name():
    from mmrphys.data.registry import _BUILTIN, list_datasets, loader_class

    assert len(list_datasets()) == 9
    for name in _BUILTIN:
        assert loader_class(name).name == name
    assert loader_class("UBFC").name == "ubfc-rppg" and loader_class("bp4d+").name == "bp4d"
