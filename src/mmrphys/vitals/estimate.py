"""The main job: video (file or frames) -> HR, RR, waveforms, HRV, quality (one streaming pass).

decode -> track -> estimator -> signals -> :class:`Result`:

1. decode: frames one at a time with their real timestamps (:mod:`mmrphys.video`);
2. track: one face box per frame, detection every second, short gaps bridged (:mod:`mmrphys.faces`);
3. estimator: each face crop goes to an :class:`~mmrphys.vitals.estimators.Estimator` (an
   unsupervised method on the mean skin colour, or a neural model on windows of crops), which
   returns waveforms on a uniform time grid (variable frame rate handled with the timestamps);
4. signals: rates, rolling rates, HRV, quality and confidence from the longest face segment
   (:mod:`mmrphys.signals`);
5. result: :class:`Result` (JSON contract, CSV, PNG).

Streaming: per frame only its timestamp, the face flag and what the estimator keeps (3 floats, or
the last window of model-sized crops) are held.
"""

from __future__ import annotations

import math
import sys
import threading
import warnings as _warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError, InputError
from mmrphys.faces import FaceDetector, FaceTracker
from mmrphys.video import VideoReader, as_lazy_frame, frames_from_array, open_video, uniform_grid
from mmrphys.vitals.estimators import UNSUPERVISED_METHODS, Estimator, make_estimator
from mmrphys.vitals.result import Result

__all__ = ["DEFAULT_METHOD", "MIN_DURATION_S", "UNSUPERVISED_METHODS", "estimate"]

#: The method used when none is given. A single constant: the training issue switches it to
#: "mmrphys" once the project's own weights are measured better than POS.
DEFAULT_METHOD = "pos"
#: Shortest usable face segment (and clip): one 180-frame model window at 30 fps.
MIN_DURATION_S = 6.0
#: Shortest segment a respiratory rate is reported for (3+ breaths at the slowest rate in band).
RR_MIN_DURATION_S = 15.0
#: Frames are downscaled during decoding to this longest side: crops end up at <= 72 px, so
#: 4K input costs no accuracy but would cost memory and time.
PROCESS_MAX_SIDE = 1280
#: Face detection interval and the longest gap bridged with the last box.
DETECT_EVERY_S = 1.0
MAX_GAP_S = 1.5
#: Windows of the rolling rates.
ROLLING_HR_WINDOW_S = 10.0
ROLLING_RR_WINDOW_S = 20.0
ROLLING_STEP_S = 1.0


def estimate(source, method: str | None = None, weights=None, fps: float | None = None, timestamps=None,
             *, preset: str = "mmrphys", progress: bool | None = None, detect_every_s: float = DETECT_EVERY_S,
             max_side: int = PROCESS_MAX_SIDE, backend: str = "eager", estimator: Estimator | None = None
             ) -> Result:
    """Heart rate, breathing rate, waveforms, HRV, quality and confidence from a face video.

    ``source``: a video path, or a uint8 frame array (N, H, W, 3) with ``fps`` or per-frame
    ``timestamps`` (seconds). ``method``: an unsupervised method (``pos`` — the default —,
    ``chrom``, ``green``, ``ica``, ``lgi``, ``pbv``, ``omit``) or ``mmrphys`` (any neural model:
    MMRPhys, FactorizePhys, PhysNet, EfficientPhys; the architecture is read from the weights) with
    ``weights`` = a weights file (ours or the authors' ``.pth``) or a shipped weights name;
    ``backend``: ``"eager"`` or ``"compiled"`` (see :func:`mmrphys.models.prepare`). ``fps``
    overrides a file's frame rate. ``progress``: a progress bar (default: when stderr is a
    terminal). ``estimator``: a ready :class:`Estimator` instead of ``method``/``weights`` (e.g. the
    thermal one, :func:`mmrphys.vitals.thermal.estimate_thermal`). A source may bring its own face
    detector (``source.face_detector``). Raises :class:`InputError` / :class:`WeightsError` /
    :class:`ConfigError` with a one-line reason; a face seen in only part of the clip gives a partial
    result with warnings.
    """
    if estimator is None:
        estimator = make_estimator((method or DEFAULT_METHOD).lower(), weights, backend, MIN_DURATION_S)
    reader = _open_source(source, fps, timestamps, max_side)
    _warm_imports()
    warnings = _check_reader(reader, estimator)
    src_fps = float(reader.fps)
    fs = estimator.start(src_fps, warnings)
    track = _decode_and_track(reader, estimator, detect_every_s, progress)
    warnings.extend(getattr(reader, "warnings", []))
    grid, face_segments, face_fraction = _face_segments(track, src_fps, fs, warnings)
    waves = estimator.finish(grid, face_segments)
    return _signals_to_result(waves, grid, fs, track, estimator, reader, preset, face_fraction, warnings)


