"""Fixtures of the main-job tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def float32_relative_bound():
    """``float32_relative_bound(net, x)`` of tests/models/numerics.py (the float32-vs-float64 bound of
    one forward pass), loaded by path: that folder is not on these tests' import path."""
    path = Path(__file__).parents[1] / "models" / "numerics.py"
    spec = importlib.util.spec_from_file_location("_models_numerics", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.float32_relative_bound
