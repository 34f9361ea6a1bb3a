"""Real data: all 8 UBFC-rPPG-mini subjects, interrupted by a dead worker, resumed: the same cache."""

from __future__ import annotations

import json
from functools import partial

import faults
import numpy as np
import pytest

from mmrphys.data import load_dataset
from mmrphys.data.cache import Settings, preprocess, process_recording, read_manifest

pytestmark = [pytest.mark.slow, pytest.mark.realdata]


def test_interrupt_and_resume_gives_the_same_cache(ubfc_mini, tmp_path):
    settings = Settings(size=36, chunk=180, detect_every=30)
    recs = load_dataset("ubfc-rppg", ubfc_mini)
    assert len(recs) == 8
    victim = "subject12"
    crash = partial(faults.crash_after_chunks, victim, 2)  # its worker dies after writing 2 of its chunks
    first = preprocess(recs, tmp_path / "cache", settings, workers=2, progress=False, worker_init=crash)
    assert set(first.failed) == {victim} and "worker process died" in first.failed[victim]
    assert len(first.processed) == 7
    done_files = {p: p.stat().st_mtime_ns for p in first.cache_dir.rglob("*.npy")}

    second = preprocess(recs, tmp_path / "cache", settings, workers=2, progress=False)
    assert second.ok and second.processed == [victim] and len(second.skipped) == 7
    for p, t in done_files.items():  # finished recordings were not touched
        assert p.stat().st_mtime_ns == t

    man = read_manifest(second.cache_dir)
    chunks_on_disk = len(list(second.cache_dir.glob("*/rgb_*.npy")))
    expected = 0
    for _rid, e in man["recordings"].items():
        meta = json.loads((second.cache_dir / e["dir"] / "meta.json").read_text())
        assert e["status"] == "done" and meta["n_chunks"] == meta["n_frames"] // 180 == e["n_chunks"]
        face = meta["face"]
        assert face["found"] >= 0.9 * face["detections"] and face["frames_without_face"] == 0  # gaps bridged
        assert 1300 < meta["n_frames"] < 2200 and meta["tail_frames_dropped"] < 180
        expected += meta["n_frames"] // 180
    assert man["counts"]["chunks"] == expected == chunks_on_disk == second.n_chunks
    assert man["counts"] == {
        "recordings": 8,
        "done": 8,
        "failed": 0,
        "chunks": expected,
        "frames": second.n_frames,
        "subjects": 8,
    }

    # the resumed recording equals one processed from scratch without interruption
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    rec = next(r for r in recs if r.recording_id == victim)
    meta = process_recording(rec, settings, fresh)
    a, b = second.cache_dir / meta["key"], fresh / meta["key"]
    names = sorted(p.name for p in a.glob("*.npy"))
    assert names == sorted(p.name for p in b.glob("*.npy")) and len(names) == 2 * meta["n_chunks"] + 1
    resumed = json.loads((a / "meta.json").read_text())["files"]
    assert resumed == meta["files"]  # same sizes and SHA-256 of every file
    for name in names:
        np.testing.assert_array_equal(np.load(a / name), np.load(b / name))
    x = np.load(a / "rgb_000.npy")
    assert x.shape == (180, 36, 36, 3) and x.dtype == np.uint8 and 60 < x.mean() < 200
