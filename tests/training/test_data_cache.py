"""Config entries -> shared preprocessing cache -> training chunks and test videos."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrphys.errors import ConfigError
from mmrphys.signals.rates import heart_rate
from mmrphys.training.config import validate
from mmrphys.training.data import build_test_sets, build_train_set
from mmrphys.training.trainer import collate, manifest_hash


def _cfg(tmp_path, n_clips=2, seed=3, **extra):
    options = {"n_clips": n_clips, "duration_s": 6.5, "render_size": 96, "seed": seed}
    synth = {"name": "synth", "options": options}
    return validate(
        {
            "model": {"tasks": ["bvp", "rsp"]},
            "data": {
                "size": 8,
                "chunk": 60,
                "cache": str(tmp_path / "cache"),
                "workers": 0,
                "train": [synth | extra],
                "test": [synth | extra],
            },
        }
    )


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synthcache")
    cfg = _cfg(tmp)
    logs = []
    train = build_train_set(cfg, log=logs.append)
    return tmp, cfg, train, logs


def test_synth_entry_is_rendered_and_preprocessed_with_given_boxes(synth_run):
    tmp, cfg, train, logs = synth_run
    assert len(train) == 2 * 3  # 2 clips x 195 frames -> 3 chunks of 60 each (tail dropped)
    assert train.subjects == ["s000", "s001"]
    item = train[0]
    assert item["frames"].shape == (3, 60, 8, 8) and item["bvp"].shape == (60,) and item["rsp"].shape == (60,)
    assert len(set(train.ids)) == 6
    assert any("crop given" in m for m in logs)  # the generator's boxes, no face detector
    cache = train.entries[0].cache_dir
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest["counts"]["done"] == 2 and manifest["counts"]["chunks"] == 6
    meta = json.loads(next(cache.glob("s000_r0-*/meta.json")).read_text())
    assert meta["face"]["source"] == "given" and meta["face"]["frames_without_face"] == 0
    batch = collate([train[i] for i in range(4)])
    assert batch["frames"].shape == (4, 3, 60, 8, 8) and "bvp_mask" not in batch


def test_manifest_hash_comes_from_the_cache_and_is_stable(synth_run):
    tmp, cfg, train, _ = synth_run
    logs = []
    again = build_train_set(cfg, log=logs.append)  # everything cached: nothing processed again
    assert any("0 processed, 2 cached" in m for m in logs)
    assert manifest_hash(again) == manifest_hash(train) == train.manifest_hash()
    other = build_train_set(_cfg(tmp, n_clips=1), log=lambda *a: None)
    assert len(other) == 3 and manifest_hash(other) != manifest_hash(train)


def test_test_videos_come_from_the_same_cache(synth_run):
    tmp, cfg, _, _ = synth_run
    videos = build_test_sets(cfg, log=lambda *a: None)["synth"]
    assert [v.id for v in videos] == ["s000_r0", "s001_r0"]
    truth = json.loads(next((tmp / "cache" / "synth-videos").glob("synth-*/dataset.json")).read_text())
    for v in videos:
        assert v.frames.shape == (180, 8, 8, 3) and v.frames.dtype == np.uint8 and v.fs == 30.0
        hr = truth["recordings"][v.id]["hr_bpm"]
        assert abs(heart_rate(v.labels["bvp"], v.fs) - hr) < 4.0


def test_bad_synth_options_and_subjects_are_named(tmp_path):
    with pytest.raises(ConfigError, match="synth.options: unknown option"):
        cfg = _cfg(tmp_path)
        cfg["data"]["train"][0]["options"]["n_clipz"] = 1
        build_train_set(cfg, log=lambda *a: None)
    cfg = _cfg(tmp_path)
    cfg["data"]["train"][0]["options"]["hr_range"] = [60, 90]
    with pytest.raises(ConfigError, match="hr_range"):
        build_train_set(cfg, log=lambda *a: None)
    with pytest.raises(ConfigError, match="data synth: subjects not in the data: s999"):
        build_train_set(_cfg(tmp_path, subjects=["s999"]), log=lambda *a: None)


def test_cache_location_and_workers_do_not_change_the_config_hash(tmp_path):
    from mmrphys.training.config import config_hash

    a, b = _cfg(tmp_path), _cfg(tmp_path / "elsewhere")
    b["data"]["workers"] = 4
    assert config_hash(a) == config_hash(b)
    b["data"]["train"][0]["crop"] = "face"
    assert config_hash(a) != config_hash(b)
