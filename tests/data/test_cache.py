"""Preprocessing cache: layout, counts, resume-without-work, no silent loss, the torch Dataset, splits."""

from __future__ import annotations

import json
import subprocess
import sys
from functools import partial
from pathlib import Path

import datafixtures as fx
import faults
import numpy as np
import pytest

from mmrphys.data import load_dataset
from mmrphys.data.cache import Settings, preprocess, read_manifest
from mmrphys.errors import InputError

SMALL = Settings(size=8, chunk=16, crop="none")


def _arrays(cache: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(cache)): np.load(p) for p in sorted(cache.glob("*/*.npy"))}


def test_preprocess_layout_counts_and_rerun_does_no_work(tmp_path):
    fx.generic(tmp_path / "data", n=40)
    recs = load_dataset("generic", tmp_path / "data")
    rep = preprocess(recs, tmp_path / "out", SMALL, workers=0)
    assert rep.ok and sorted(rep.processed) == ["alice_rest", "bob_walk"]
    assert rep.n_chunks == 4 and rep.n_frames == 80  # 2 x floor(40 / 16), tails of 8 dropped
    man = read_manifest(rep.cache_dir)
    assert rep.cache_dir.name.startswith("generic_8px_T16_nocrop_")
    assert man["counts"] == {
        "recordings": 2,
        "done": 2,
        "failed": 0,
        "chunks": 4,
        "frames": 80,
        "subjects": 2,
    }
    entry = man["recordings"]["alice_rest"]
    d = rep.cache_dir / entry["dir"]
    rgb = np.load(d / "rgb_001.npy")
    assert rgb.shape == (16, 8, 8, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[:, 4, 4, 0], [fx.frame_value(i) for i in range(16, 32)])
    lab = np.load(d / "labels_000.npy")
    assert lab.shape == (16, 2) and lab.dtype == np.float32
    meta = json.loads((d / "meta.json").read_text())
    assert meta["labels"] == ["bvp", "rsp"] and meta["tail_frames_dropped"] == 8 and meta["align"] == "time"
    full = np.concatenate([np.load(d / f"labels_{k:03d}.npy") for k in range(2)])
    # z-scored over the whole recording (all 40 frames), so the first 32 are close to, not exactly, z-scores
    assert abs(full[:, 0].mean()) < 0.3 and 0.7 < full[:, 0].std() < 1.3

    mtimes = {p: p.stat().st_mtime_ns for p in rep.cache_dir.rglob("*.npy")}
    again = preprocess(recs, tmp_path / "out", SMALL, workers=2)
    assert again.processed == [] and sorted(again.skipped) == ["alice_rest", "bob_walk"]
    assert again.n_chunks == 4
    assert {p: p.stat().st_mtime_ns for p in rep.cache_dir.rglob("*.npy")} == mtimes
    from mmrphys.data.cache import _lock

    held = _lock(rep.cache_dir)  # a second run on the same cache at the same time is refused
    with pytest.raises(InputError, match="another 'mmrphys preprocess'"):
        preprocess(recs, tmp_path / "out", SMALL, workers=0)
    held.close()
    subset = preprocess(recs[:1], tmp_path / "out", SMALL, workers=0)  # a subset keeps the others listed
    assert read_manifest(subset.cache_dir)["counts"]["done"] == 2
    other = preprocess(recs, tmp_path / "out", Settings(size=4, chunk=16, crop="none"), workers=0)
    assert other.cache_dir != rep.cache_dir and len(other.processed) == 2  # settings are part of the key


def _cli(args, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "mmrphys.cli.main", *args], capture_output=True, text=True, timeout=timeout
    )


def _digests(cache: Path) -> dict[str, str]:
    """SHA-256 of every cached array file, by recording id and file name (folder keys left out)."""
    out = {}
    for meta in sorted(cache.glob("*/meta.json")):
        m = json.loads(meta.read_text())
        out |= {f"{m['recording_id']}/{k}": v["sha256"] for k, v in m["files"].items()}
    return out


