"""Trust reporting: a 0-1 confidence per vital in the result and its JSON, a warning below the
documented threshold, and HRV's beat-based mean HR named apart from the headline HR."""

from __future__ import annotations

import json

import numpy as np
import pytest

import mmrphys
from mmrphys.signals.quality import CONFIDENCE_THRESHOLD, confidence, confidence_warning, rate_agreement
from mmrphys.synth import Effects, draw_face, physiology, render_frames

FS = 30.0


def _pulse(hr_bpm: float, seconds: float = 30.0, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * FS)) / FS
    rng = np.random.default_rng(seed)
    pulse = np.sin(2 * np.pi * hr_bpm / 60 * t) + 0.3 * np.sin(4 * np.pi * hr_bpm / 60 * t)
    return pulse + noise * rng.normal(size=t.size)


def test_confidence_separates_a_clean_pulse_from_noise():
    assert confidence(_pulse(72), FS, 72.0) > 0.85
    assert confidence(_pulse(72, noise=0.5), FS, 72.0) > 0.5
    noise = np.random.default_rng(1).normal(size=900)
    assert confidence(noise, FS, 72.0) < CONFIDENCE_THRESHOLD
    assert confidence(np.zeros(900), FS, 72.0) == 0.0


def test_agreement_counts_rolling_windows_near_the_rate():
    x = np.concatenate([_pulse(60, 15), _pulse(100, 15)])  # the rate jumps half way
    assert rate_agreement(_pulse(72), FS, 72.0) == 1.0
    assert 0.2 < rate_agreement(x, FS, 60.0) < 0.8
    assert rate_agreement(_pulse(72), FS, 110.0) == 0.0
    assert rate_agreement(_pulse(72), FS, float("nan")) == 0.0


def test_warning_text_and_threshold():
    expected = f"heart rate unreliable: confidence 0.12 < {CONFIDENCE_THRESHOLD:.2f}"
    assert confidence_warning(0.12, "hr") == expected
    assert confidence_warning(0.05, "rr").startswith("respiratory rate unreliable: confidence 0.05")
    assert confidence_warning(CONFIDENCE_THRESHOLD, "hr") is None


def _frames(amplitude: float, noise: float, hr: float = 78, seconds: float = 20, seed: int = 3):
    scene, phys = draw_face(160, 120, seed=seed), physiology(hr, 15, seconds, FS, seed=seed)
    fx = Effects(pulse_amplitude=amplitude, noise=noise)
    return np.stack([f for f, _ in render_frames(scene, phys, fx, seed=seed)])


def test_result_and_json_carry_confidence(tmp_path):
    res = mmrphys.estimate(_frames(0.012, 2.0), fps=FS, progress=False)
    assert abs(res.heart_rate_bpm - 78) <= 2
    assert set(res.confidence) == {"heart_rate", "respiratory_rate"}
    assert res.confidence["heart_rate"] > 0.7
    assert not any("unreliable" in w for w in res.warnings)
    d = json.loads(res.write_json(tmp_path / "r.json").read_text())
    assert d["confidence"]["heart_rate"] == pytest.approx(res.confidence["heart_rate"])
    # HRV's mean of the beat intervals is named as such, apart from the headline (spectral) HR
    assert "hr_bpm" not in d["hrv"] and abs(d["hrv"]["mean_hr_from_beats_bpm"] - 78) < 5


def test_a_pulse_free_clip_is_flagged():
    res = mmrphys.estimate(_frames(0.0, 4.0), fps=FS, method="pos", progress=False)
    assert res.confidence["heart_rate"] < CONFIDENCE_THRESHOLD  # measured 0.12
    assert any(w.startswith("heart rate unreliable: confidence") for w in res.warnings)
    # the breathing rate comes from that pulse's modulation: no surer than it
    assert res.confidence["respiratory_rate"] <= res.confidence["heart_rate"]


@pytest.mark.realdata
def test_green_on_ubfc_subject3_is_flagged(ubfc_mini):
    """The issue's case: GREEN on subject3 reports ~68 bpm (truth 88.6) at signal quality 0.01."""
    res = mmrphys.estimate(ubfc_mini / "subject3" / "vid.mp4", method="green", progress=False)
    assert abs(res.heart_rate_bpm - 88.6) > 10 and res.quality["signal_quality"] < 0.05
    assert res.confidence["heart_rate"] < 0.1
    assert any(w.startswith("heart rate unreliable") for w in res.warnings)
