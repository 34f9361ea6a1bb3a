"""Web tests need the built page (``cd webapp && npm ci && npm run build``); skip them cleanly without it."""

from __future__ import annotations

import pytest

from mmrphys.web.server import STATIC_DIR

_NEEDS_BUILD = ("test_web_server.py", "test_web_browser.py")


def pytest_collection_modifyitems(config, items):
    if (STATIC_DIR / "index.html").is_file():
        return
    skip = pytest.mark.skip(
        reason=f"web app not built in {STATIC_DIR}: run 'cd webapp && npm ci && npm run build'")
    for item in items:
        if item.path.name in _NEEDS_BUILD:
            item.add_marker(skip)