def test_dead_worker_and_corrupt_file_are_never_silent(tmp_path):
    root = fx.ubfc2(tmp_path / "data", subjects=(1, 2, 3, 4), n=40)
    good = (root / "subject3" / "ground_truth.txt").read_text()
    (root / "subject3" / "ground_truth.txt").write_text("garbage here\n1 2 x\n")
    recs = load_dataset("ubfc-rppg", root)
    settings = Settings(size=8, chunk=16, crop="none")
    # subject2's worker dies after writing one chunk (injected into the spawned workers)
    first = preprocess(
        recs,
        tmp_path / "out",
        settings,
        workers=2,
        worker_init=partial(faults.crash_after_chunks, "subject2", 1),
    )
    assert sorted(first.processed) == ["subject1", "subject4"]
    assert first.failed["subject2"].startswith("worker process died while processing it (exit code 70")
    assert "subject3/ground_truth.txt" in first.failed["subject3"]
    cache = first.cache_dir
    man = read_manifest(cache)
    st = {k: v["status"] for k, v in man["recordings"].items()}
    assert st == {"subject1": "done", "subject2": "failed", "subject3": "failed", "subject4": "done"}
    assert man["counts"]["chunks"] == 4 and man["counts"]["failed"] == 2
    assert not list(cache.glob(".*tmp*")) and len([p for p in cache.iterdir() if p.is_dir()]) == 2

    args = ["preprocess", "ubfc-rppg", str(root), "--out", str(tmp_path / "out"), "--size", "8"]
    args += ["--chunk", "16", "--no-crop", "--workers", "0", "--quiet"]
    r = _cli(args)  # resume without the crash: subject2 done, subject3 still bad: exit 1, one error line
    assert r.returncode == 1 and "(1 processed, 2 already done, 1 failed)" in r.stdout, r.stdout + r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith("mmrphys preprocess: error: 1 of 4 recording(s) failed") and "subject3" in line
    assert "ground_truth.txt" in line
    r = _cli(args + ["--allow-failures"])
    assert r.returncode == 0 and r.stderr == "" and "1 failed" in r.stdout
    (root / "subject3" / "ground_truth.txt").write_text(good)
    r = _cli(args)  # resume: only the failed one is processed
    assert r.returncode == 0, r.stderr
    assert "(1 processed, 3 already done, 0 failed)" in r.stdout
    man = read_manifest(cache)
    assert man["counts"] == {
        "recordings": 4,
        "done": 4,
        "failed": 0,
        "chunks": 8,
        "frames": 160,
        "subjects": 4,
    }
    clean = preprocess(load_dataset("ubfc-rppg", root), tmp_path / "clean", settings, workers=0)
    a, b = _digests(cache), _digests(clean.cache_dir)
    assert a == b and len(a) == 4 * (2 * 2 + 1)
    arrays = _arrays(cache)
    assert len(arrays) == len(a) and all(
        np.array_equal(v, w) for v, w in zip(arrays.values(), _arrays(clean.cache_dir).values())
    )


def test_torch_dataset_appends_last_frame(tmp_path):
    import torch

    fx.generic(tmp_path / "data", n=40, thermal=True)
    rep = preprocess(load_dataset("generic", tmp_path / "data"), tmp_path / "out", SMALL, workers=0)
    from mmrphys.data.torch_dataset import CacheDataset

    ds = CacheDataset(rep.cache_dir)
    assert len(ds) == 4 and ds.modalities == ("rgb", "thermal")
    x, y = ds[1]
    assert x.shape == (4, 17, 8, 8) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, -1], x[:, -2])
    assert float(x[0, 0, 4, 4]) == fx.frame_value(16) and float(x[3, 0, 0, 0]) == 33.0
    assert set(y) == {"bvp", "rsp"} and y["bvp"].shape == (16,)
    nxt = CacheDataset(rep.cache_dir, next_frame=True, modalities=("rgb",), subjects=["bob"])
    x0, _ = nxt[0]
    assert x0.shape == (3, 17, 8, 8) and float(x0[0, -1, 4, 4]) == fx.frame_value(16)
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch[0].shape == (2, 4, 17, 8, 8) and batch[1]["rsp"].shape == (2, 16)


def test_splits_are_subject_wise_and_deterministic():
    from types import SimpleNamespace as R

    from mmrphys.data import splits

    recs = [R(subject_id=f"s{i}", recording_id=f"s{i}_{k}") for i in (10, 2, 1, 3, 4) for k in (1, 2)]
    assert splits.subjects(recs) == ["s1", "s2", "s3", "s4", "s10"]
    parts = splits.split_fractions(recs, (0.6, 0.2, 0.2), ("train", "val", "test"))
    assert {r.subject_id for r in parts["train"]} == {"s1", "s2", "s3"}
    assert [r.subject_id for r in parts["test"]] == ["s10", "s10"]
    assert splits.by_fraction(list(reversed(recs)), 0.0, 0.4) == [
        r for r in reversed(recs) if r.subject_id in ("s1", "s2")
    ]
    seen = []
    for f in range(5):
        train, test = splits.kfold(recs, 5, f)
        assert not {r.subject_id for r in train} & {r.subject_id for r in test}
        seen += sorted({r.subject_id for r in test})
    assert seen == ["s1", "s2", "s3", "s4", "s10"]
    cross = splits.cross_dataset(recs, ["B"], val_fraction=0.2)
    assert {r.subject_id for r in cross["val"]} == {"s10"} and cross["test"] == ["B"]
    with pytest.raises(Exception, match="sum to 1"):
        splits.split_fractions(recs, (0.5, 0.2), ("a", "b"))
