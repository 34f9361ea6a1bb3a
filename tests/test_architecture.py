"""The package layering of docs/architecture.md, checked on the source (ast; nothing is imported).

* no import cycle between modules of src/mmrphys (function-level imports included);
* no package imports what the doc's "must never import" column forbids;
* none of the process-changing or private-torch patterns the architecture issue removed.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mmrphys"
DOC = ROOT / "docs" / "architecture.md"

#: Cycles being removed by other work, as the set of modules in the cycle -> who removes it. (The
#: three the architecture issue named - data.align/base/registry, models.checkpoints/weights and
#: signals.unsupervised.traces importing faces - are gone; add an entry only with a name beside it.)
ALLOWED_CYCLES: dict[frozenset, str] = {}
#: Forbidden imports being removed by other work: (importing module, imported package) -> who.
ALLOWED_IMPORTS: dict[tuple[str, str], str] = {}
#: Library files that still call matplotlib.use, each being moved to Figure + FigureCanvasAgg.
ALLOWED_MATPLOTLIB_USE = {
}
#: Library modules that set thread counts or use ctypes for processes of their own: the compare and
#: leave-subjects-out runners (each is a verb's own process) and the preprocessing worker pool
#: (a parent-death signal for the workers it starts, so that none outlives a killed parent).
ALLOWED_PROCESS_CONTROL = {
    "training/compare.py": "set_num_threads",
    "training/loso.py": "set_num_threads",
    "data/_pool.py": "ctypes",
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Modules (of mmrphys: resolved to the deepest existing module; others: top-level name)
    imported anywhere in the file."""
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def deepest(dotted: str) -> str:
        while dotted and dotted not in MODULES:
            dotted = dotted.rpartition(".")[0]
        return dotted

    tree = ast.parse(path.read_text(), str(path))
    type_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block) for b in block.body
                 for n in ast.walk(b)}
    for node in ast.walk(tree):
        if id(node) in type_only:  # `if TYPE_CHECKING:` imports never run
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                mmrphys_module = alias.name.startswith("mmrphys")
                found.add(deepest(alias.name) if mmrphys_module else alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")[: None if is_pkg else -1]
                base = base[: len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if not module.startswith("mmrphys"):
                found.add(module.split(".")[0])
                continue
            for alias in node.names:  # `from pkg import submodule` imports the submodule
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in MODULES else deepest(module))
    # a module's own parent packages are imported before it anyway: not a dependency
    return {m for m in found if m and m != name and not name.startswith(m + ".")}


def _is_type_checking(node) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "mmrphys"


def _cycles() -> list[frozenset]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    edges = {m: sorted(d for d in deps if d in MODULES) for m, deps in GRAPH.items()}
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    for root in edges:
        if root in index:
            continue
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(edges[w])))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = set()
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.add(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(frozenset(comp))
    return out


def _rules() -> dict[str, set[str]]:
    """package -> names it must never import, from the doc's table."""
    text = DOC.read_text()
    table = text[text.index("<!-- import-rules:begin -->") : text.index("<!-- import-rules:end -->")]
    rules = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("package", "") and not cells[0].startswith("---"):
            rules[cells[0]] = {n.strip() for n in cells[2].split(",") if n.strip() not in ("", "—")}
    return rules


def test_the_graph_sees_known_edges():
    """The parser resolves from-, function-level and submodule imports (the tree has no relative ones)."""
    assert "mmrphys.models.layers" in GRAPH["mmrphys.models.inference"]
    assert "mmrphys.vitals.estimate" in GRAPH["mmrphys"]  # inside mmrphys.estimate()
    assert "mmrphys.models" in GRAPH["mmrphys.training.runner"]  # `from mmrphys import models`
    assert "torch" in GRAPH["mmrphys.models.inference"]
    assert "mmrphys.models" not in GRAPH["mmrphys.models.registry"]  # its own parent package


def test_no_import_cycles():
    unexpected = [sorted(c) for c in _cycles() if c not in ALLOWED_CYCLES]
    assert not unexpected, f"import cycles: {unexpected}"


def test_allowances_are_not_stale():
    """Each temporary allowance names a violation that still exists: once the helper named has removed
    it, its line here must go too (so the lists only ever shrink)."""
    stale = [f"cycle {sorted(c)} ({who})" for c, who in ALLOWED_CYCLES.items() if c not in set(_cycles())]
    stale += [f"{m} -> {p} ({who})" for (m, p), who in ALLOWED_IMPORTS.items()
              if not any(_package(d) == p for d in GRAPH.get(m, ()) if d.startswith("mmrphys"))]
    stale += [f"matplotlib.use in {rel} ({who})" for rel, who in ALLOWED_MATPLOTLIB_USE.items()
              if "matplotlib.use(" not in (SRC / rel).read_text()]
    stale += [f"{what} in {rel}" for rel, what in ALLOWED_PROCESS_CONTROL.items()
              if not _PATTERNS[what].search((SRC / rel).read_text())]
    assert not stale, "fixed, remove from tests/test_architecture.py: " + "; ".join(stale)


def test_every_package_is_in_the_doc():
    packages = {_package(m) for m in MODULES} - {"mmrphys", "__main__"}
    assert packages <= set(_rules()), f"not in docs/architecture.md: {sorted(packages - set(_rules()))}"
    for package in packages:
        assert f"({'`'}mmrphys.{package}{'`'})" in DOC.read_text(), f"no section for mmrphys.{package}"


def test_forbidden_imports():
    rules = _rules()
    bad = []
    for module, deps in GRAPH.items():
        package = _package(module)
        for dep in deps:
            target = _package(dep) if dep.startswith("mmrphys") else dep
            if target in rules.get(package, ()) and (module, target) not in ALLOWED_IMPORTS:
                bad.append(f"{module} imports {dep}")
    assert not bad, "imports docs/architecture.md forbids: " + "; ".join(sorted(bad))


_PATTERNS = {
    "set_grad_enabled": re.compile(r"set_grad_enabled\("),
    "ctypes": re.compile(r"^\s*import ctypes", re.M),
    "private oneDNN op": re.compile(r"torch\.ops\.mkldnn"),
    "set_num_threads": re.compile(r"torch\.set_num_threads\("),
    "matplotlib.use": re.compile(r"matplotlib\.use\("),
}


def _library_sources():
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC).as_posix()
        if not rel.startswith("cli/"):
            yield rel, path.read_text()


def test_library_leaves_the_process_alone():
    """No grad-mode switch, allocator tuning, private oneDNN ops or matplotlib backend switch in the
    library (the CLI owns its process: cli/process.py)."""
    bad = []
    for rel, text in _library_sources():
        for what, pattern in _PATTERNS.items():
            if not pattern.search(text):
                continue
            if what == "matplotlib.use" and rel in ALLOWED_MATPLOTLIB_USE:
                continue
            if ALLOWED_PROCESS_CONTROL.get(rel) == what:
                continue
            bad.append(f"{rel}: {what}")
    assert not bad, "process-wide changes in library code: " + "; ".join(bad)
