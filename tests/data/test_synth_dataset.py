"""Synthetic training set: deterministic, readable by the generic loader, truthful labels, preprocessable."""

from __future__ import annotations

import json

import numpy as np

from mmrphys.data import load_dataset
from mmrphys.data.cache import Settings, preprocess
from mmrphys.synth.dataset import make_dataset


def _peak_bpm(x, fs):
    x = np.asarray(x) - np.mean(x)
    f = np.fft.rfftfreq(8 * len(x), 1 / fs)
    p = np.abs(np.fft.rfft(x, 8 * len(x)))
    band = (f > 0.08) & (f < 4)
    return 60 * f[band][np.argmax(p[band])]


def test_synth_dataset_roundtrip(tmp_path):
    idx = make_dataset(
        tmp_path / "syn", n=3, per_subject=2, duration_s=4.0, size=(112, 84), thermal=True, seed=3
    )
    assert list(idx["recordings"]) == ["s000_r0", "s000_r1", "s001_r0"]
    recs = load_dataset("generic", tmp_path / "syn")
    assert [(r.recording_id, r.subject_id) for r in recs] == [
        ("s000_r0", "s000"),
        ("s000_r1", "s000"),
        ("s001_r0", "s001"),
    ]
    r = recs[0]
    truth = json.loads((tmp_path / "syn" / "s000" / "r0.json").read_text())
    assert r.modalities == ("rgb", "thermal") and r.label_names == ("bvp", "rsp")
    rgb, t = r.load("rgb")
    th, _ = r.load("thermal")
    assert rgb.shape == (120, 84, 112, 3) and th.shape == (120, 84, 112)
    assert 15 < float(th.min()) and float(th.max()) < 40  # °C
    lab = r.aligned_labels(len(t), t)
    assert abs(_peak_bpm(lab["bvp"], 30.0) - truth["hr_bpm"]) < 4
    # looks differ between identities, repeat within one identity
    assert truth["look"] == json.loads((tmp_path / "syn" / "s000" / "r1.json").read_text())["look"]
    assert truth["look"] != json.loads((tmp_path / "syn" / "s001" / "r0.json").read_text())["look"]
    again = make_dataset(tmp_path / "syn2", n=1, duration_s=1.0, size=(112, 84), thermal=False, seed=3)
    assert again["recordings"]["s000_r0"]["hr_bpm"] == idx["recordings"]["s000_r0"]["hr_bpm"]  # seeded

    # every frame's face box is written; preprocessing crops with it by default (crop "auto" -> given)
    assert all(rec.has_face_boxes for rec in recs) and r.face_boxes().shape == (120, 4)
    rep = preprocess(recs, tmp_path / "cache", Settings(size=36, chunk=40, crop="auto"), workers=0)
    assert rep.ok and rep.n_chunks == 9 and "given" in rep.cache_dir.name
    meta = json.loads(
        (
            rep.cache_dir
            / json.loads((rep.cache_dir / "manifest.json").read_text())["recordings"]["s000_r0"]["dir"]
            / "meta.json"
        ).read_text()
    )
    assert meta["modalities"] == ["rgb", "thermal"] and meta["labels"] == ["bvp", "rsp"]
    assert meta["face"]["source"] == "given" and meta["face"]["frames_without_face"] == 0
    crop = np.load(rep.cache_dir / meta["key"] / "thermal_000.npy")
    assert crop.shape == (40, 36, 36, 1) and crop.dtype == np.float16
