"""Every dataset loader on a tiny dataset in its exact layout: frames, labels, fps, subject ids, errors."""

from __future__ import annotations

import os
import sys

import datafixtures as fx
import numpy as np
import pytest

from mmrphys.data import align_labels, get_loader, list_datasets, load_dataset
from mmrphys.errors import ConfigError, InputError


def _red(frames) -> np.ndarray:
    return frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 0].astype(int)


def _expect_red(n, idx=None):
    idx = range(n) if idx is None else idx
    return np.array([fx.frame_value(i) for i in idx])


def test_registry_lists_all_layouts():
    assert set(list_datasets()) >= {
        "ubfc-rppg",
        "pure",
        "ibvp",
        "scamps",
        "bp4d",
        "cohface",
        "mmpd",
        "ubfc-phys",
        "generic",
    }
    assert get_loader("UBFC-rPPG").name == "ubfc-rppg"
    with pytest.raises(ConfigError, match="unknown dataset"):
        get_loader("nope")
    with pytest.raises(ConfigError, match="no option"):
        get_loader("pure", colour=1)


def test_ubfc_dataset2(tmp_path):
    fx.ubfc2(tmp_path, subjects=(2, 10, 1), n=24)
    recs = load_dataset("ubfc-rppg", tmp_path)
    assert [r.recording_id for r in recs] == ["subject1", "subject2", "subject10"]  # natural order
    assert [r.subject_id for r in recs] == ["subject1", "subject2", "subject10"]
    r = recs[1]
    assert r.fps == pytest.approx(30.0)
    frames, times = r.load()
    assert frames.shape == (24, fx.H, fx.W, 3) and frames.dtype == np.uint8
    np.testing.assert_array_equal(_red(frames), _expect_red(24))
    np.testing.assert_allclose(np.diff(times), 1 / 30, atol=1e-3)
    lab = r.labels()["bvp"]
    np.testing.assert_allclose(lab.values, fx.sine(24, 30.0) + 2, atol=1e-5)
    np.testing.assert_allclose(lab.t, np.arange(24) / 30, atol=1e-6)  # row 3, from 0
    aligned = r.aligned_labels(24, times)
    np.testing.assert_allclose(aligned["bvp"], lab.values)


def test_ubfc_mp4_and_dataset1(tmp_path):
    fx.ubfc2(tmp_path / "d2", subjects=(1,), n=20, ext=".mp4")
    (r,) = load_dataset("ubfc-rppg", tmp_path / "d2")
    assert r.load()[0].shape[0] == 20
    fx.ubfc1(tmp_path / "d1", n=24)
    (r,) = load_dataset("ubfc-rppg", tmp_path / "d1")
    assert r.meta["variant"] == "DATASET_1" and r.recording_id == "10-gt"
    sig = r.labels()["bvp"]
    assert sig.t[0] == 0 and sig.t[-1] == pytest.approx((len(sig.values) - 1) / 62, abs=1e-3)
    frames, times = r.load()
    by_time = r.aligned_labels(len(frames), times, method="time")["bvp"]
    np.testing.assert_allclose(by_time, fx.sine(24, 30.0), atol=0.06)  # label sampled at frame times


def test_ubfc_errors_name_the_file(tmp_path):
    fx.ubfc2(tmp_path, subjects=(1, 2))
    os.remove(tmp_path / "subject2" / "ground_truth.txt")
    ok, broken = load_dataset("ubfc-rppg", tmp_path)  # listed, not stopped: the broken one carries its error
    assert ok.error is None and "subject2" in broken.error and "ground_truth.txt" in broken.error
    with pytest.raises(InputError, match="subject2"):
        broken.load()
    (tmp_path / "subject2" / "vid.avi").write_text("not a video")
    (tmp_path / "subject2" / "ground_truth.txt").write_text("1 2 3\n")
    assert "subject2/vid.avi is not a readable video" in load_dataset("ubfc-rppg", tmp_path)[1].error
    fx.ubfc2(tmp_path, subjects=(2,))
    (tmp_path / "subject2" / "ground_truth.txt").write_text("not numbers at all\nfoo bar\n")
    rec = load_dataset("ubfc-rppg", tmp_path)[1]
    with pytest.raises(InputError, match=r"subject2/ground_truth.txt"):
        rec.labels()
    with pytest.raises(InputError, match="does not exist"):
        load_dataset("ubfc-rppg", tmp_path / "nope")


def test_pure_time_alignment(tmp_path):
    fx.pure(tmp_path, n=12)
    recs = load_dataset("pure", tmp_path)
    assert [(r.recording_id, r.subject_id) for r in recs] == [("01-01", "01"), ("02-01", "02")]
    r = recs[0]
    assert r.align == "time"
    frames, times = r.load()
    np.testing.assert_array_equal(_red(frames), _expect_red(12))
    np.testing.assert_allclose(times, np.arange(12) / 30, atol=1e-6)
    bvp = r.aligned_labels(12, times)["bvp"]
    # the oximeter ramp rises 3 per 1/60 s and started 20 ms before the first frame
    np.testing.assert_allclose(bvp, 3 * (times + 0.020) * 60, atol=1e-3)
    (tmp_path / "02-01" / "02-01.json").write_text("{broken")
    with pytest.raises(InputError, match="02-01.json"):
        recs[1].labels()


