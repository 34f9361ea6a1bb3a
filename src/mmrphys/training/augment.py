"""Training-time augmentation of real recordings: random windows at random playback speed.

A recording (its face crops ``(N, S, S, C)`` and labels at the frame rate) yields windows of T
frames. Each window is drawn by :func:`draw_window` from a seeded generator, so an item is a pure
function of ``(seed, epoch, index)`` and a resumed run sees the same data:

- **speed**: the window covers ``T * speed`` source frames, resampled to T frames by linear
  interpolation between neighbouring frames; the labels are resampled the same way, so the pulse
  (and breathing) rate of the window is the recording's rate times ``speed``. With
  ``target_hr_bpm`` the speed is chosen so that the window's heart rate is drawn uniformly from that
  range (clipped to ``speed``), which spreads a few subjects' rates over the whole band;
- **crop**: a random square sub-crop (``crop_scale`` of the side) at a random offset, resized back
  to S (the face moves and scales inside the crop as it does under tracking), and a mirror image;
- **photometric**: per-channel gain (white balance), global gain, slow illumination drift, sensor
  noise (Gaussian, in 0-255 levels).

Everything is numpy on uint8/float32 crops at model resolution: a 72×72×181 window costs a few ms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from mmrphys.errors import ConfigError


@dataclass(frozen=True)
class AugmentSpec:
    """What :func:`draw_window` may change. Ranges are ``(low, high)``; zero widths switch a part off."""

    speed: tuple[float, float] = (1.0, 1.0)
    target_hr_bpm: tuple[float, float] | None = None
    keep_speed_p: float = 0.0  # probability of playing the window at its own speed
    crop_scale: tuple[float, float] = (1.0, 1.0)
    flip: bool = False
    channel_gain: float = 0.0  # std of the per-channel gain around 1
    gain: tuple[float, float] = (1.0, 1.0)
    drift: float = 0.0  # peak relative amplitude of a slow (0.02-0.2 Hz) illumination change
    noise: tuple[float, float] = (0.0, 0.0)  # std of additive Gaussian noise, 0-255 levels

    @classmethod
    def from_config(cls, raw: dict | None) -> AugmentSpec:
        """From a config mapping (``data.train[i].augment``); unknown keys and bad ranges raise."""
        raw = dict(raw or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"augment.{unknown[0]}: unknown key (allowed: {', '.join(sorted(known))})")
        out = {}
        for key, value in raw.items():
            default = cls.__dataclass_fields__[key].default
            if isinstance(default, tuple) or key == "target_hr_bpm":
                if value is None and key == "target_hr_bpm":
                    out[key] = None
                    continue
                if not (isinstance(value, (list, tuple)) and len(value) == 2):
                    raise ConfigError(f"augment.{key}: expected [low, high], got {value!r}")
                lo, hi = (float(v) for v in value)
                if not (math.isfinite(lo) and math.isfinite(hi) and 0 <= lo <= hi):
                    raise ConfigError(f"augment.{key}: expected 0 <= low <= high, got {value!r}")
                out[key] = (lo, hi)
            elif isinstance(default, bool):
                out[key] = bool(value)
            else:
                v = float(value)
                if not (math.isfinite(v) and v >= 0):
                    raise ConfigError(f"augment.{key}: expected a number >= 0, got {value!r}")
                out[key] = v
        spec = cls(**out)
        if spec.speed[0] <= 0:
            raise ConfigError(f"augment.speed: must be > 0, got {list(spec.speed)}")
        if spec.crop_scale[1] > 1.0 or spec.crop_scale[0] <= 0:
            raise ConfigError(
                f"augment.crop_scale: expected 0 < low <= high <= 1, got {list(spec.crop_scale)}"
            )
        return spec


def choose_speed(spec: AugmentSpec, hr_bpm: float, rng: np.random.Generator) -> float:
    """Playback speed of one window for a recording whose heart rate is ``hr_bpm``."""
    lo, hi = spec.speed
    if hi <= lo or rng.random() < spec.keep_speed_p:
        return float(np.clip(1.0, lo, hi))
    if spec.target_hr_bpm is not None and math.isfinite(hr_bpm) and hr_bpm > 0:
        target = rng.uniform(*spec.target_hr_bpm)
        return float(np.clip(target / hr_bpm, lo, hi))
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def resample_window(
    frames: np.ndarray, labels: dict[str, np.ndarray], start: float, speed: float, n_out: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``n_out`` frames at source positions ``start + j * speed`` (linear interpolation) and the labels
    at the same positions. ``frames``: (N, S, S, C) uint8/float; returns float32 frames."""
    pos = start + speed * np.arange(n_out)
    if pos[0] < 0 or pos[-1] > len(frames) - 1 + 1e-9:
        raise ValueError(f"window [{pos[0]:.1f}, {pos[-1]:.1f}] outside 0..{len(frames) - 1}")
    i0 = np.minimum(np.floor(pos).astype(int), len(frames) - 1)
    i1 = np.minimum(i0 + 1, len(frames) - 1)
    w = (pos - i0).astype(np.float32)[:, None, None, None]
    out = frames[i0].astype(np.float32)
    if np.any(w > 0):
        out += w * (frames[i1].astype(np.float32) - out)
    src = np.arange(len(frames), dtype=np.float64)
    labs = {
        k: np.interp(pos, src, np.asarray(v, dtype=np.float64)).astype(np.float32) for k, v in labels.items()
    }
    return out, labs