# ----------------------------------------------------------------------------- decode and track
@dataclass
class _Track:
    """What the decode/track loop keeps: per-frame times and face flags, the tracker, a report frame."""

    name: str
    tracker: FaceTracker
    detect_every: int
    times: list[float] = field(default_factory=list)
    has_box: list[bool] = field(default_factory=list)
    report_frame: np.ndarray | None = None
    report_box: tuple | None = None
    duration_s: float = 0.0


def _open_source(source, fps, timestamps, max_side):
    if isinstance(source, VideoReader) or (hasattr(source, "__iter__") and hasattr(source, "fps")
                                           and not isinstance(source, np.ndarray)):
        return source
    if isinstance(source, (str, Path)):
        if timestamps is not None:
            raise ConfigError("timestamps= is for frame arrays; a video file has its own timestamps")
        return open_video(source, fps=fps, max_side=max_side)
    if isinstance(source, (np.ndarray, list, tuple)):
        return frames_from_array(source, fps=fps, timestamps=timestamps)
    raise InputError(f"source must be a video path or a frame array, got {type(source).__name__}")


def _check_reader(reader, estimator: Estimator) -> list[str]:
    """Refuse what cannot work before decoding; the warnings known at this point."""
    name = reader.path or "frames"
    warnings: list[str] = []
    grey = getattr(reader, "is_grayscale", False)
    if grey and estimator.needs_colour:
        raise InputError(f"{name}: grayscale video has no colour, which {estimator.method.upper()} "
                         "needs; use --method green (intensity) or a colour video")
    if grey:
        warnings.append("grayscale video: only intensity changes are available, expect lower accuracy")
    if getattr(reader, "bit_depth", 8) > 8:
        warnings.append(f"{reader.bit_depth}-bit video converted to 8 bits per channel")
    if getattr(reader, "timestamps_guessed", False) and not any(
            "timestamp" in w for w in getattr(reader, "warnings", [])):  # the reader may say it itself
        warnings.append("frame times are guessed from the frame rate (the file stores no timestamps): "
                        "rates are only as right as that rate")
    fps = float(reader.fps)
    if reader.n_frames is not None and reader.n_frames / fps < MIN_DURATION_S * 0.5:
        raise InputError(f"{name}: clip is {reader.n_frames / fps:.1f} s long; the minimum is "
                         f"{MIN_DURATION_S:.0f} s")
    return warnings


def _warm_imports() -> None:
    """Import the signal stage (SciPy: ~1 s of CPU) in a background thread while frames decode."""

    def work() -> None:
        try:
            import mmrphys.signals.hrv  # noqa: F401
            import mmrphys.signals.quality  # noqa: F401
            import mmrphys.signals.rates  # noqa: F401
            import mmrphys.signals.respiration  # noqa: F401
            from mmrphys.signals.unsupervised import METHODS  # noqa: F401
        except ImportError:  # pragma: no cover - the main thread imports them again and reports
            return

    threading.Thread(target=work, name="mmrphys-imports", daemon=True).start()


def _lazy_frames(reader):
    """``(lazy frame, t)`` pairs: the reader's own (YUV crops, decoding in a thread) when it has them."""
    frames = getattr(reader, "frames", None)
    if callable(frames):
        return frames()
    return ((as_lazy_frame(f), t) for f, t in reader)


def _progress(total, enabled):
    if enabled is None:
        enabled = sys.stderr.isatty()
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=not enabled, leave=False, dynamic_ncols=True)


def _decode_and_track(reader, estimator: Estimator, detect_every_s: float, progress) -> _Track:
    src_fps = float(reader.fps)
    every_n = max(1, int(round(detect_every_s * src_fps)))
    detector = getattr(reader, "face_detector", None) or FaceDetector()  # a source may bring its own
    tracker = FaceTracker(detector, every_n=every_n, max_gap=int(round(MAX_GAP_S * src_fps)))
    track = _Track(str(getattr(reader, "path", None) or "frames"), tracker, every_n)
    report_at = int(0.3 * (reader.n_frames or 0))  # a frame from inside the clip for the report
    with _progress(reader.n_frames, progress) as bar:
        for index, (frame, t) in enumerate(_lazy_frames(reader)):
            box = tracker.update(frame, index)
            track.times.append(t)
            track.has_box.append(box is not None)
            if box is None:
                estimator.gap(t)
            else:
                estimator.push(frame.crop_rgb(box, estimator.crop_size), t)
                if track.report_frame is None or index == report_at:
                    track.report_frame, track.report_box = _thumbnail(frame, box)
            bar.update(1)
    return track


