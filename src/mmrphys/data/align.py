"""Put label signals on the video's frames: by timestamps, or by index resampling (the toolbox's way).

``index`` stretches the whole label trace linearly over the frames, assuming both span exactly the
same interval (rPPG-Toolbox ``resample_ppg``); it is the compatible default. ``time`` interpolates
the label at each frame's timestamp, using the label's own sample times (or its rate), both counted
from the start of the recording; it is right when the dataset stores timestamps (PURE, COHFACE,
UBFC-rPPG row 3, generic CSVs).
"""

from __future__ import annotations

import numpy as np

from mmrphys.data.labels import Signal
from mmrphys.errors import ConfigError, InputError

METHODS = ("index", "time")
# How far a label may be from the video before the recording is refused rather than stretched or
# held: max(5 % of the video's duration, 1 s). 1 s absorbs a sensor that starts or stops a beat
# apart from the camera (PURE's oximeter starts ~20 ms early); 5 % absorbs clock drift on long
# recordings. A label cut to 188 of 1368 samples (6.3 of 45.6 s) is far outside and is refused.
LENGTH_TOL_FRACTION = 0.05
LENGTH_TOL_S = 1.0


def resample_to_frames(values, n_frames: int) -> np.ndarray:
    """Linear resample of ``values`` by sample index onto ``n_frames`` points (rPPG-Toolbox rule)."""
    x = np.asarray(values, dtype=float).ravel()
    if x.size == 0:
        raise InputError("label signal is empty")
    if x.size == n_frames:
        return x.copy()
    if x.size == 1:
        return np.full(n_frames, x[0])
    return np.interp(np.linspace(1, x.size, n_frames), np.linspace(1, x.size, x.size), x)


def interp_at_times(sig: Signal, frame_times, name: str = "label") -> np.ndarray:
    """Label values at ``frame_times`` (s) by linear interpolation on the label's own times."""
    t_sig = sig.times()
    if t_sig is None:
        raise ConfigError(
            f"{name}: time alignment needs label timestamps or a sample rate; use method='index'"
        )
    ft = np.asarray(frame_times, dtype=float)
    v = np.asarray(sig.values, dtype=float).ravel()
    if t_sig.shape != v.shape:
        raise InputError(f"{name}: {v.size} values but {t_sig.size} timestamps")
    order = np.argsort(t_sig, kind="stable")
    t_sig, v = t_sig[order], v[order]
    overlap = min(ft[-1], t_sig[-1]) - max(ft[0], t_sig[0])
    span = max(ft[-1] - ft[0], 1e-9)
    if overlap < 0.5 * span:
        raise InputError(
            f"{name}: label times ({t_sig[0]:.2f}-{t_sig[-1]:.2f} s) cover less than half of "
            f"the frames ({ft[0]:.2f}-{ft[-1]:.2f} s); check the timestamps or use method='index'"
        )
    return np.interp(ft, t_sig, v)  # holds the end values outside the label's span


def align_signal(
    sig: Signal, n_frames: int, frame_times=None, method: str = "index", name: str = "label"
) -> np.ndarray:
    """One label signal on ``n_frames`` frames by ``method`` ("index" or "time")."""
    if method not in METHODS:
        raise ConfigError(f"unknown alignment {method!r}; choose from {', '.join(METHODS)}")
    if method == "time":
        if frame_times is None or len(frame_times) != n_frames:
            raise ConfigError(f"{name}: time alignment needs one timestamp per frame ({n_frames})")
        if sig.t is None and sig.fs is None:  # frame-synchronous trace: same thing as by index
            return resample_to_frames(sig.values, n_frames)
        return interp_at_times(sig, frame_times, name)
    return resample_to_frames(sig.values, n_frames)


def align_labels(
    labels: dict[str, Signal], n_frames: int, frame_times=None, method: str = "index"
) -> dict[str, np.ndarray]:
    """Every label signal on the frames: ``{name: (n_frames,) float64}``."""
    return {k: align_signal(s, n_frames, frame_times, method, name=k) for k, s in labels.items()}


def length_tolerance_s(video_s: float) -> float:
    """The largest label/video mismatch accepted, in seconds: max(5 % of the video, 1 s)."""
    return max(LENGTH_TOL_FRACTION * float(video_s), LENGTH_TOL_S)


def check_lengths(
    labels: dict[str, Signal],
    n_frames: int,
    frame_times=None,
    method: str = "index",
    fps: float | None = None,
    source: str | None = None,
) -> None:
    """Raise :class:`InputError` (naming ``source``, the label and both durations) when a label does
    not match the video within :func:`length_tolerance_s`.

    The video lasts ``n_frames`` frame periods (the median interval of ``frame_times``, else
    ``1 / fps``). ``index`` alignment stretches a label over the video, so its duration must equal
    the video's: from its timestamps or rate, or for a label with neither ("one sample per frame")
    its sample count in frame periods. ``time`` alignment reads the label at each frame's time, so
    the label must cover the frames: the part of the video outside the label's times must be within
    the tolerance. Labels that span the video at an unknown rate (``Signal.spans_video``) cannot be
    checked.
    """
    ft = None if frame_times is None else np.asarray(frame_times, dtype=float)
    if ft is not None and ft.size >= 2:
        period = float(np.median(np.diff(ft)))
    elif fps:
        period = 1.0 / float(fps)
    else:
        raise ConfigError("check_lengths needs the frame times or the frame rate")
    video_s = n_frames * period
    tol = length_tolerance_s(video_s)
    for name, sig in labels.items():
        m = len(sig.values)
        t_sig = sig.times()
        what = f"{source}: label '{name}'" if source else f"label '{name}'"
        if m == 0:
            raise InputError(f"{what} is empty")
        if sig.spans_video and t_sig is None:
            continue
        if method == "time" and t_sig is not None and ft is not None and ft.size:
            uncovered = max(0.0, float(t_sig.min() - ft[0])) + max(0.0, float(ft[-1] - t_sig.max()))
            if uncovered > tol:
                raise InputError(
                    f"{what} covers {t_sig.min():.2f}-{t_sig.max():.2f} s but the video "
                    f"{ft[0]:.2f}-{ft[-1]:.2f} s ({n_frames} frames): {uncovered:.2f} s without label, "
                    f"more than the tolerance of {tol:.2f} s (max 5 %, 1 s)"
                )
            continue
        if t_sig is not None:
            label_s = float(t_sig.max() - t_sig.min()) * m / (m - 1) if m > 1 else 0.0
        else:
            label_s = m * period
        if abs(label_s - video_s) > tol:
            raise InputError(
                f"{what} lasts {label_s:.2f} s ({m} samples) but the video {video_s:.2f} s "
                f"({n_frames} frames): more than the tolerance of {tol:.2f} s (max 5 %, 1 s) apart"
            )


def standardize(x) -> tuple[np.ndarray, float, float]:
    """Z-score over the whole recording (toolbox ``LABEL_TYPE: Standardized``): ``(z, mean, std)``."""
    x = np.asarray(x, dtype=float)
    mean, std = float(np.mean(x)), float(np.std(x))
    z = (x - mean) / std if std > 0 else np.zeros_like(x)
    return np.nan_to_num(z), mean, std