def test_ibvp_rgb_thermal_and_quality(tmp_path):
    fx.ibvp(tmp_path, n=10, sq_low=(3, 4))
    recs = load_dataset("ibvp", tmp_path, modality="rgbt")
    assert [r.subject_id for r in recs] == ["p01", "p02"]
    r = recs[0]
    assert r.modalities == ("rgb", "thermal")
    rgb, t = r.load("rgb")
    th, _ = r.load("thermal")
    keep = [0, 1, 2, 5, 6, 7, 8, 9]  # SQ2 <= 0.3 at frames 3, 4 dropped
    np.testing.assert_array_equal(_red(rgb), _expect_red(10, keep))
    assert th.shape == (8, 480, 640) and th.dtype == np.float32  # cut to the RGB height
    np.testing.assert_allclose(th[:, 0, 0], [30 + 0.1 * i for i in keep], atol=0.03)
    np.testing.assert_allclose(t * 30, keep)
    np.testing.assert_allclose(r.labels()["bvp"].values, keep)  # BVP = 0..9
    full = load_dataset("ibvp", tmp_path, drop_low_quality=False)[0]
    assert full.load()[0].shape[0] == 10 and full.modalities == ("rgb",)
    with open(tmp_path / "p02_a" / "p02_a_t" / "00002.raw", "r+b") as fh:
        fh.truncate(100)
    bad = load_dataset("ibvp", tmp_path, modality="thermal")[1]
    with pytest.raises(InputError, match="00002.raw"):
        bad.load()


def test_scamps_mat73(tmp_path):
    pytest.importorskip("h5py")
    fx.scamps(tmp_path, n=8, size=32)
    recs = load_dataset("scamps", tmp_path)
    assert [r.recording_id for r in recs] == ["P000001", "P000002"] and recs[0].meta["split"] == "Train"
    frames, _ = recs[1].load()
    assert frames.shape == (8, 32, 32, 3)
    np.testing.assert_array_equal(_red(frames), _expect_red(8))
    np.testing.assert_array_equal(frames[0, 3, 5], [fx.frame_value(0), 100, 200])
    lab = recs[1].labels()
    np.testing.assert_allclose(lab["bvp"].values, fx.sine(8, 30.0) + 1)
    np.testing.assert_allclose(lab["rsp"].values, fx.sine(8, 30.0, 0.25))
    (tmp_path / "Train" / "P000002.mat").write_bytes(b"MATLAB 5.0 MAT-file, not hdf5")
    with pytest.raises(InputError, match="P000002.mat"):
        recs[1].labels()


def test_scamps_without_h5py_names_package(tmp_path, monkeypatch):
    pytest.importorskip("h5py")
    fx.scamps(tmp_path, n=2, size=8)
    monkeypatch.setitem(sys.modules, "h5py", None)  # makes 'import h5py' raise ImportError
    rec = load_dataset("scamps", tmp_path)[0]
    with pytest.raises(ConfigError, match="pip install h5py"):
        rec.labels()


def test_bp4d_distributed(tmp_path):
    fx.bp4d_distributed(tmp_path, n=10)
    recs = load_dataset("bp4d", tmp_path)
    assert [(r.recording_id, r.subject_id) for r in recs] == [
        ("F001_T1", "F001"),
        ("F001_T8", "F001"),
        ("M002_T1", "M002"),
        ("M002_T8", "M002"),
    ]
    r = recs[1]
    assert r.fps == 25.0
    frames, _ = r.load()
    assert frames.shape == (10, fx.H, fx.W, 3)
    assert np.abs(_red(frames) - _expect_red(10)).max() <= 2  # JPEG
    lab = r.labels()
    assert lab["bvp"].fs == 1000 and lab["rsp"].values.size == 400
    aligned = r.aligned_labels(10, method="index")
    assert aligned["rsp"].shape == (10,) and set(aligned) == {"bvp", "rsp"}
    os.remove(tmp_path / "Physiology" / "M002" / "T8" / "Resp_Volts.txt")
    with pytest.raises(InputError, match="Resp_Volts.txt"):
        load_dataset("bp4d", tmp_path)


