"""Shared fixtures of the web tests: the default model, exported once per session into a temporary cache."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def web_cache(tmp_path_factory):
    """A folder for ``MMRPHYS_CACHE`` whose ``web/`` holds the default weights' ONNX export (made once:
    10-30 s); tests that start ``mmrphys serve`` point it here instead of the user's cache."""
    from mmrphys.web.model import resolve_model

    root = tmp_path_factory.mktemp("mmrphys-cache")
    resolve_model(None, cache=root / "web")
    return root
