"""The preprocessing cache under faults: damaged copies redone identically, mismatched labels named,
good recordings kept, unwritable caches refused in one line, no worker outliving a killed run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import datafixtures as fx
import faults
import numpy as np
import pytest

from mmrphys.data import load_dataset
from mmrphys.data.align import check_lengths, length_tolerance_s
from mmrphys.data.cache import (
    CacheWriteError,
    DamagedRecording,
    Settings,
    preprocess,
    read_manifest,
    verify_recording,
)
from mmrphys.data.labels import Signal
from mmrphys.data.torch_dataset import CacheDataset
from mmrphys.errors import ConfigError, InputError

SMALL = Settings(size=8, chunk=16, crop="none")


def digests(cache: Path) -> dict[str, str]:
    """SHA-256 of every cached array file by ``recording/file`` (recomputed from the bytes on disk)."""
    import hashlib

    return {
        f"{p.parent.name.rsplit('-', 1)[0]}/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(cache.glob("*/*.npy"))
    }


def folder(cache: Path, rec_id: str) -> Path:
    return cache / read_manifest(cache)["recordings"][rec_id]["dir"]


def flip_byte(path: Path, offset: int = -5) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def ubfc(tmp_path_factory):
    """Four UBFC-rPPG subjects (2 chunks each) and the digests of their cache made without faults."""
    tmp = tmp_path_factory.mktemp("ubfc")
    root = fx.ubfc2(tmp / "data", subjects=(1, 2, 3, 4), n=40)
    rep = preprocess(load_dataset("ubfc-rppg", root), tmp / "clean", SMALL, workers=0)
    assert rep.ok and rep.n_chunks == 8
    return root, digests(rep.cache_dir)


def test_damaged_copies_are_detected_and_redone_identically(ubfc, tmp_path):
    root, clean = ubfc
    recs = load_dataset("ubfc-rppg", root)
    cache = preprocess(recs, tmp_path, SMALL, workers=0).cache_dir
    d = {r.recording_id: folder(cache, r.recording_id) for r in recs}
    (d["subject1"] / "rgb_001.npy").write_bytes((d["subject1"] / "rgb_001.npy").read_bytes()[:-100])
    (d["subject2"] / "labels_000.npy").unlink()
    flip_byte(d["subject3"] / "labels_001.npy")  # same size, other bytes
    flip_byte(d["subject4"] / "rgb_000.npy")
    # training refuses the damaged labels at open (sizes + label digests); frame contents need "full"
    with pytest.raises(DamagedRecording, match=r"subject1-\w+/rgb_001.npy has 3100 bytes, 3200 were written"):
        CacheDataset(cache, tasks=("bvp",), recordings=["subject1"])
    with pytest.raises(DamagedRecording, match=r"subject2-\w+/labels_000.npy is missing"):
        CacheDataset(cache, tasks=("bvp",), recordings=["subject2"])
    with pytest.raises(DamagedRecording, match=r"labels_001.npy differs from the file written .*rerun"):
        CacheDataset(cache, tasks=("bvp",), recordings=["subject3"])
    assert len(CacheDataset(cache, tasks=("bvp",), recordings=["subject4"])) == 2  # frames: sizes only
    with pytest.raises(DamagedRecording, match="rgb_000.npy differs"):
        verify_recording(d["subject4"], "full")

    again = preprocess(recs, tmp_path, SMALL, workers=0)
    assert sorted(again.redone) == sorted(again.processed) == ["subject1", "subject2", "subject3", "subject4"]
    assert "SHA-256 mismatch" in again.redone["subject4"] and again.ok
    assert digests(cache) == clean and len(clean) == 4 * 5
    third = preprocess(recs, tmp_path, SMALL, workers=0)
    assert third.skipped == [r.recording_id for r in recs] and not third.redone


def test_meta_and_manifest_damage_is_repaired(ubfc, tmp_path):
    root, clean = ubfc
    recs = load_dataset("ubfc-rppg", root)
    cache = preprocess(recs, tmp_path, SMALL, workers=0).cache_dir
    (folder(cache, "subject1") / "meta.json").unlink()  # was: OSError Directory not empty, every rerun
    (folder(cache, "subject2") / "meta.json").write_text("{not json")  # was: a traceback
    meta3 = folder(cache, "subject3") / "meta.json"
    meta3.write_text(meta3.read_text().replace('"fps": 30.0', '"fps": 25.0'))  # valid JSON, changed
    again = preprocess(recs, tmp_path, SMALL, workers=0)
    assert sorted(again.redone) == ["subject1", "subject2", "subject3"] and again.skipped == ["subject4"]
    assert "meta.json is missing" in again.redone["subject1"]
    assert "subject2-" in again.redone["subject2"] and "meta.json differs" in again.redone["subject2"]
    assert "SHA-256 in manifest.json" in again.redone["subject3"]
    assert digests(cache) == clean

    manifest = cache / "manifest.json"
    manifest.write_bytes(manifest.read_bytes()[:50])  # truncated
    with pytest.raises(InputError, match="manifest.json: corrupt manifest"):
        CacheDataset(cache, tasks=("bvp",))
    (folder_by_glob(cache, "subject4") / "meta.json").write_text("{not json")  # no digest to compare now
    rebuilt = preprocess(recs, tmp_path, SMALL, workers=0)
    assert "manifest.json was unreadable" in rebuilt.manifest_rebuilt and len(rebuilt.skipped) == 3
    assert "not a valid meta.json (JSONDecodeError" in rebuilt.redone["subject4"]
    assert digests(cache) == clean
    assert read_manifest(cache)["counts"]["done"] == 4 and len(CacheDataset(cache, tasks=("bvp",))) == 8


def test_old_cache_without_digests_is_structure_checked(ubfc, tmp_path):
    root, clean = ubfc
    recs = load_dataset("ubfc-rppg", root)
    cache = preprocess(recs, tmp_path, SMALL, workers=0).cache_dir
    for meta_path in cache.glob("*/meta.json"):  # as mmrphys-cache/1 wrote it
        meta = json.loads(meta_path.read_text())
        meta["format"] = "mmrphys-cache/1"
        del meta["files"]
        meta_path.write_text(json.dumps(meta))
    (cache / "manifest.json").unlink()
    d1 = folder_by_glob(cache, "subject1")
    (d1 / "rgb_001.npy").write_bytes((d1 / "rgb_001.npy").read_bytes()[:-10])
    again = preprocess(recs, tmp_path, SMALL, workers=0)
    assert list(again.redone) == ["subject1"] and "header says 3200" in again.redone["subject1"]
    assert again.unverified == ["subject2", "subject3", "subject4"]
    with pytest.warns(UserWarning, match="3 recording.* older mmrphys without checksums"):
        CacheDataset(cache, tasks=("bvp",))
    assert digests(cache) == clean


def folder_by_glob(cache: Path, rec_id: str) -> Path:
    (d,) = cache.glob(f"{rec_id}-*")
    return d


def test_label_length_mismatch_is_a_named_failure(tmp_path):
    # 300 frames (10 s); subject2's labels cut to 40 samples (1.3 s): was stretched 7.5x and "done"
    root = fx.ubfc2(tmp_path / "data", subjects=(1, 2, 3), n=300)
    for s, keep in ((2, 40), (3, 275)):  # subject3: 25 samples short = 0.83 s, inside the 1 s tolerance
        gt = root / f"subject{s}" / "ground_truth.txt"
        np.savetxt(gt, np.loadtxt(gt)[:, :keep], fmt="%.6e")
    rep = preprocess(
        load_dataset("ubfc-rppg", root), tmp_path / "out", Settings(size=8, chunk=64, crop="none"), workers=0
    )
    assert sorted(rep.processed) == ["subject1", "subject3"] and list(rep.failed) == ["subject2"]
    msg = rep.failed["subject2"]
    assert "subject2/ground_truth.txt: label 'bvp' lasts 1.33 s (40 samples)" in msg
    assert "the video 10.00 s (300 frames)" in msg and "tolerance of 1.00 s" in msg
    assert read_manifest(rep.cache_dir)["recordings"]["subject2"]["status"] == "failed"

    # the rule in numbers: max(5 %, 1 s); index alignment compares durations, time alignment coverage
    assert length_tolerance_s(10) == 1.0 and length_tolerance_s(100) == pytest.approx(5.0)
    ft = np.arange(3000) / 30.0  # 100 s of frames
    check_lengths({"bvp": Signal(np.zeros(3140))}, 3000, ft)  # 104.7 s: 4.7 s apart, inside 5 s
    with pytest.raises(InputError, match=r"lasts 105.33 s \(3160 samples\)"):
        check_lengths({"bvp": Signal(np.zeros(3160))}, 3000, ft)
    late = Signal(np.zeros(600), fs=6.0)  # 99.8 s at 6 Hz, starting 4.5 s, then 5.5 s late
    check_lengths({"bvp": late._replace(t=np.arange(600) / 6.0 + 4.5)}, 3000, ft, method="time")
    with pytest.raises(
        InputError, match=r"^label 'bvp' covers 5.50-105.33 s .*: 5.50 s without .* of 5.00 s"
    ):
        check_lengths({"bvp": late._replace(t=np.arange(600) / 6.0 + 5.5)}, 3000, ft, method="time")
    check_lengths({"bvp": Signal(np.zeros(10), spans_video=True)}, 3000, ft)  # rate unknown: unchecked


def test_pure_labels_ending_early_are_refused(tmp_path):
    root = fx.pure(tmp_path / "data", recs=("01-01", "02-01"), n=90)  # 3 s of frames
    js = root / "02-01" / "02-01.json"
    data = json.loads(js.read_text())
    data["/FullPackage"] = data["/FullPackage"][:50]  # oximeter stops at 0.8 s
    js.write_text(json.dumps(data))
    rep = preprocess(
        load_dataset("pure", root), tmp_path / "out", Settings(size=8, chunk=30, crop="none"), workers=0
    )
    assert rep.processed == ["01-01"] and "02-01.json: label 'bvp' covers" in rep.failed["02-01"]
    assert "2.17 s without label" in rep.failed["02-01"]


def test_unreadable_inputs_among_good_ones_fail_alone(tmp_path):
    root = fx.ubfc2(tmp_path / "data", subjects=(1, 2, 3, 4, 5), n=40)
    (root / "subject2" / "vid.avi").write_text("a text file, not a video\n")
    (root / "subject3" / "ground_truth.txt").write_text("1.0 nan 2.0\n")
    (root / "subject4" / "ground_truth.txt").unlink()
    recs = load_dataset("ubfc-rppg", root)  # listing goes on past the broken ones
    rep = preprocess(recs, tmp_path / "out", SMALL, workers=0)
    assert sorted(rep.processed) == ["subject1", "subject5"] and rep.n_chunks == 4
    assert "subject2/vid.avi is not a readable video" in rep.failed["subject2"]
    assert "subject3/ground_truth.txt: line 1 has a non-finite value 'nan'" in rep.failed["subject3"]
    assert "missing labels in" in rep.failed["subject4"] and "subject4" in rep.failed["subject4"]
    counts = read_manifest(rep.cache_dir)["counts"]
    assert counts["done"] == 2 and counts["failed"] == 3
    assert len(CacheDataset(rep.cache_dir, tasks=("bvp",))) == 4


def test_a_cache_that_cannot_be_written_is_one_line(ubfc, tmp_path):
    root, clean = ubfc
    recs = load_dataset("ubfc-rppg", root)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CacheWriteError, match=r"cannot create the cache folder .*file/ubfc.*Not a directory"):
        preprocess(recs, tmp_path / "file", SMALL, workers=0)
    (tmp_path / "ro").mkdir()
    with faults.read_only(tmp_path / "ro") as ok:
        if not ok:
            pytest.skip("cannot make a folder read-only here")
        with pytest.raises(CacheWriteError, match="cannot create the cache folder"):
            preprocess(recs, tmp_path / "ro", SMALL, workers=0)
    cache = preprocess(recs[:2], tmp_path / "ro", SMALL, workers=0).cache_dir
    with faults.read_only(cache):
        # complete and verified: usable read-only; missing recordings: refused, naming the folder
        assert preprocess(recs[:2], tmp_path / "ro", SMALL, workers=0).skipped == ["subject1", "subject2"]
        with pytest.raises(CacheWriteError, match=r"is read-only and 2 recording\(s\) need processing"):
            preprocess(recs, tmp_path / "ro", SMALL, workers=0)
    with pytest.raises(ConfigError, match="workers must be a whole number >= 0"):
        preprocess(recs, tmp_path / "x", SMALL, workers=-1)


def _cli(args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "mmrphys", "preprocess", *args],
        capture_output=True,
        text=True,
        timeout=120,
        **kw,
    )


def test_full_disk_stops_the_run_in_one_line_and_resume_completes(ubfc, tmp_path):
    root, clean = ubfc
    args = ["ubfc-rppg", str(root), "--out", str(tmp_path), "--size", "8", "--chunk", "16", "--no-crop"]
    args += ["--quiet", "--workers", "2"]
    # files limited to 3000 bytes: a 3200-byte chunk fails with EFBIG in the worker
    r = _cli(args, preexec_fn=faults.file_size_limit(3000))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (line,) = r.stderr.splitlines()
    assert (
        "error: cannot write" in line and "rgb_000.npy: File too large" in line and "rerun to resume" in line
    )
    (cache,) = tmp_path.glob("ubfc-rppg_*")
    assert not list(cache.glob(".*tmp*")) and not list(cache.glob("subject*"))
    r = _cli(args[:-1] + ["0"])
    assert r.returncode == 0 and "(4 processed, 0 already done, 0 failed)" in r.stdout, r.stderr
    assert digests(cache) == clean


KILL_RUN = """
import sys
from functools import partial
import faults
import mmrphys.data.cache as cache
from mmrphys.cli.main import main
# frames 30 ms slower in each worker, so that the run can be killed midway
cache.preprocess = partial(cache.preprocess, worker_init=partial(faults.slow_frames, 0.03))
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_no_worker_outlives_a_killed_run_and_resume_is_identical(ubfc, tmp_path, sig):
    root, clean = ubfc
    args = ["preprocess", "ubfc-rppg", str(root), "--out", str(tmp_path), "--size", "8", "--chunk", "16"]
    args += ["--no-crop", "--quiet", "--workers", "2"]
    env_path = str(Path(faults.__file__).parent)
    p = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n" + KILL_RUN, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # two workers (and multiprocessing's resource tracker) busy on recordings
        assert faults.wait_until(lambda: len(list(tmp_path.glob("*/.subject*.tmp-*"))) >= 2, 60)
        kids = faults.descendants(p.pid)
        assert len(kids) >= 2
        p.send_signal(sig)
        _, err = p.communicate(timeout=30)
        t0 = time.monotonic()
        assert faults.wait_until(lambda: not faults.alive(kids), 5), f"orphans: {faults.alive(kids)}"
        assert time.monotonic() - t0 < 5
    finally:
        p.kill()
    assert p.returncode == {signal.SIGKILL: -9, signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
    assert "Traceback" not in err and "error" not in err
    r = _cli(args[1:-1] + ["0"])  # resume in-process
    assert r.returncode == 0, r.stderr
    assert digests(next(tmp_path.glob("ubfc-rppg_*"))) == clean


def test_worker_init_that_fails_is_reported_per_recording(ubfc, tmp_path):
    root, _ = ubfc
    recs = load_dataset("ubfc-rppg", root)[:2]
    rep = preprocess(recs, tmp_path, SMALL, workers=2, worker_init=partial(int, "not a number"))
    assert set(rep.failed) == {"subject1", "subject2"}
    assert all("worker initializer failed: ValueError" in e for e in rep.failed.values())