def spatial(frames: np.ndarray, spec: AugmentSpec, rng: np.random.Generator) -> np.ndarray:
    """Random square sub-crop resized back to the input size, and an optional mirror image."""
    n, h, w, _ = frames.shape
    lo, hi = spec.crop_scale
    if hi < 1.0 or lo < 1.0:
        scale = rng.uniform(lo, hi)
        side = max(2, int(round(min(h, w) * scale)))
        y0 = int(rng.integers(0, h - side + 1))
        x0 = int(rng.integers(0, w - side + 1))
        sub = frames[:, y0 : y0 + side, x0 : x0 + side]
        interp = cv2.INTER_AREA if side > h else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(f, (w, h), interpolation=interp) for f in sub])
        if frames.ndim == 3:  # one channel: cv2 drops the axis
            frames = frames[..., None]
    if spec.flip and rng.random() < 0.5:
        frames = frames[:, :, ::-1]
    return np.ascontiguousarray(frames, dtype=np.float32)


def photometric(frames: np.ndarray, spec: AugmentSpec, fs: float, rng: np.random.Generator) -> np.ndarray:
    """Channel gains, global gain, slow illumination drift and sensor noise, clipped to 0..255."""
    n, _, _, c = frames.shape
    g = np.ones(c, dtype=np.float32)
    if spec.channel_gain > 0:
        g = rng.normal(1.0, spec.channel_gain, c).clip(0.5, 1.5).astype(np.float32)
    g *= np.float32(rng.uniform(*spec.gain))
    gain_t = np.ones(n, dtype=np.float32)
    if spec.drift > 0:
        f_hz = rng.uniform(0.02, 0.2)
        t = np.arange(n) / fs
        gain_t += np.float32(spec.drift * rng.uniform(0, 1)) * np.sin(
            2 * np.pi * f_hz * t + rng.uniform(0, 2 * np.pi)
        ).astype(np.float32)
    frames = frames * (gain_t[:, None, None, None] * g[None, None, None, :])
    sigma = rng.uniform(*spec.noise)
    if sigma > 0:
        frames += rng.standard_normal(frames.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(frames, 0.0, 255.0, out=frames)


def draw_window(
    frames: np.ndarray,
    labels: dict[str, np.ndarray],
    hr_bpm: float,
    n_out: int,
    fs: float,
    spec: AugmentSpec,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray], float]:
    """One augmented window of ``n_out`` frames from a recording; returns (frames float32 (n_out, S, S, C),
    labels, speed). The speed is lowered when the recording is too short for it."""
    speed = choose_speed(spec, hr_bpm, rng)
    span = speed * (n_out - 1)
    if span > len(frames) - 1:
        speed = (len(frames) - 1) / (n_out - 1)
        span = speed * (n_out - 1)
    start = rng.uniform(0.0, max(0.0, len(frames) - 1 - span))
    x, labs = resample_window(frames, labels, start, speed, n_out)
    x = spatial(x, spec, rng)
    x = photometric(x, spec, fs, rng)
    return x, labs, speed
