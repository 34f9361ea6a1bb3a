"""Frame arrays and lists: dtype rules, shapes and timestamps, each refused with one line naming the
first bad frame or index."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import InputError
from mmrphys.video import frames_from_array


def _frames(n=12, h=48, w=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def _first(video) -> np.ndarray:
    return next(iter(video))[0]


def test_float_frames_0_255_and_0_1_map_to_the_same_levels():
    u8 = _frames()
    as_255 = frames_from_array(u8.astype(np.float32), fps=30)
    as_1 = frames_from_array(u8 / 255.0, fps=30)
    assert np.array_equal(_first(as_255), u8[0])
    assert np.array_equal(_first(as_1), u8[0])  # x / 255 * 255 + 0.5 rounds back exactly
    assert np.array_equal(_first(frames_from_array(u8.astype(np.int16), fps=30)), u8[0])


@pytest.mark.parametrize("make, message", [
    (lambda f: _scale(f * 1.0, 5, 2.0), "frame 5 has values up to"),
    (lambda f: _put(f / 255.0, 3, -0.5), "frame 3 has negative values"),
    (lambda f: _put(f.astype(np.float32), 4, np.nan), "frame 4 holds NaN"),
    (lambda f: _put(f.astype(np.float64), 2, np.inf), "frame 2 holds NaN or infinite"),
    (lambda f: _put(f.astype(np.int16), 6, -1), "frame 6 has negative values"),
    (lambda f: _put(f.astype(np.int32), 9, 1000), "frame 9 has values up to 1000"),
    (lambda f: f > 100, "got dtype bool"),
    (lambda f: f.astype(np.complex64), "got dtype complex64"),
])
def test_bad_values_name_the_first_bad_frame(make, message):
    with pytest.raises(InputError, match=message) as info:
        frames_from_array(make(_frames()), fps=30)
    assert "\n" not in str(info.value)


def _scale(arr, i, factor):
    arr[i] *= factor
    return arr


def _put(arr, i, value):
    arr[i, 0, 0, 0] = value
    return arr


def test_ragged_list_names_the_frame():
    frames = list(_frames())
    frames[7] = frames[7][:-2]
    with pytest.raises(InputError, match=r"frames\[7\] has shape \(46, 64, 3\), frames\[0\] has \(48, 64"):
        frames_from_array(frames, fps=30)
    with pytest.raises(InputError, match=r"frames\[1\] is a str"):
        frames_from_array([_frames()[0], "x"], fps=30)
    v = frames_from_array(list(_frames()), fps=30)
    assert v.n_frames == 12


@pytest.mark.parametrize("make, message", [
    (lambda f: f[0, ..., 0], "got shape"),
    (lambda f: f[0], "look like one"),
    (lambda f: np.concatenate([f, f[..., :1]], -1), "4 channels"),
    (lambda f: f.transpose(0, 3, 1, 2), "channels-first"),
    (lambda f: f[..., :2], "got shape"),
    (lambda f: f[None], "got shape"),
    (lambda f: f[:0], "no frames"),
    (lambda f: f[:, :1, :1], "too small"),
])
def test_bad_shapes(make, message):
    with pytest.raises(InputError, match=message):
        frames_from_array(make(_frames()), fps=30)
    with pytest.raises(InputError, match="empty list"):
        frames_from_array([], fps=30)


@pytest.mark.parametrize("make, message", [
    (lambda t: np.r_[t[:5], t[3], t[6:]], r"timestamps\[5\] = 0.1 follows"),
    (lambda t: t[:-1], "one value per frame"),
    (lambda t: np.r_[t[:3], np.nan, t[4:]], r"timestamps\[3\] is nan"),
    (lambda t: t * 1000, "must be in seconds"),
    (lambda t: t[:, None], "one value per frame"),
    (lambda t: ["a"] * len(t), "must be numbers"),
])
def test_bad_timestamps(make, message):
    t = np.arange(12) / 30
    with pytest.raises(InputError, match=message):
        frames_from_array(_frames(), timestamps=make(t))


def test_fps_rules():
    for bad in (0, -30, float("nan"), float("inf"), 1e9, "abc"):
        with pytest.raises(InputError, match="fps must be"):
            frames_from_array(_frames(), fps=bad)
    with pytest.raises(InputError, match="disagrees"):
        frames_from_array(_frames(), fps=60, timestamps=np.arange(12) / 30)
    assert frames_from_array(_frames(), fps=30.5, timestamps=np.arange(12) / 30).fps == 30.5


def test_grey_pictures_given_as_rgb_are_flagged():
    grey = np.repeat(_frames()[..., :1], 3, -1)
    v = frames_from_array(grey, fps=30)
    assert v.is_grayscale and "grey (R = G = B)" in v.warnings[0]
    assert not frames_from_array(_frames(), fps=30).is_grayscale
