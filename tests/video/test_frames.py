"""Lazy frames: YUV crops against FFmpeg's RGB conversion, the grey plane, prefetching."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from mmrphys.faces import crop_resize
from mmrphys.synth import write_video
from mmrphys.video import RGBFrame, YUVFrame, frames_from_array, open_video, prefetch
from mmrphys.video.frame import _ycbcr_affine


def _smooth_frames(n=12, h=120, w=160, seed=0):
    # smooth colour gradients + a moving blob: chroma subsampling changes little, as in real video
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for i in range(n):
        r = 120 + 80 * np.sin(xx / 30 + i / 5)
        g = 100 + 60 * np.cos(yy / 25)
        b = 90 + 50 * np.sin((xx + yy) / 40) + 30 * np.exp(-((xx - 40 - 3 * i) ** 2 + (yy - 60) ** 2) / 200)
        img = np.stack([r, g, b], -1) + rng.normal(0, 1, (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "c.mp4"
    write_video(path, _smooth_frames(), fps=30, crf=10)
    return path


def test_yuv_crop_matches_ffmpeg_rgb_crop(clip):
    reader = open_video(clip)
    lazy = list(reader.frames(prefetch=False))
    rgb = list(reader)
    assert [t for _, t in lazy] == [t for _, t in rgb]
    box = (20, 10, 140, 110)
    for (f, _), (a, _) in zip(lazy, rgb):
        assert isinstance(f, YUVFrame) and f.shape == a.shape
        ours = f.crop_rgb(box, 24).astype(float)
        ref = crop_resize(a, box, 24).astype(float)
        # same picture up to chroma interpolation and rounding: < 3 levels per pixel, means within 2.5
        assert np.abs(ours - ref).mean() < 3.0
        np.testing.assert_allclose(ours.mean((0, 1)), ref.mean((0, 1)), atol=2.5)
        np.testing.assert_array_equal(f.rgb(), a)
        grey = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(float)
        assert f.gray().shape == a.shape[:2] and abs(f.gray().mean() - (16 + grey.mean() * 219 / 255)) < 3


def test_ycbcr_affine_known_colours():
    def conv(ycc, standard=601, full=False):
        px = np.array(ycc, np.uint8).reshape(1, 1, 3)
        return cv2.transform(px, _ycbcr_affine(standard, full)).ravel().astype(int)

    assert conv([16, 128, 128]).tolist() == [0, 0, 0]  # TV-range black and white
    assert conv([235, 128, 128]).tolist() == [255, 255, 255]
    assert conv([255, 128, 128], full=True).tolist() == [255, 255, 255]
    np.testing.assert_allclose(conv([81, 90, 240]), [255, 0, 0], atol=2)  # BT.601 red
    np.testing.assert_allclose(conv([63, 102, 240], standard=709), [255, 0, 0], atol=2)  # BT.709 red


def test_array_frames_are_rgb_frames():
    frames = _smooth_frames(3)
    out = list(frames_from_array(frames, fps=30).frames())
    assert all(isinstance(f, RGBFrame) for f, _ in out)
    box = (5, 5, 65, 65)
    np.testing.assert_array_equal(out[1][0].crop_rgb(box, 16), crop_resize(frames[1], box, 16))
    assert out[0][0].gray().shape == (120, 160)


def test_prefetch_order_errors_and_early_close():
    assert list(prefetch(range(100), depth=3)) == list(range(100))

    def failing():
        yield 1
        raise ValueError("broken file")

    it = prefetch(failing())
    assert next(it) == 1
    with pytest.raises(ValueError, match="broken file"):
        next(it)

    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    it = prefetch(endless(), depth=2)
    assert [next(it) for _ in range(5)] == [0, 1, 2, 3, 4]
    it.close()  # the producer stops and releases its source
    assert closed.wait(2.0)
