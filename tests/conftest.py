"""Shared fixtures: paths to the optional real data and reference weights (skip when absent)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch

import numeric_margins

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MMRPHYS_SHARED", ROOT.parent / "shared"))
UBFC_MINI = SHARED / "data" / "ubfc-rppg-mini"
OFFICIAL = SHARED / "reference" / "mmrphys-official"

# Two cores are shared between pytest and whatever else runs: one intra-op thread avoids
# oversubscription (measured: 5.5 s/step on 1 thread vs 62 s on 2 threads under contention).
torch.set_num_threads(1)

# Tests send SIGINT (a terminal's Ctrl-C) to the processes they start. A shell without job control
# starts background commands with SIGINT ignored, and an ignored signal stays ignored through exec:
# those children would then never see it. Caught here, it is reset to the default in every child, so
# each child Python installs its KeyboardInterrupt handler whatever started pytest.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def ubfc_mini() -> Path:
    if not UBFC_MINI.is_dir():
        pytest.skip(f"real data absent: {UBFC_MINI}")
    return UBFC_MINI


@pytest.fixture(scope="session")
def official_dir() -> Path:
    if not OFFICIAL.is_dir():
        pytest.skip(f"official reference weights absent: {OFFICIAL}")
    return OFFICIAL


def pytest_addoption(parser):
    parser.addoption("--numeric-margins", metavar="FILE", default=None,
                     help="write every recorded numeric check (derived bound, measured error, margin) to "
                          "FILE as a markdown table, smallest headroom first (tests/numeric_margins.py)")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    numeric_margins.set_current_test(item.nodeid)


def pytest_sessionfinish(session):
    out = session.config.getoption("numeric_margins")
    if out:
        params = session.config.invocation_params
        numeric_margins.write_table(params.dir / out, numeric_margins.RECORDS,
                                    "python -m pytest " + " ".join(params.args))
