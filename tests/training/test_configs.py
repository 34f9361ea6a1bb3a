"""Every shipped config validates and builds its model."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrphys.training.config import load_config
from mmrphys.training.runner import build_model

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml"))


def test_there_are_configs_for_every_paper_table():
    names = {p.parent.name for p in CONFIGS} | {p.parent.parent.name for p in CONFIGS}
    assert {"table1", "table2", "table3_5", "table4", "scamps_bp4d", "default", "ablation"} <= names
    assert len(CONFIGS) > 100


def test_all_configs_validate_and_build():
    seen = set()
    for path in CONFIGS:
        cfg = load_config(path)
        m = cfg["model"]
        key = (
            m["name"],
            tuple(m["tasks"]),
            m["in_channels"],
            m["attention"],
            tuple(sorted(m["options"].items())),
        )
        if key in seen:
            continue
        seen.add(key)
        try:
            net = build_model(cfg)
        except Exception as err:  # pragma: no cover - the message names the config
            pytest.fail(f"{path}: {err}")
        assert set(net.tasks) >= set(m["tasks"]), path