def _thumbnail(lazy_frame, box) -> tuple[np.ndarray, tuple]:
    """A copy of the frame at most 480 px on its long side, with ``box`` scaled to it."""
    import cv2

    frame = lazy_frame.rgb()
    to_rgb = frame.shape[1] / lazy_frame.shape[1]  # the RGB image may be downscaled (max_side)
    s = min(1.0, 480 / max(frame.shape[:2]))
    if s < 1.0:
        frame = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)),
                           interpolation=cv2.INTER_AREA)
    return frame.copy(), tuple(float(v) * s * to_rgb for v in box)


def _face_segments(track: _Track, src_fps: float, fs: float, warnings: list[str]):
    """The uniform grid, the face segments on it (>= MIN_DURATION_S) and the face fraction."""
    n = len(track.times)
    t_src = np.asarray(track.times)
    duration = float(t_src[-1] + 1.0 / src_fps) if n else 0.0
    if duration < MIN_DURATION_S:
        raise InputError(f"{track.name}: clip is {duration:.1f} s long ({n} frames); the minimum is "
                         f"{MIN_DURATION_S:.0f} s")
    valid_src = np.asarray(track.has_box, dtype=bool)
    for start, end, bridged in track.tracker.finish(n):
        if not bridged:
            valid_src[start:end] = False  # a long gap starts at the first failed detection
            warnings.append(f"no face from {_fmt_t(t_src[start])} to {_fmt_t(t_src[min(end, n) - 1])}")
    if not valid_src.any():
        raise InputError(f"{track.name}: no face found in {n} frames "
                         f"({track.tracker.n_detections} detection attempts)")
    grid = uniform_grid(0.0, t_src[-1], fs)
    valid = np.interp(grid, t_src, valid_src.astype(float)) > 0.999
    track.duration_s = duration
    return grid, _segments(valid, _min_len(fs)), float(valid_src.mean())


def _min_len(fs: float) -> int:
    return int(math.ceil(MIN_DURATION_S * fs))


