"""Key-frame artefact: periodic key frames found, their frequencies notched, the pulse kept."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.signals.filters import keyframe_frequencies_hz, notch
from mmrphys.signals.rates import heart_rate

HR_BAND = (0.6, 3.3)


def test_fixed_gop_gives_its_frequency_and_harmonics_in_band():
    t = np.arange(100) * 12 / 20.0  # MPEG-4 Part 2 default: a key frame every 12 frames at 20 fps
    assert keyframe_frequencies_hz(t, HR_BAND) == pytest.approx([20 / 12])  # 100 bpm; 200 bpm is out
    t30 = np.arange(60) * 1.0  # GOP 30 at 30 fps: 60, 120, 180 bpm
    assert keyframe_frequencies_hz(t30, HR_BAND) == pytest.approx([1.0, 2.0, 3.0])


def test_long_or_irregular_key_frames_give_nothing():
    assert keyframe_frequencies_hz(np.arange(8) * 250 / 30.0, HR_BAND) == []  # x264's 250: 0.12 Hz
    rng = np.random.default_rng(0)
    scene_cuts = np.cumsum(rng.uniform(0.3, 1.5, 40))  # key frames at scene cuts
    assert keyframe_frequencies_hz(scene_cuts, HR_BAND) == []
    assert keyframe_frequencies_hz([0.0, 0.6, 1.2], HR_BAND) == []  # too few to call periodic


def test_notch_removes_the_artefact_and_keeps_the_pulse():
    fs, n = 30.0, 1800
    t = np.arange(n) / fs
    pulse = np.sin(2 * np.pi * 1.99 * t)  # 119.4 bpm
    artefact = 1.5 * np.sin(2 * np.pi * (20 / 12) * t)  # stronger, at 100 bpm
    x = pulse + artefact
    assert heart_rate(x, fs) == pytest.approx(100, abs=1)  # the artefact wins without the notch
    y = notch(x, fs, [20 / 12])
    assert heart_rate(y, fs) == pytest.approx(119.4, abs=0.5)
    # away from the notch (0.32 Hz from it, its width 0.05 Hz) the pulse passes, and the artefact
    # (1.5x the pulse) is gone: in the middle, away from the filter's edges, what is left follows the
    # pulse (correlation > 0.99) at its amplitude (within 5 %)
    mid = slice(300, -300)
    assert np.corrcoef(y[mid], pulse[mid])[0, 1] > 0.99
    assert np.std(y[mid]) == pytest.approx(np.std(pulse[mid]), rel=0.05)
    assert notch(x, fs, [20.0]).tolist() == pytest.approx(x.tolist())  # above Nyquist: skipped
