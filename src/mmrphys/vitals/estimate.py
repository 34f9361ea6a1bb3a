"""The main job: video (file or frames) -> HR, RR, waveforms, HRV, quality (one streaming pass).

video -> faces -> tensors -> model | unsupervised method -> signals -> :class:`Result`.

Streaming: frames are decoded one at a time; what is kept per frame is its timestamp, the face box
and the mean skin colour (3 floats), plus, for a neural model, only the last window of crops at the
model's resolution. Variable frame rate is handled by resampling to a uniform grid with the real
per-frame timestamps.
"""

from __future__ import annotations

import math
import sys
import threading
import warnings as _warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError, InputError, WeightsError
from mmrphys.faces import FaceDetector, FaceTracker
from mmrphys.tensors import OverlapAdd, StreamResampler, WindowStream
from mmrphys.video import VideoReader, as_lazy_frame, frames_from_array, open_video, uniform_grid
from mmrphys.vitals.result import Result

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
#: Rate bands and windows of the rolling rates.
ROLLING_HR_WINDOW_S = 10.0
ROLLING_RR_WINDOW_S = 20.0
ROLLING_STEP_S = 1.0
#: Neural models were trained at 30 fps; videos far from it are resampled to it.
MODEL_FS = 30.0
MODEL_WINDOW_FRAMES = 181
#: Overlap of consecutive model windows. With 50 % and the Hann taper every output comes mostly
#: from the middle of a window (where the model has context on both sides) and is the average of two
#: windows. Inference is ~95 % of the model path's CPU time and scales with 1 / (1 - overlap); 25 %
#: was tried (-30 % time) and moved subject 4 of ubfc-rppg-mini from +0.7 to -13.6 bpm with the
#: authors' SCAMPS model (0 % and 50 %: +0.7), so the cheaper setting was not adopted.
MODEL_WINDOW_OVERLAP = 0.5
MODEL_BATCH = 2
#: Crop size for the colour traces of the unsupervised methods (area-averaged, so the skin mean
#: is that of the full-resolution crop up to rounding).
TRACE_CROP = 72


@dataclass
class _ModelSpec:
    net: object
    name: str
    size: int
    tasks: tuple
    multiple: int
    weights: str


#: ``mmrphys.signals.unsupervised.METHODS``' names, spelled out so that checking ``method`` does not
#: import SciPy before decoding starts (tested equal).
UNSUPERVISED_METHODS = ("green", "ica", "chrom", "pos", "lgi", "pbv", "omit")


def _unsupervised_method(name: str):
    from mmrphys.signals.unsupervised import get_method

    return get_method(name)


def _warm_imports() -> None:
    """Import the signal stage (SciPy: ~1 s of CPU) in a background thread while frames decode."""

    def work() -> None:
        try:
            import mmrphys.signals.hrv  # noqa: F401
            import mmrphys.signals.quality  # noqa: F401
            import mmrphys.signals.rates  # noqa: F401
            import mmrphys.signals.respiration  # noqa: F401
            from mmrphys.signals.unsupervised import METHODS  # noqa: F401
        except Exception:  # pragma: no cover - the main thread imports again and reports
            pass

    threading.Thread(target=work, name="mmrphys-imports", daemon=True).start()


def _lazy_frames(reader):
    """``(lazy frame, t)`` pairs: the reader's own (YUV crops, decoding in a thread) when it has them."""
    frames = getattr(reader, "frames", None)
    if callable(frames):
        return frames()
    return ((as_lazy_frame(f), t) for f, t in reader)


