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


def test_flicker_removed_and_pulse_kept():
    fs, gop, n = 20.0, 12, 1200
    t = np.arange(n) / fs
    pulse = 3.0 * np.sin(2 * np.pi * 1.99 * t)  # 119 bpm, not a harmonic of the GOP's 1.67 Hz
    flicker = np.array([6.0 - k for k in range(gop)])  # a sawtooth from each key frame: 6 .. -5 levels
    level = 120.0 + pulse + flicker[np.arange(n) % gop]
    crops = np.clip(np.rint(level), 0, 255).astype(np.uint8)[:, None, None, None]
    crops = crops * np.ones((1, 3, 3, 3), np.uint8)
    gop_phase, defl = GopPhase(), GopDeflicker()
    out = np.stack([defl(c, *gop_phase.push(k % gop == 0)) for k, c in enumerate(crops)])
    assert out.dtype == np.uint8 and out.shape == crops.shape
    y = out[:, 1, 1, 0].astype(float)
    tail = slice(400, None)  # after the running means have settled (16 GOPs of memory)
    # what is left is the pulse (+ the common level): the flicker's 11-level swing is gone; the residual
    # is rounding (0.5 levels twice) plus the pulse leaking into the per-phase means (~1/16 of it)
    resid = y[tail] - y[tail].mean() - pulse[tail]
    assert np.abs(resid).max() < 1.5
    before = crops[tail, 1, 1, 0].astype(float)
    assert np.abs(before - before.mean() - pulse[tail]).max() > 5  # the flicker was there
    # no period: untouched
    first = crops[0]
    assert GopDeflicker()(first, 0, None) is first
