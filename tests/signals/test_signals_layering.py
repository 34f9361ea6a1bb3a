"""The signals stage imports only NumPy/SciPy, ``mmrphys.errors`` and itself: never faces or a later stage."""

import ast
import subprocess
import sys
from pathlib import Path

import mmrphys.signals

SIGNALS = Path(mmrphys.signals.__file__).parent
ALLOWED = ("mmrphys.errors", "mmrphys.signals")


def _mmrphys_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return {n for n in names if n == "mmrphys" or n.startswith("mmrphys.")}


def test_no_module_of_signals_imports_another_stage():
    files = sorted(SIGNALS.rglob("*.py"))
    assert len(files) >= 20  # every module of the package, unsupervised/ included
    bad = {f.relative_to(SIGNALS).as_posix(): sorted(n for n in _mmrphys_imports(f)
                                                     if not n.startswith(ALLOWED))
           for f in files}
    assert {k: v for k, v in bad.items() if v} == {}


def test_importing_all_of_signals_loads_no_faces_module():
    code = ("import sys, pkgutil, importlib, mmrphys.signals as s;"
            "[importlib.import_module(m.name)"
            " for m in pkgutil.walk_packages(s.__path__, 'mmrphys.signals.')];"
            "print(sorted(m for m in sys.modules if m.startswith('mmrphys.') and not m.startswith(("
            "'mmrphys.signals', 'mmrphys.errors'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
