"""Windows of T+1 frames, overlap-add stitching and streaming resampling."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import InputError
from mmrphys.tensors import StreamResampler, WindowStream, overlap_add, window_starts


def test_window_starts_cover_the_end():
    assert window_starts(10, 4, 3) == [0, 3, 6]
    assert window_starts(11, 4, 3) == [0, 3, 6, 7]
    assert window_starts(3, 4, 2) == []


def test_overlap_add_reconstructs_a_waveform():
    fs, n, win = 30.0, 400, 61
    x = np.sin(2 * np.pi * 1.3 * np.arange(n) / fs)
    starts = window_starts(n, win, 30)
    outs = [5 * x[s + 1: s + win] + 3 for s in starts]  # per-window scale/offset: normalised away
    y = overlap_add(outs, starts, n)
    assert np.isfinite(y).all()
    assert np.corrcoef(x, y)[0, 1] > 0.99


def test_window_stream_matches_window_starts():
    ws = WindowStream(win=5, stride=2)
    got = []
    for i in range(12):
        got += [s for s, w in ws.push(np.full((2, 2), i))]
    got += [s for s, w in ws.flush()]
    assert got == window_starts(12, 5, 2)
    short = WindowStream(win=9, stride=4, min_win=4, multiple=4)
    for i in range(7):
        assert short.push(i) == []
    (start, frames), = short.flush()
    assert len(frames) == 5 and start == 2  # 7 frames -> T = 4 (multiple of 4), the last 5


def test_resampler_exact_on_grid_and_interpolates_vfr():
    r = StreamResampler(fs=10)
    out = []
    for k in range(5):
        out += r.push(np.array([k], np.float32), k / 10)
    assert [k for k, _, _ in out] == [0, 1, 2, 3, 4]
    assert [float(v[0]) for _, _, v in out] == [0, 1, 2, 3, 4]
    r = StreamResampler(fs=10)
    ts = [0.0, 0.13, 0.31, 0.4]
    out = []
    for t in ts:
        out += r.push(np.array([t * 100], np.float32), t)  # value = 100 t: linear, so exact
    assert [round(tk, 6) for _, tk, _ in out] == [0.0, 0.1, 0.2, 0.3, 0.4]
    np.testing.assert_allclose([v[0] for _, _, v in out], [0, 10, 20, 30, 40], atol=1e-3)


def test_resampler_does_not_bridge_long_gaps():
    r = StreamResampler(fs=10, max_gap_s=0.5)
    out = r.push(np.zeros(1), 0.0) + r.push(np.ones(1), 2.0)
    assert [k for k, _, _ in out] == [0, 20]
    with pytest.raises(InputError):
        WindowStream(win=1, stride=1)