def test_bp4d_cropped_and_folds(tmp_path):
    from mmrphys.data.splits import bp4d_fold, select_subjects

    fx.bp4d_cropped(tmp_path / "d", n=8)
    recs = load_dataset("bp4d", tmp_path / "d", modality="rgbt")
    assert [r.subject_id for r in recs] == ["F001", "F002", "M003"]
    r = recs[0]
    assert r.pre_cropped and r.modalities == ("rgb", "thermal")
    rgb, _ = r.load("rgb")
    th, _ = r.load("thermal")
    assert rgb.shape == (8, 72, 72, 3) and th.shape == (8, 72, 72)
    np.testing.assert_array_equal(_red(rgb), _expect_red(8))
    lab = r.labels()
    np.testing.assert_allclose(lab["rsp"].values, fx.sine(8, 25.0, 0.3), atol=1e-5)
    assert lab["raw_bp"].values[0] == 7
    folds = tmp_path / "folds"
    folds.mkdir()
    (folds / "Split1_Train_Subjects.csv").write_text("F001\nM003\n")
    (folds / "Split1_Test_Subjects.csv").write_text("F002\n")
    train, test = bp4d_fold(folds, 1)
    assert [x.recording_id for x in select_subjects(recs, train)] == ["F001_T1", "M003_T2"]
    assert [x.recording_id for x in select_subjects(recs, test)] == ["F002_T1"]
    with pytest.raises(InputError, match="Split2_Train_Subjects.csv"):
        bp4d_fold(folds, 2)


def test_cohface(tmp_path):
    pytest.importorskip("h5py")
    fx.cohface(tmp_path, n=20)
    recs = load_dataset("cohface", tmp_path)
    assert [(r.recording_id, r.subject_id) for r in recs] == [("1_0", "1"), ("2_0", "2")]
    r = recs[0]
    assert r.fps == pytest.approx(20.0) and r.align == "time"
    frames, times = r.load()
    assert frames.shape[0] == 20
    al = r.aligned_labels(20, times)
    np.testing.assert_allclose(al["bvp"], 10 * times, atol=1e-6)  # pulse ramp read at frame times
    assert al["rsp"].shape == (20,)


def test_mmpd(tmp_path):
    fx.mmpd(tmp_path, n=6)
    recs = load_dataset("mmpd", tmp_path)
    assert [(r.recording_id, r.subject_id) for r in recs] == [("p1_0", "subject1"), ("p2_0", "subject2")]
    assert recs[0].meta["light"] == "LED-1" and recs[0].meta["skin_color"] == 3
    frames, _ = recs[0].load()
    assert frames.shape == (6, 24, 32, 3)
    np.testing.assert_array_equal(_red(frames), _expect_red(6))
    np.testing.assert_allclose(recs[0].labels()["bvp"].values, fx.sine(6, 30.0), atol=1e-9)
    only = load_dataset("mmpd", tmp_path, info={"light": ["LED-2"]})
    assert [r.recording_id for r in only] == ["p2_0"]


def test_ubfc_phys(tmp_path):
    fx.ubfc_phys(tmp_path, n=14)
    recs = load_dataset("ubfc-phys", tmp_path, tasks=("T2",))
    assert [(r.recording_id, r.subject_id) for r in recs] == [("s1_T2", "s1"), ("s2_T2", "s2")]
    assert recs[0].fps == pytest.approx(35.0)
    frames, _ = recs[0].load()
    assert frames.shape[0] == 14
    lab = recs[0].labels()["bvp"]
    assert lab.fs == 64 and lab.values.size == 25
    assert recs[0].aligned_labels(14)["bvp"].shape == (14,)


def test_generic(tmp_path):
    fx.generic(tmp_path, n=40, thermal=True)
    recs = load_dataset("generic", tmp_path)
    assert [(r.recording_id, r.subject_id) for r in recs] == [("alice_rest", "alice"), ("bob_walk", "bob")]
    r = recs[0]
    assert r.align == "time" and r.modalities == ("rgb", "thermal") and r.label_names == ("bvp", "rsp")
    frames, times = r.load()
    np.testing.assert_array_equal(_red(frames), _expect_red(40))
    al = r.aligned_labels(40, times)
    np.testing.assert_allclose(al["bvp"], np.sin(2 * np.pi * 1.2 * times), atol=0.02)
    th, _ = r.load("thermal")
    assert th.shape == (40, fx.H, fx.W) and float(th[0, 0, 0]) == 33.0
    (tmp_path / "bob" / "walk.csv").unlink()
    _, bob = load_dataset("generic", tmp_path)
    assert "walk.csv" in bob.error and bob.recording_id == "bob_walk"
    with pytest.raises(InputError, match="walk.csv"):
        bob.labels()


def test_align_index_is_toolbox_resample():
    from mmrphys.data.base import Signal

    x = np.arange(10.0)
    out = align_labels({"bvp": Signal(x)}, 19)["bvp"]
    np.testing.assert_allclose(out, np.interp(np.linspace(1, 10, 19), np.linspace(1, 10, 10), x))
    with pytest.raises(InputError, match="cover less than half"):
        align_labels({"bvp": Signal(x, fs=10.0)}, 5, frame_times=np.arange(5) + 100.0, method="time")
