"""The page's JavaScript signal processing (webapp/src/dsp.js), via Node's test runner when Node exists."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

WEBAPP = Path(__file__).resolve().parents[2] / "webapp"


def test_dsp_js_unit_tests():
    node = shutil.which("node")
    if not node:
        pytest.skip("node is not installed")
    proc = subprocess.run([node, "--test", "test/"], cwd=WEBAPP, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "# fail 0" in proc.stdout and "# pass 7" in proc.stdout