def _segments(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """[start, end) runs of True in ``mask`` at least ``min_len`` long."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_len]


def _fmt_t(t: float) -> str:
    return f"{t:.1f} s"


# ----------------------------------------------------------------------------- signals -> result
def _signals_to_result(waves, grid, fs, track: _Track, estimator: Estimator, reader, preset,
                       face_fraction, warnings) -> Result:
    bvp = waves["bvp"]
    segs = _segments(np.isfinite(bvp), _min_len(fs))
    if not segs:
        raise InputError(f"{track.name}: the face is visible for at most "
                         f"{_longest_run(np.isfinite(bvp)) / fs:.1f} s at a time; the minimum is "
                         f"{MIN_DURATION_S:.0f} s")
    main = max(segs, key=lambda se: se[1] - se[0])
    if face_fraction < 0.999:
        warnings.append(f"face found in {100 * face_fraction:.0f}% of frames; rates use the longest face "
                        f"segment ({_fmt_t(grid[main[0]])} onwards)")
    rsp_from_model = "rsp" in waves
    rsp = waves["rsp"] if rsp_from_model else _rsp_from_bvp(bvp, segs, fs)
    hr, rr, hrv, quality, rolling, confidence = _rates(bvp, rsp, fs, main, segs, grid, preset, warnings,
                                                       rsp_from_model)
    quality["face_detected_fraction"] = face_fraction
    quality["warnings"] = warnings
    extra = {"n_frames": len(track.times), "source_fps": float(reader.fps),
             "face": {"detector": track.tracker.detector.backend, "detect_every_frames": track.detect_every,
                      "detections": track.tracker.n_detections, "found": track.tracker.n_found,
                      "segments_s": [[float(grid[s]), float(grid[e - 1])] for s, e in segs]}}
    return Result(
        heart_rate_bpm=hr, respiratory_rate_bpm=rr, fps=fs, duration_s=track.duration_s, timestamps_s=grid,
        bvp=bvp, rsp=rsp if np.isfinite(rsp).any() else None, rolling=rolling, hrv=hrv, quality=quality,
        method=estimator.method, model=estimator.describe(),
        source=None if getattr(reader, "path", None) is None else str(reader.path), extra=extra,
        report_frame=track.report_frame, report_box=track.report_box, analysis_span=main,
        rsp_source=("model RSP output" if rsp_from_model else "BVP modulation (AM/FM/baseline)"),
        confidence=confidence,
    )


def _longest_run(mask: np.ndarray) -> int:
    return max((e - s for s, e in _segments(mask, 1)), default=0)


def _rsp_from_bvp(bvp: np.ndarray, segs, fs: float) -> np.ndarray:
    """Respiration from the pulse's modulation on each segment long enough for a breathing rate."""
    from mmrphys.signals import respiration_from_bvp

    rsp = np.full(bvp.size, np.nan)
    for s, e in segs:
        if e - s >= int(RR_MIN_DURATION_S * fs):
            try:
                rsp[s:e] = respiration_from_bvp(bvp[s:e], fs)
            except InputError:
                pass  # too few clear beats: this segment has no respiration (warned by _rates)
    return rsp


def _rates(bvp, rsp, fs, main, segs, grid, preset, warnings, rsp_from_model):
    from mmrphys.signals import heart_rate, hrv_from_bvp, respiratory_rate, rolling_rates, signal_quality
    from mmrphys.signals.quality import confidence, confidence_warning

    s, e = main
    seg_bvp = bvp[s:e]
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        hr = heart_rate(seg_bvp, fs, preset=preset)
        quality = {"signal_quality": signal_quality(seg_bvp, fs, kind="hr", preset=preset)}
        rr = float("nan")
        seg_rsp = rsp[s:e]
        long_enough = (e - s) >= int(RR_MIN_DURATION_S * fs)
        if np.isfinite(seg_rsp).all() and long_enough:
            rr = respiratory_rate(seg_rsp, fs, preset=preset)
            quality["respiration_quality"] = signal_quality(seg_rsp, fs, kind="rr", preset=preset)
        elif not long_enough:
            warnings.append(f"respiratory rate needs at least {RR_MIN_DURATION_S:.0f} s of face video; "
                            f"the longest face segment is {(e - s) / fs:.1f} s")
        else:
            warnings.append("respiratory rate not estimable: too few clear beats for BVP modulation")
        try:
            hrv = hrv_from_bvp(seg_bvp, fs, preset=preset)
            # the mean of the beat intervals is not the headline (spectral) HR: named so in the JSON
            hrv["mean_hr_from_beats_bpm"] = hrv.pop("hr_bpm")
        except InputError as err:
            hrv = {"reason": str(err)}
        rolling = []
        for a, b in segs:
            th, rh = rolling_rates(bvp[a:b], fs, ROLLING_HR_WINDOW_S, ROLLING_STEP_S, kind="hr",
                                   preset=preset)
            rr_at = np.full(th.size, np.nan)
            if np.isfinite(rsp[a:b]).all() and b - a >= int(ROLLING_RR_WINDOW_S * fs):
                tr, rrr = rolling_rates(rsp[a:b], fs, ROLLING_RR_WINDOW_S, ROLLING_STEP_S, kind="rr",
                                        preset=preset)
                if tr.size:
                    rr_at = np.interp(th, tr, rrr, left=np.nan, right=np.nan)
            for ti, hi, ri in zip(th, rh, rr_at):
                rolling.append({"time_s": float(grid[a] + ti), "heart_rate_bpm": float(hi),
                                "respiratory_rate_bpm": float(ri)})
        trust = {"heart_rate": confidence(seg_bvp, fs, hr, "hr", preset) if math.isfinite(hr) else 0.0,
                 "respiratory_rate": confidence(seg_rsp, fs, rr, "rr", preset) if math.isfinite(rr) else None}
        if trust["respiratory_rate"] is not None and not rsp_from_model:
            # a breathing rate read from the pulse's modulation is no surer than the pulse itself
            trust["respiratory_rate"] = min(trust["respiratory_rate"], trust["heart_rate"])
    if not math.isfinite(hr):
        warnings.append("heart rate not estimable: the pulse signal is flat")
    for vital, kind in (("heart_rate", "hr"), ("respiratory_rate", "rr")):
        low = None if trust[vital] is None else confidence_warning(trust[vital], kind)
        if low:
            warnings.append(low)
    return float(hr), float(rr), hrv, quality, rolling, trust
