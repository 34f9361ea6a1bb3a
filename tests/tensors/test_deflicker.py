"""Key-frame flicker: the GOP phase from key-frame flags, and its removal from a crop stream."""

from __future__ import annotations

import numpy as np

from mmrphys.tensors import GopDeflicker, GopPhase
from mmrphys.tensors.deflicker import GOP_CONFIRMATIONS, MAX_GOP_FRAMES


def _phases(flags):
    gop = GopPhase()
    return [gop.push(f) for f in flags]


def test_phase_needs_confirmed_fixed_intervals():
    flags = [k % 12 == 0 for k in range(12 * 6)]
    out = _phases(flags)
    # the period is known once GOP_CONFIRMATIONS equal intervals were seen: from key frame 3 on
    first = 12 * GOP_CONFIRMATIONS
    assert all(p is None for _, p in out[:first])
    assert out[first] == (0, 12) and out[first + 5] == (5, 12) and out[-1] == (11, 12)


def test_irregular_long_or_broken_gops_give_no_period():
    irregular = np.zeros(200, bool)
    irregular[[0, 10, 25, 31, 50, 90, 97]] = True
    assert all(p is None for _, p in _phases(irregular))
    long = [k % (MAX_GOP_FRAMES + 1) == 0 for k in range((MAX_GOP_FRAMES + 1) * 5)]
    assert all(p is None for _, p in _phases(long))
    # a key frame that comes late: phases past the period are not corrected until it is confirmed again
    flags = [k % 12 == 0 for k in range(12 * 5)] + [False] * 20
    assert all(p is None for _, p in _phases(flags)[60 + 12:])


def _run(crops, gop):
    gop_phase, defl = GopPhase(), GopDeflicker()
    return np.stack([defl(c, *gop_phase.push(k % gop == 0)) for k, c in enumerate(crops)])


def _crops(level, pattern):
    """(n, 4, 4, 3) uint8 crops: a common ``level`` per frame plus ``pattern`` (n,) times a
    checkerboard of +1/-1 (a spatial pattern whose mean over the crop is 0), rounded."""
    board = np.where((np.arange(4)[:, None] + np.arange(4)[None, :]) % 2 == 0, 1.0, -1.0)
    x = level[:, None, None, None] + pattern[:, None, None, None] * board[None, :, :, None]
    return np.clip(np.rint(x * np.ones((1, 4, 4, 3))), 0, 255).astype(np.uint8)


def test_flicker_pattern_removed_and_pulse_kept_even_at_the_key_frame_rate():
    fs, gop, n = 20.0, 12, 1200
    t = np.arange(n) / fs
    saw = np.array([6.0 - k for k in range(gop)])[np.arange(n) % gop]  # a sawtooth from each key frame
    tail = slice(400, None)  # after the running means have settled (16 GOPs of memory)
    for f_hz in (1.99, fs / gop):  # 119 bpm, and exactly the key-frame rate (100 bpm)
        pulse = 3.0 * np.sin(2 * np.pi * f_hz * t)
        crops = _crops(120.0 + pulse, saw)
        out = _run(crops, gop)
        assert out.dtype == np.uint8 and out.shape == crops.shape
        for y_pix, sign in ((out[:, 0, 0, 1], 1), (out[:, 0, 1, 1], -1)):
            y = y_pix.astype(float)
            # each pixel is left with the pulse (+ the common level): the 11-level swing of the
            # pattern is gone. The residual is rounding (0.5 level twice) plus, at the key-frame
            # rate, nothing else, because the pattern's mean over the crop is 0 and that mean is kept
            resid = y[tail] - y[tail].mean() - pulse[tail]
            assert np.abs(resid).max() < 1.5, (f_hz, sign)
            before = crops[tail, 0, 0 if sign > 0 else 1, 1].astype(float)
            assert np.abs(before - before.mean() - pulse[tail]).max() > 5  # the pattern was there
        # the crop's mean colour is never changed (up to rounding): a pulse at the key-frame rate stays
        np.testing.assert_allclose(out.mean(axis=(1, 2, 3)), crops.mean(axis=(1, 2, 3)), atol=0.5)
    # no period: untouched
    first = crops[0]
    assert GopDeflicker()(first, 0, None) is first
