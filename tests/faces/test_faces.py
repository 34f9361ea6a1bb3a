"""Face detection on synthetic faces, the training crop, and tracking with gaps."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import ConfigError
from mmrphys.faces import Box, FaceDetector, FaceTracker, crop_resize, square_box
from mmrphys.synth import FaceLook, draw_face


def _scene_frame(w=320, h=240, look=None):
    s = draw_face(w, h, look or FaceLook())
    a = s["alpha"][..., None]
    return np.clip(s["face"] * a + s["background"] * (1 - a), 0, 255).astype(np.uint8), s["box"]


def _iou(a, b):
    ax0, ay0, aw, ah = a[:4]
    bx0, by0, bw, bh = b[:4]
    ix = max(0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    return ix * iy / (aw * ah + bw * bh - ix * iy)


def test_square_box_is_square_scaled_and_clipped():
    assert square_box((100, 50, 40, 60), 1.5) == (75, 35, 165, 125)  # side 90 about centre (120, 80)
    x0, y0, x1, y1 = square_box(Box(0, 0, 40, 40, 1.0), 1.5, frame_shape=(100, 100))
    assert (x0, y0) == (0, 0) and (x1, y1) == (50, 50)


def test_crop_resize_shape_and_area_mean():
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, 50:] = 200
    crop = crop_resize(frame, (0, 0, 100, 100), 10)
    assert crop.shape == (10, 10, 3) and crop.dtype == np.uint8
    assert crop.mean() == pytest.approx(100, abs=1)  # INTER_AREA keeps the mean


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (128, 128)])
def test_detector_finds_the_synthetic_face(size):
    frame, truth = _scene_frame(*size)
    boxes = FaceDetector().detect(frame)
    assert boxes, "no face found"
    assert _iou(boxes[0], truth) > 0.4


def test_detector_on_4k_frame_downscales():
    import cv2

    frame, truth = _scene_frame(384, 216)
    big = cv2.resize(frame, (3840, 2160), interpolation=cv2.INTER_LINEAR)
    boxes = FaceDetector().detect(big)
    assert boxes and _iou(boxes[0], [v * 10 for v in truth]) > 0.4


def _small_face_frame(face_px, canvas=(1280, 720)):
    """The synthetic face scaled to ``face_px`` and placed on a flat HD canvas; its box there."""
    import cv2

    frame, truth = _scene_frame(320, 240)
    s = face_px / max(truth[2], truth[3])
    small = cv2.resize(frame, (round(320 * s), round(240 * s)), interpolation=cv2.INTER_AREA)
    w, h = canvas
    big = np.full((h, w, 3), 90, np.uint8)
    x0, y0 = w // 3, h // 2 - small.shape[0] // 2
    big[y0:y0 + small.shape[0], x0:x0 + small.shape[1]] = small
    return big, [x0 + truth[0] * s, y0 + truth[1] * s, truth[2] * s, truth[3] * s]


@pytest.mark.parametrize("face_px", [100, 60])
def test_a_small_face_in_an_hd_frame_is_found_and_tracked(face_px):
    # 1280x720 is searched 320 px wide, where these faces are 25 and 15 px, and they are below
    # min_size (0.15 of 720 = 108 px): the second, finer search (detect.SMALL_FACE_FRACTION) finds them
    frame, truth = _small_face_frame(face_px)
    det = FaceDetector()
    boxes = det.detect(frame)
    assert boxes and _iou(boxes[0], truth) > 0.4
    side = max(truth[2], truth[3])
    tracked = det.detect(frame, min_face_px=0.6 * side, max_face_px=1.7 * side)  # the tracker's search
    assert tracked and _iou(tracked[0], truth) > 0.4
    assert det.detect(np.full_like(frame, 90)) == []


def test_no_face_in_noise_and_unknown_backend():
    rng = np.random.default_rng(0)
    assert FaceDetector().detect(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)) == []
    with pytest.raises(ConfigError):
        FaceDetector("nope")


def test_tracker_bridges_short_gaps_and_reports_long_ones():
    face, _ = _scene_frame()
    blank = np.full_like(face, 90)
    frames = [face] * 20 + [blank] * 5 + [face] * 20 + [blank] * 40 + [face] * 10
    tr = FaceTracker(every_n=5, max_gap=10)
    out = [tr.update(f, i) for i, f in enumerate(frames)]
    gaps = tr.finish(len(frames))
    assert all(b is not None for b in out[:45])  # the 5-frame gap is bridged
    assert all(b is None for b in out[60:85])  # the 40-frame gap is not
    assert out[-1] is not None  # found again
    assert any(not bridged and end - start >= 30 for start, end, bridged in gaps)
    assert any(bridged for _, _, bridged in gaps)
    x0, y0, x1, y1 = out[0]
    assert abs((x1 - x0) - (y1 - y0)) <= 1  # square crop


def test_tracking_detection_with_size_bounds_and_lazy_frames():
    from mmrphys.video import RGBFrame

    frame, truth = _scene_frame(640, 480)
    side = max(truth[2], truth[3])
    det = FaceDetector()
    # the tracker's search: 60-170 % of the tracked size, on a further downscaled frame
    boxes = det.detect(frame, min_face_px=0.6 * side, max_face_px=1.7 * side)
    assert boxes and _iou(boxes[0], truth) > 0.4
    assert det.detect(frame, min_face_px=0.2 * side, max_face_px=0.5 * side) == []  # bounds are honoured
    coarse = det.discover(frame)  # the search for new faces: a coarser image, the same face
    assert coarse and _iou(coarse[0], truth) > 0.4
    lazy = det.detect(RGBFrame(frame))  # a lazy frame is detected on its grey image
    assert lazy and _iou(lazy[0], truth) > 0.4
    tracker = FaceTracker(det, every_n=5)
    xyxy = [tracker.update(RGBFrame(frame), i) for i in range(12)]
    assert all(b is not None for b in xyxy) and tracker.n_detections == 3