def _load_model(method: str, weights) -> _ModelSpec:
    import torch

    from mmrphys.models import checkpoints, list_models

    if weights is None:
        weights = "default"
    try:
        net = checkpoints.load_model(weights)
    except WeightsError:
        raise
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as err:  # unreadable / not a checkpoint
        why = f"{type(err).__name__}: {str(err)[:100]}"
        raise WeightsError(f"{weights}: unreadable weights ({why})") from None
    net.eval()
    name = type(net).__name__
    try:
        name, _ = checkpoints.model_name_and_kwargs(net)
    except Exception:
        pass
    if method not in ("mmrphys", "model") and method in list_models() and method != name:
        raise WeightsError(f"{weights}: weights are for {name!r}, not for the requested {method!r}")
    if method == "mmrphys" and not name.startswith("mmrphys"):
        raise WeightsError(f"{weights}: weights are for {name!r}, not an MMRPhys variant")
    in_ch = int(getattr(net, "in_channels", 3))
    if in_ch != 3:
        kind = {1: "thermal", 4: "RGB + thermal"}.get(in_ch, f"{in_ch}-channel")
        raise WeightsError(f"{weights}: weights are for {kind} input ({name}); this video is RGB: "
                           "use RGB weights (e.g. an MMRPhysLEF ..._RGBx180x72 checkpoint)")
    size = int(getattr(net, "input_size", 72))
    tasks = tuple(getattr(net, "tasks", ("bvp",)))
    multiple = int(getattr(net, "frame_multiple", 1))
    torch.set_grad_enabled(False)
    return _ModelSpec(_fast_path(net, name), name, size, tasks, multiple, str(weights))


def _fast_path(net, name: str):
    """The exact eager fast path of :mod:`mmrphys.models.fast_inference` for MMRPhys/FactorizePhys.

    Same outputs as the plain model (max |Δz| ~5e-6, tested) at ~1/3 of its CPU per window; no
    compilation, so no start-up cost. Other architectures run as they are. The process-wide malloc
    tuning (``retain_freed_memory``) is left to processes we own (the CLI): a library call must not
    change its host's allocator.
    """
    if not name.startswith(("mmrphys", "factorizephys")):
        return net
    from mmrphys.models.fast_inference import optimize

    return optimize(net, retain_memory=False)


class _ModelRunner:
    """Streams face crops through a model: uniform resampling, windows, batched inference, overlap-add."""

    def __init__(self, spec: _ModelSpec, fs: float, t0: float):
        self.spec = spec
        self.fs = fs
        win = MODEL_WINDOW_FRAMES
        win = (win - 1) // spec.multiple * spec.multiple + 1
        self.win = win
        self.stride = max(1, int(round((win - 1) * (1.0 - MODEL_WINDOW_OVERLAP))))
        min_frames = int(math.ceil(MIN_DURATION_S * fs))
        self.min_win = max(2 * spec.multiple + 1, min(win, min_frames))
        self.resampler = StreamResampler(fs, t0=t0, max_gap_s=0.5, dtype=np.uint8)
        self.acc = {t: OverlapAdd() for t in spec.tasks}
        self._stream: WindowStream | None = None
        self._k0 = 0
        self._last_k = None
        self._batch: list[tuple[int, np.ndarray]] = []
        self.n_windows = 0

    def _new_stream(self, k0: int) -> None:
        self._stream = WindowStream(self.win, self.stride, min_win=self.min_win, multiple=self.spec.multiple)
        self._k0 = k0

    def push(self, crop, t: float) -> None:
        if crop is None:
            self.gap()
            return
        for k, _tk, item in self.resampler.push(crop, t):
            if self._stream is None or self._last_k is None or k != self._last_k + 1:
                self._end_stream()
                self._new_stream(k)
            self._last_k = k
            for start, frames in self._stream.push(item):
                self._queue(self._k0 + start, frames)

    def gap(self) -> None:
        self._end_stream()
        self.resampler.reset()
        self._last_k = None

    def _end_stream(self) -> None:
        if self._stream is not None:
            for start, frames in self._stream.flush():
                self._queue(self._k0 + start, frames)
            self._stream = None
        self._run_batch()

    def _queue(self, k_start: int, frames: np.ndarray) -> None:
        if self._batch and len(frames) != len(self._batch[0][1]):
            self._run_batch()
        self._batch.append((k_start, frames))
        if len(self._batch) >= MODEL_BATCH:
            self._run_batch()

    def _run_batch(self) -> None:
        if not self._batch:
            return
        import torch

        x = np.stack([f for _, f in self._batch])  # (B, T+1, S, S, 3) uint8
        x = torch.from_numpy(x).permute(0, 4, 1, 2, 3).float().div_(255.0)
        out = self.spec.net(x)
        for task in self.spec.tasks:
            y = out[task].detach().cpu().numpy()
            for (k_start, _), yi in zip(self._batch, y):
                self.acc[task].add(k_start + 1, yi)
        self.n_windows += len(self._batch)
        self._batch = []

    def finish(self, n: int) -> dict[str, np.ndarray]:
        self._end_stream()
        out = {}
        for task, acc in self.acc.items():
            y = acc.result(n)
            # a segment's first frame has no output of its own (the model differences frames)
            first = np.flatnonzero(np.isnan(y[:-1]) & ~np.isnan(y[1:])) + 1
            y[first - 1] = y[first]
            out[task] = y
        return out


