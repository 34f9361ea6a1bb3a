"""Small synthetic signals with known truth, shared by the signal tests."""

from __future__ import annotations

import numpy as np


def pulse(hr_bpm: float = 72.0, fs: float = 30.0, duration_s: float = 30.0, noise: float = 0.3,
          seed: int = 0, phase: float = 0.0) -> np.ndarray:
    """A PPG-like pulse: fundamental + two harmonics + white noise + slow baseline."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * fs))) / fs
    w = 2 * np.pi * hr_bpm / 60.0
    x = np.sin(w * t + phase) + 0.5 * np.sin(2 * w * t + phase + 0.9) + 0.2 * np.sin(3 * w * t + 0.4)
    baseline = 0.8 * np.sin(2 * np.pi * 0.05 * t)
    return x + baseline + noise * rng.standard_normal(t.size)


def breathing(rr_per_min: float = 15.0, fs: float = 30.0, duration_s: float = 60.0, noise: float = 0.2,
              seed: int = 0) -> np.ndarray:
    """A respiration trace: slightly asymmetric breathing cycle + noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * fs))) / fs
    w = 2 * np.pi * rr_per_min / 60.0
    return np.sin(w * t) + 0.25 * np.sin(2 * w * t + 0.5) + noise * rng.standard_normal(t.size)


SKIN_RGB = np.array([180.0, 130.0, 110.0])
# normalised blood-volume-pulse signature of skin (de Haan & van Leest 2014): G strongest, then B, then R
PULSE_DIRECTION = np.array([0.33, 0.77, 0.53])


def rgb_trace(hr_bpm: float = 75.0, fs: float = 30.0, duration_s: float = 30.0, seed: int = 0,
              pulse_amp: float = 0.004, noise: float = 0.3) -> np.ndarray:
    """(T, 3) mean-RGB: skin tone × illumination drift × (1 + pulse along the PBV direction) + noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(duration_s * fs))) / fs
    w = 2 * np.pi * hr_bpm / 60.0
    p = np.sin(w * t) + 0.3 * np.sin(2 * w * t + 0.7)
    illum = 1 + 0.05 * np.sin(2 * np.pi * 0.07 * t) + 0.03 * t / duration_s
    rgb = illum[:, None] * SKIN_RGB[None, :] * (1 + pulse_amp * PULSE_DIRECTION[None, :] * p[:, None])
    return rgb + noise * rng.standard_normal(rgb.shape)
