"""Synthetic clips: ground truth, files, detectability."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mmrphys.errors import ConfigError
from mmrphys.faces import FaceDetector
from mmrphys.synth import (
    Effects,
    FaceLook,
    detector_box,
    draw_face,
    face_boxes,
    make_clip,
    physiology,
    random_look,
    render_frames,
)
from mmrphys.video import open_video


def test_physiology_rates_and_shape():
    p = physiology(84, 14, 30, 30, seed=1)
    assert p["bvp"].shape == (900,) and p["rsp"].shape == (900,)
    assert p["hr_bpm"] == pytest.approx(84, abs=1e-6) and p["rr_bpm"] == pytest.approx(14, abs=1e-6)
    # the dominant frequencies are the rates
    f = np.fft.rfftfreq(900, 1 / 30) * 60
    assert abs(f[np.argmax(np.abs(np.fft.rfft(p["bvp"])))] - 84) < 3
    assert abs(f[np.argmax(np.abs(np.fft.rfft(p["rsp"])))] - 14) < 3
    assert len(p["beats_s"]) == pytest.approx(30 * 84 / 60, abs=2)
    with pytest.raises(ConfigError):
        physiology(400, 14, 10, 30)


def test_make_clip_writes_video_and_truth(tmp_path):
    truth = make_clip(tmp_path / "c.y4m", hr_bpm=70, rr_bpm=12, duration_s=2, fps=30, size=(160, 120),
                      thermal=True)
    assert truth["n_frames"] == 60
    reader = open_video(truth["video"])
    frames = [f for f, _ in reader]
    assert len(frames) == 60 and frames[0].shape == (120, 160, 3)
    assert FaceDetector().detect(frames[30])
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["hr_bpm"] == pytest.approx(70) and saved["rr_bpm"] == pytest.approx(12)
    rows = (tmp_path / "c.csv").read_text().splitlines()
    assert rows[0] == "t_s,bvp,rsp,hr_bpm,rr_bpm" and len(rows) == 61
    thermal = [f for f, _ in open_video(truth["thermal_video"])]
    assert len(thermal) == 60
    assert np.allclose(thermal[0][..., 0], thermal[0][..., 1], atol=3)  # grey


def test_skin_colour_changes_along_the_pulse(tmp_path):
    truth = make_clip(tmp_path / "c.npy", duration_s=4, fps=30, size=(96, 96))
    frames = np.load(truth["video"]).astype(float)
    x0, y0, w, h = (int(v) for v in truth["face_box"])
    cheek = frames[:, y0 + h // 2: y0 + h // 2 + 6, x0 + w // 4: x0 + w // 4 + 6].mean(axis=(1, 2))
    bvp = physiology(84, 14, 4, 30, seed=0)["bvp"]
    g = cheek[:, 1] - np.convolve(cheek[:, 1], np.ones(15) / 15, mode="same")
    # more blood -> darker green: strongly negative correlation with the pulse
    assert np.corrcoef(g[10:-10], bvp[10:-10])[0, 1] < -0.5


def test_random_looks_vary_and_bad_sizes_rejected(tmp_path):
    a, b = random_look(1), random_look(2)
    assert a.skin_rgb != b.skin_rgb
    with pytest.raises(ConfigError):
        make_clip(tmp_path / "x.mp4", size=(32, 32), duration_s=1)
    with pytest.raises(ConfigError):
        make_clip(tmp_path / "x.gif", duration_s=1)


def test_face_boxes_follow_the_rendered_face():
    scene = draw_face(160, 120, FaceLook(), seed=0)
    fx = Effects(noise=0, sway=0.15, breath_motion=0.03, drift=0, light_change=0)
    phys = physiology(70, 20, 3, 30, seed=2)
    boxes = face_boxes(scene, phys, fx, seed=4)
    frames = np.stack([rgb for rgb, _ in render_frames(scene, phys, fx, seed=4)]).astype(float)
    assert boxes.shape == (90, 4) and np.allclose(boxes[:, 2:], detector_box(scene["box"])[2:])
    # the image's own shift: frame 0 moved by the box's shift matches frame k better than moved by
    # anything 0.5 px away from it
    bx, by = boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2
    assert np.ptp(bx) > 3 and np.ptp(by) > 3  # the face really moves
    x0, y0 = int(bx[0]), int(by[0])
    grid = [-0.5, 0.0, 0.5]
    for k in range(10, 90, 20):
        errors = {}
        for ex in grid:
            for ey in grid:
                m = np.float64([[1, 0, bx[k] - bx[0] + ex], [0, 1, by[k] - by[0] + ey]])
                ref = cv2.warpAffine(frames[0], m, (160, 120), flags=cv2.INTER_LINEAR)
                errors[ex, ey] = np.mean((ref - frames[k])[y0 - 25: y0 + 25, x0 - 20: x0 + 20] ** 2)
        assert min(errors, key=errors.get) == (0.0, 0.0), k


def test_detector_box_matches_haar_on_a_synthetic_face():
    scene = draw_face(320, 240, FaceLook(), seed=0)
    a = scene["alpha"][..., None]
    img = np.clip(scene["face"] * a + scene["background"] * (1 - a), 0, 255).astype(np.uint8)
    det = FaceDetector().detect(img)[0]
    x, y, w, h = detector_box(scene["box"])
    assert abs(w - det.w) < 0.12 * det.w
    assert abs(x + w / 2 - det.x - det.w / 2) < 0.05 * det.w
    assert abs(y + h / 2 - det.y - det.h / 2) < 0.05 * det.w