def _segments(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """[start, end) runs of True in ``mask`` at least ``min_len`` long."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_len]


def _fmt_t(t: float) -> str:
    return f"{t:.1f} s"


def _open_source(source, fps, timestamps, max_side):
    if isinstance(source, (VideoReader,)) or hasattr(source, "__iter__") and hasattr(source, "fps") \
            and not isinstance(source, np.ndarray):
        return source
    if isinstance(source, (str, Path)):
        if timestamps is not None:
            raise ConfigError("timestamps= is for frame arrays; a video file has its own timestamps")
        return open_video(source, fps=fps, max_side=max_side)
    if isinstance(source, (np.ndarray, list, tuple)):
        return frames_from_array(source, fps=fps, timestamps=timestamps)
    raise InputError(f"source must be a video path or a frame array, got {type(source).__name__}")


def _progress(total, enabled):
    if enabled is None:
        enabled = sys.stderr.isatty()
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, unit="frame", disable=not enabled, leave=False, dynamic_ncols=True)


def estimate(source, method: str | None = None, weights=None, fps: float | None = None, timestamps=None,
             *, preset: str = "mmrphys", progress: bool | None = None, detect_every_s: float = DETECT_EVERY_S,
             max_side: int = PROCESS_MAX_SIDE) -> Result:
    """Heart rate, breathing rate, waveforms, HRV and quality from a face video.

    ``source``: a video path, or a uint8 frame array (N, H, W, 3) with ``fps`` or per-frame
    ``timestamps`` (seconds). ``method``: an unsupervised method (``pos`` — the default —,
    ``chrom``, ``green``, ``ica``, ``lgi``, ``pbv``, ``omit``) or ``mmrphys`` (or another
    registered model name) with ``weights`` = a weights file (ours or the authors' ``.pth``) or a
    shipped weights name. ``fps`` overrides a file's frame rate. ``progress``: a progress bar
    (default: when stderr is a terminal). Raises :class:`InputError` / :class:`WeightsError` with a
    one-line reason; a face seen in only part of the clip gives a partial result with warnings.
    """
    method = (method or DEFAULT_METHOD).lower()
    spec = None
    if method not in UNSUPERVISED_METHODS:
        from mmrphys.models import list_models

        if method not in ("mmrphys", "model") and method not in list_models():
            raise ConfigError(f"unknown method {method!r}; choose mmrphys (with --weights) or one of "
                              f"{', '.join(sorted(UNSUPERVISED_METHODS))}")
        spec = _load_model(method, weights)
    elif weights is not None:
        raise ConfigError(f"method {method!r} takes no weights; use --method mmrphys with --weights")

    reader = _open_source(source, fps, timestamps, max_side)
    _warm_imports()
    warnings: list[str] = []
    src_fps = float(reader.fps)
    if getattr(reader, "is_grayscale", False) and method != "green" and spec is None:
        raise InputError(f"{reader.path or 'frames'}: grayscale video has no colour, which {method.upper()} "
                         "needs; use --method green (intensity) or a colour video")
    if getattr(reader, "is_grayscale", False):
        warnings.append("grayscale video: only intensity changes are available, expect lower accuracy")
    if getattr(reader, "bit_depth", 8) > 8:
        warnings.append(f"{reader.bit_depth}-bit video converted to 8 bits per channel")
    if reader.n_frames is not None and reader.n_frames / src_fps < MIN_DURATION_S * 0.5:
        raise InputError(f"{reader.path or 'frames'}: clip is {reader.n_frames / src_fps:.1f} s long; "
                         f"the minimum is {MIN_DURATION_S:.0f} s")

    # grid rate: the video's own for classic methods; for a model, 30 fps unless the video is near it
    if spec is not None and not 25.0 <= src_fps <= 35.0:
        fs = MODEL_FS
        warnings.append(f"video at {src_fps:.1f} fps resampled to {MODEL_FS:.0f} fps for the model")
    else:
        fs = src_fps
    every_n = max(1, int(round(detect_every_s * src_fps)))
    tracker = FaceTracker(FaceDetector(), every_n=every_n, max_gap=int(round(MAX_GAP_S * src_fps)))
    runner = _ModelRunner(spec, fs, 0.0) if spec is not None else None
    crop_size = spec.size if spec is not None else TRACE_CROP

    from mmrphys.faces.skin import skin_mean_rgb

    ts: list[float] = []
    rgb: list[np.ndarray] = []
    has_box: list[bool] = []
    report_frame = report_box = None
    nan3 = np.full(3, np.nan)
    bar = _progress(reader.n_frames, progress)
    report_at = int(0.3 * (reader.n_frames or 0))  # a frame from inside the clip for the report
    index = 0
    try:
        for index, (frame, t) in enumerate(_lazy_frames(reader)):
            box = tracker.update(frame, index)
            ts.append(t)
            has_box.append(box is not None)
            if box is None:
                rgb.append(nan3)
                if runner is not None:
                    runner.push(None, t)
            else:
                crop = frame.crop_rgb(box, crop_size)
                if runner is not None:
                    rgb.append(nan3)  # a model takes the crops; no colour trace needed
                    runner.push(crop, t)
                else:
                    rgb.append(skin_mean_rgb(crop))
                if report_frame is None or index == report_at:
                    report_frame, report_box = _thumbnail(frame, box)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    warnings.extend(getattr(reader, "warnings", []))
    n = len(ts)
    name = str(getattr(reader, "path", None) or "frames")
    t_src = np.asarray(ts)
    duration = float(t_src[-1] + 1.0 / src_fps) if n else 0.0
    if duration < MIN_DURATION_S:
        raise InputError(f"{name}: clip is {duration:.1f} s long ({n} frames); the minimum is "
                         f"{MIN_DURATION_S:.0f} s")
    valid_src = np.asarray(has_box, dtype=bool)
    for start, end, bridged in tracker.finish(n):
        if not bridged:
            valid_src[start:end] = False  # a long gap starts at the first failed detection
            warnings.append(f"no face from {_fmt_t(t_src[start])} to {_fmt_t(t_src[min(end, n) - 1])}")
    face_fraction = float(valid_src.mean())
    if not valid_src.any():
        raise InputError(f"{name}: no face found in {n} frames ({tracker.n_detections} detection attempts)")

    # uniform grid
    grid = uniform_grid(0.0, t_src[-1], fs)
    valid = np.interp(grid, t_src, valid_src.astype(float)) > 0.999
    min_len = int(math.ceil(MIN_DURATION_S * fs))
    model_out = runner.finish(grid.size) if runner is not None else {}
    if spec is not None:
        bvp_all = model_out.get("bvp", np.full(grid.size, np.nan))
        valid &= np.isfinite(bvp_all)
    segs = _segments(valid, min_len)
    if not segs:
        raise InputError(f"{name}: the face is visible for at most "
                         f"{_longest_run(valid) / fs:.1f} s at a time; the minimum is {MIN_DURATION_S:.0f} s")
    if face_fraction < 0.999:
        warnings.append(f"face found in {100 * face_fraction:.0f}% of frames; rates use the longest face "
                        f"segment ({_fmt_t(grid[max(segs, key=lambda s: s[1] - s[0])[0]])} onwards)")

    rgb_arr = np.asarray(rgb, dtype=float)
    bvp = np.full(grid.size, np.nan)
    rsp = np.full(grid.size, np.nan)
    rsp_from_model = spec is not None and "rsp" in spec.tasks
    for s, e in segs:
        if spec is None:
            seg_rgb = np.stack([np.interp(grid[s:e], t_src[valid_src], rgb_arr[valid_src, c])
                                for c in range(3)], 1)
            bvp[s:e] = _bvp_unsupervised(_unsupervised_method(method), seg_rgb, fs)
        else:
            bvp[s:e] = model_out["bvp"][s:e]
        if rsp_from_model:
            rsp[s:e] = model_out["rsp"][s:e]
        elif e - s >= int(RR_MIN_DURATION_S * fs):
            rsp[s:e] = _rsp_from_bvp(bvp[s:e], fs)

    main = max(segs, key=lambda se: se[1] - se[0])
    hr, rr, hrv, quality, rolling = _rates(bvp, rsp, fs, main, segs, grid, preset, warnings)
    quality["face_detected_fraction"] = face_fraction
    quality["warnings"] = warnings
    model_info = None
    if spec is not None:
        model_info = {"name": spec.name, "weights": spec.weights, "input_size": spec.size,
                      "window_frames": runner.win, "windows": runner.n_windows, "tasks": list(spec.tasks)}
    extra = {"n_frames": n, "source_fps": src_fps,
             "face": {"detector": tracker.detector.backend, "detect_every_frames": every_n,
                      "detections": tracker.n_detections, "found": tracker.n_found,
                      "segments_s": [[float(grid[s]), float(grid[e - 1])] for s, e in segs]}}
    return Result(
        heart_rate_bpm=hr, respiratory_rate_bpm=rr, fps=fs, duration_s=duration, timestamps_s=grid,
        bvp=bvp, rsp=rsp if np.isfinite(rsp).any() else None, rolling=rolling, hrv=hrv, quality=quality,
        method=method if spec is None else "mmrphys" if method == "model" else method, model=model_info,
        source=None if getattr(reader, "path", None) is None else str(reader.path), extra=extra,
        report_frame=report_frame, report_box=report_box, analysis_span=main,
        rsp_source=("model RSP output" if rsp_from_model else "BVP modulation (AM/FM/baseline)"),
    )


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


def _longest_run(mask: np.ndarray) -> int:
    segs = _segments(mask, 1)
    return max((e - s for s, e in segs), default=0)


def _bvp_unsupervised(fn, rgb: np.ndarray, fs: float) -> np.ndarray:
    return np.asarray(fn(rgb, fs), dtype=float)


def _rsp_from_bvp(bvp: np.ndarray, fs: float) -> np.ndarray:
    from mmrphys.signals import respiration_from_bvp

    try:
        return respiration_from_bvp(bvp, fs)
    except InputError:
        return np.full(bvp.size, np.nan)


def _rates(bvp, rsp, fs, main, segs, grid, preset, warnings):
    from mmrphys.signals import heart_rate, hrv_from_bvp, respiratory_rate, rolling_rates, signal_quality

    s, e = main
    seg_bvp = bvp[s:e]
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        hr = heart_rate(seg_bvp, fs, preset=preset)
        quality = {"signal_quality": signal_quality(seg_bvp, fs, kind="hr", preset=preset)}
        rr = float("nan")
        seg_rsp = rsp[s:e]
        if np.isfinite(seg_rsp).all() and (e - s) >= int(RR_MIN_DURATION_S * fs):
            rr = respiratory_rate(seg_rsp, fs, preset=preset)
            quality["respiration_quality"] = signal_quality(seg_rsp, fs, kind="rr", preset=preset)
        elif (e - s) < int(RR_MIN_DURATION_S * fs):
            warnings.append(f"respiratory rate needs at least {RR_MIN_DURATION_S:.0f} s of face video; "
                            f"the longest face segment is {(e - s) / fs:.1f} s")
        else:
            warnings.append("respiratory rate not estimable: too few clear beats for BVP modulation")
        try:
            hrv = hrv_from_bvp(seg_bvp, fs, preset=preset)
        except InputError as err:
            hrv = {"reason": str(err)}
        rolling = []
        for a, b in segs:
            th, rh = rolling_rates(bvp[a:b], fs, ROLLING_HR_WINDOW_S, ROLLING_STEP_S, kind="hr",
                                   preset=preset)
            if np.isfinite(rsp[a:b]).all() and b - a >= int(ROLLING_RR_WINDOW_S * fs):
                tr, rrr = rolling_rates(rsp[a:b], fs, ROLLING_RR_WINDOW_S, ROLLING_STEP_S, kind="rr",
                                        preset=preset)
                rr_at = np.full(th.size, np.nan)
                if tr.size:
                    rr_at = np.interp(th, tr, rrr, left=np.nan, right=np.nan)
            else:
                rr_at = np.full(th.size, np.nan)
            for ti, hi, ri in zip(th, rh, rr_at):
                rolling.append({"time_s": float(grid[a] + ti), "heart_rate_bpm": float(hi),
                                "respiratory_rate_bpm": float(ri)})
    if not math.isfinite(hr):
        warnings.append("heart rate not estimable: the pulse signal is flat")
    return float(hr), float(rr), hrv, quality, rolling
