"""Key-frame flicker: the part of a crop stream that repeats with a compressed video's fixed GOP.

An encoder with a fixed GOP (MPEG-4 Part 2's default: a key frame every 12 frames) codes every key
frame afresh and the frames after it as predictions that drift, so the pixels of a face crop carry a
pattern that repeats every GOP. At 20 fps that is 100 bpm, inside the heart-rate band; a neural model
turns it into more than one spectral line. The mean crop at each position within the GOP (``phase``)
over many GOPs is that pattern plus the common level, and plus the pulse when the heart rate is a
multiple of the key-frame rate (60 or 120 bpm with a key frame every second, the most common GOP of
cameras and phones). Only the part of each phase's mean that varies across the crop is removed (its
mean over the crop's pixels is kept): the flicker is a spatial pattern of coding blocks, while a pulse
changes the whole skin alike, so it stays even at those rates.

Measured (``benchmarks/keyframes.py``; docs/main_job.md, "Key frames at the pulse rate"): removing
the whole per-phase mean (spatial mean included) and notching the key-frame lines out of the pulse
read a synthetic 60 bpm face coded with a key frame every 30 frames as 131.7 bpm; this reads it
within 0.3 bpm. On two COHFACE-like re-codings of UBFC the MAE moved 5.66 -> 6.52 and 10.07 -> 6.59.
"""

from __future__ import annotations

import numpy as np

#: GOPs (of at most this many frames) the flicker is removed for: longer ones put only faint
#: harmonics into the heart-rate band (x264's 250-frame default at 30 fps: 0.12 Hz).
MAX_GOP_FRAMES = 60
#: Key-frame intervals that must agree before the GOP counts as fixed.
GOP_CONFIRMATIONS = 3


class GopPhase:
    """Position of each frame within a fixed GOP, from the key-frame flags of the frames in order.

    ``push(is_key) -> (phase, period)``: ``period`` (frames) once the last ``GOP_CONFIRMATIONS``
    intervals between key frames were equal and at most ``MAX_GOP_FRAMES``, else None.
    """

    def __init__(self):
        self.index = -1
        self.last_key: int | None = None
        self.intervals: list[int] = []

    def push(self, is_key: bool) -> tuple[int, int | None]:
        self.index += 1
        if is_key:
            if self.last_key is not None:
                self.intervals = (self.intervals + [self.index - self.last_key])[-GOP_CONFIRMATIONS:]
            self.last_key = self.index
        if self.last_key is None:
            return 0, None
        phase = self.index - self.last_key
        recent = self.intervals
        fixed = len(recent) == GOP_CONFIRMATIONS and len(set(recent)) == 1 and recent[0] <= MAX_GOP_FRAMES
        return phase, (recent[0] if fixed and phase < recent[0] else None)


class GopDeflicker:
    """Removes the GOP-synchronous spatial pattern from a stream of uint8 (H, W, C) crops of one face.

    ``__call__(crop, phase, period)`` returns the crop corrected (uint8, same shape) once every phase
    has been seen ``warmup`` times, else unchanged. Each phase's mean is a running mean over the
    last ~``memory`` GOPs (an exponential average), so slow changes of the scene follow; what is
    subtracted is that mean minus the mean over phases, less its own mean over the crop (per channel),
    so the crop's mean colour is never changed.
    """

    def __init__(self, memory: int = 16, warmup: int = 2):
        self.alpha = 1.0 / memory
        self.warmup = warmup
        self.period: int | None = None
        self.profile: np.ndarray | None = None
        self.count: np.ndarray | None = None

    def __call__(self, crop: np.ndarray, phase: int, period: int | None) -> np.ndarray:
        if period is None or crop.dtype != np.uint8:
            return crop
        x = crop.astype(np.float32)
        if self.period != period or self.profile is None or self.profile.shape[1:] != x.shape:
            self.period = period
            self.profile = np.zeros((period, *x.shape), np.float32)
            self.count = np.zeros(period, np.int64)
        if self.count[phase] == 0:
            self.profile[phase] = x
        else:
            rate = np.float32(max(self.alpha, 1.0 / (self.count[phase] + 1)))  # a plain mean at first
            self.profile[phase] += rate * (x - self.profile[phase])
        self.count[phase] += 1
        if self.count.min() < self.warmup:
            return crop
        flicker = self.profile[phase] - self.profile.mean(axis=0)
        flicker -= flicker.reshape(-1, flicker.shape[-1]).mean(axis=0)  # keep the mean colour (pulse)
        return np.clip(np.rint(x - flicker), 0, 255).astype(np.uint8)
