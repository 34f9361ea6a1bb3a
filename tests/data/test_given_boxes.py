"""Given face boxes (generic NAME.boxes.csv, written by the synthetic generator) crop like detections."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrphys.data import load_dataset
from mmrphys.data.cache import Settings, preprocess, read_manifest
from mmrphys.data.generic import read_boxes_csv
from mmrphys.errors import ConfigError, InputError
from mmrphys.synth import FaceLook
from mmrphys.synth.dataset import make_recording, random_recording_params

DARK = FaceLook(skin_rgb=(92, 58, 42), hair_rgb=(20, 15, 12), background_rgb=(170, 175, 160),
                lip_rgb=(70, 30, 28))


def _recording(root, name, look, seed):
    params = random_recording_params(np.random.default_rng(seed))
    # visible head motion and a rotating/zooming view, so the boxes have to follow the face
    params.update(crf=16, rotate_deg=3.0, zoom=0.04)
    params["effects"].sway = 0.03
    params["effects"].noise = 2.0
    path = root / name / "r0.mp4"
    path.parent.mkdir(parents=True)
    make_recording(path, look, params, duration_s=2.0, fps=30.0, size=(160, 120), thermal=False, seed=seed)


def _skin_fraction(crops, skin_rgb) -> float:
    """Fraction of crop pixels with the face's skin colour (shading included)."""
    skin = np.asarray(skin_rgb, float)
    return float((np.abs(crops - 0.93 * skin) < 0.15 * skin + 10).all(axis=-1).mean())


def _crops(rep):
    out = {}
    for rid, e in read_manifest(rep.cache_dir)["recordings"].items():
        meta = json.loads((rep.cache_dir / e["dir"] / "meta.json").read_text())
        out[rid] = (np.load(rep.cache_dir / e["dir"] / "rgb_000.npy").astype(float), meta["face"])
    return out


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("given")
    _recording(root, "light", FaceLook(), seed=5)
    _recording(root, "dark", DARK, seed=6)
    return root


def test_given_boxes_crop_like_detection_and_centre_the_face(synth_root, tmp_path):
    recs = load_dataset("generic", synth_root)
    assert [r.recording_id for r in recs] == ["dark_r0", "light_r0"]
    assert all(r.has_face_boxes for r in recs)
    boxes = recs[1].face_boxes()
    assert boxes.shape == (60, 4) and np.all(boxes[:, 2] == boxes[:, 3])  # square, one per frame
    assert np.ptp(boxes[:, 1]) > 1.0  # the face moves

    # default (auto): the dataset has boxes, so they are used; detection stays available
    given = preprocess(recs, tmp_path, Settings(size=36, chunk=60, crop="auto"), workers=0, progress=False)
    assert "face1.5x-given30" in given.cache_dir.name and given.ok
    detected = preprocess(recs, tmp_path, Settings(size=36, chunk=60, crop="detect"), workers=0,
                          progress=False)
    assert "face1.5x-det30" in detected.cache_dir.name
    wide = preprocess(recs, tmp_path, Settings(size=36, chunk=60, crop="given", box_scale=1.2), workers=0,
                      progress=False)
    g, d, w = _crops(given), _crops(detected), _crops(wide)

    # a face the Haar cascade finds: given-box crops match the detected crops (same place, same x1.5
    # scale) far better than crops at another box scale do
    crop_g, face_g = g["light_r0"]
    crop_d, face_d = d["light_r0"]
    assert face_g["source"] == "given" and face_g["frames_without_face"] == 0
    assert face_d["source"] == "detected" and face_d["found"] == face_d["detections"]
    diff_same = np.abs(crop_g - crop_d).mean()
    diff_scale = np.abs(w["light_r0"][0] - crop_d).mean()
    assert diff_same < 9 and diff_scale > 2 * diff_same

    # every crop is centred on the face: the centre patch has the skin colour (shaded nose ridge
    # and cheeks: 0.85-1.1 of it), on light and dark skin alike, in every frame; and the face fills
    # as much of the crop as in the detected light-skin crops (the Haar cascade finds no face in
    # the dark-skin recording: its "crops" are whole frames, where the face fills half as much)
    reference = _skin_fraction(crop_d, FaceLook().skin_rgb)
    assert face_g["source"] == "given" and d["dark_r0"][1]["found"] == 0
    assert _skin_fraction(d["dark_r0"][0], DARK.skin_rgb) < 0.6 * reference
    for rid, look in (("light_r0", FaceLook()), ("dark_r0", DARK)):
        crop = g[rid][0]
        centre = crop[:, 14:22, 14:22].mean(axis=(1, 2))  # (frames, 3)
        skin = np.asarray(look.skin_rgb, float)
        assert np.all(np.abs(centre - 0.95 * skin) < 0.15 * skin + 8), rid
        assert abs(_skin_fraction(crop, look.skin_rgb) - reference) < 0.04, rid


def test_boxes_csv_reading_and_errors(tmp_path):
    p = tmp_path / "a.boxes.csv"
    p.write_text("frame,x,y,w,h\n0,1,2,30,30\n3,2,2,31,31\n4,,,,\n")
    b = read_boxes_csv(p)
    assert b.shape == (5, 4) and b[0].tolist() == [1, 2, 30, 30] and np.isnan(b[1:3]).all()
    assert np.isnan(b[4]).all()
    p.write_text("x,y,w,h\n1,2,30,30\n2,2,31,31\n")  # no frame column: one row per frame
    assert read_boxes_csv(p)[1].tolist() == [2, 2, 31, 31]
    p.write_text("frame,x,y,w\n0,1,2,3\n")
    with pytest.raises(InputError, match="a.boxes.csv.*missing column"):
        read_boxes_csv(p)
    p.write_text("frame,x,y,w,h\n0,1,2,0,30\n")
    with pytest.raises(InputError, match="a.boxes.csv: line 2"):
        read_boxes_csv(p)
    p.write_text("frame,x,y,w,h\n-1,1,2,3,3\n")
    with pytest.raises(InputError, match="frame"):
        read_boxes_csv(p)


def test_crop_given_without_boxes_is_refused(synth_root, tmp_path):
    root = tmp_path / "nobox"
    (root / "a").mkdir(parents=True)
    for f in ("r0.mp4", "r0.csv"):
        (root / "a" / f).write_bytes((synth_root / "light" / f).read_bytes())
    recs = load_dataset("generic", root)
    assert not recs[0].has_face_boxes and recs[0].face_boxes() is None
    with pytest.raises(ConfigError, match="a_r0"):
        preprocess(recs, tmp_path / "c", Settings(size=36, chunk=60, crop="given"), workers=0, progress=False)
    # auto falls back to detection for datasets without boxes
    auto = Settings(size=36, chunk=60, crop="auto")
    rep = preprocess(recs, tmp_path / "c", auto, workers=0, progress=False)
    assert "det30" in rep.cache_dir.name
