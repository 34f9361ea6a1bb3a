"""The built page ships in the package (src/mmrphys/web/static/) and is what webapp/ builds today."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from mmrphys.web.server import STATIC_DIR, static_files

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_built_page_ships_with_the_package():
    build = json.loads((STATIC_DIR / "build.json").read_text())
    files = static_files(STATIC_DIR)
    # Every file the build made is there under the name the page requests, gzipped or not.
    assert set(build["files"]) == set(files) - {"build.json"}
    assert {name for name, f in files.items() if f.gz} == set(build["gzipped"])
    for name in ("index.html", "app.js", "infer-worker.js", "face-worker.js", build["wasm"],
                 "models/tiny_face_detector_model.bin"):
        assert name in files, name
    stored = sum(p.stat().st_size for p in STATIC_DIR.rglob("*") if p.is_file())
    assert stored < 6_000_000, f"the committed page grew to {stored / 1e6:.1f} MB"


def test_committed_page_is_the_build_of_webapp_src(tmp_path):
    node = shutil.which("node")
    if not node or not (WEBAPP / "node_modules" / "esbuild").is_dir():
        pytest.skip("needs node and webapp/node_modules (cd webapp && npm ci)")
    out = tmp_path / "static"
    proc = subprocess.run([node, "build.mjs", "--out", str(out)], cwd=WEBAPP, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    built, shipped = _tree(out), _tree(STATIC_DIR)
    assert set(built) == set(shipped)
    stale = sorted(name for name in built if built[name] != shipped[name])
    assert not stale, f"rebuild the page (cd webapp && npm run build): {stale} differ from webapp/src"
