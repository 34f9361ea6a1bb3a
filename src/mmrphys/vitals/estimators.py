"""Estimators: what turns a stream of face crops into waveforms on a uniform time grid.

The main job (:func:`mmrphys.vitals.estimate`) drives any :class:`Estimator` the same way::

    fs = est.start(src_fps, warnings)          # the grid rate it needs
    for each frame:  est.push(crop, t)  |  est.gap(t)     # crop: crop_size x crop_size uint8 RGB
    waves = est.finish(grid, segments)         # {"bvp": (n,), ["rsp": (n,)]}, NaN outside segments

A stream also asks, about once a second, for the waveforms of the last seconds of the current face
run (``est.recent(window_s)``: computed from what the estimator keeps, never from the whole
history). ``est.clone()`` gives a fresh estimator of the same kind for another face (a neural model
is shared, not copied). ``gap`` may be called once per run of frames without a face or on every such
frame: both give the same result.

Two implementations:

* :class:`TraceEstimator` — the classic unsupervised methods (POS, CHROM, ...): keeps the mean skin
  colour of each crop (3 floats per frame) and runs the method on each face segment's colour trace
  resampled to the grid.
* :class:`ModelEstimator` — a neural model of any architecture (MMRPhys, FactorizePhys, PhysNet,
  EfficientPhys): crops resampled onto the model's rate, windows of the model's length with 50 %
  overlap, batched through :func:`mmrphys.models.prepare`, overlap-added; the model's
  :class:`~mmrphys.models.InputSpec` sets crop size, window, frame multiple and pixel scale.

:func:`make_estimator` builds the one a method name asks for.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Protocol

import numpy as np

from mmrphys.errors import ConfigError, WeightsError

#: ``mmrphys.signals.unsupervised.METHODS``' names, spelled out so that checking ``method`` does not
#: import SciPy before decoding starts (tested equal).
UNSUPERVISED_METHODS = ("green", "ica", "chrom", "pos", "lgi", "pbv", "omit")
#: Crop size for the colour traces (area-averaged, so the skin mean is that of the full-resolution
#: crop up to rounding).
TRACE_CROP = 72
#: Overlap of consecutive model windows. With 50 % and the Hann taper every output comes mostly
#: from the middle of a window (where the model has context on both sides) and is the average of two
#: windows. Inference is ~95 % of the model path's CPU time and scales with 1 / (1 - overlap); 25 %
#: was tried (-30 % time) and moved subject 4 of ubfc-rppg-mini from +0.7 to -13.6 bpm with the
#: authors' SCAMPS model (0 % and 50 %: +0.7), so the cheaper setting was not adopted.
MODEL_WINDOW_OVERLAP = 0.5
#: Windows per model call. One: per window the CPU time is the same as with 2 (1 thread, eager
#: MMRPhys-LEF: 247 vs 242 ms, within the noise) and the largest activation is half the size
#: (~60-100 MB less peak memory for a 72x72 model).
MODEL_BATCH = 1
#: Inference backends of the main job: "auto" (weights that ship a runtime twin of their pulse branch,
#: the default weights, run it through onnxruntime when only the pulse is wanted (``rr_from="pulse"``):
#: no torch in the process, the same outputs to float32 rounding; everything else "eager"), and the
#: torch backends of :func:`mmrphys.models.prepare`.
BACKENDS = ("auto", "eager", "compiled")
#: Videos whose frame rate is within this range run at their own rate; others are resampled to
#: the model's (``InputSpec.fs``: every released model was trained at MODEL_FS).
MODEL_NATIVE_FPS = (25.0, 35.0)
MODEL_FS = 30.0


class Estimator(Protocol):
    """See the module docstring. ``method`` names it in the result; ``crop_size`` is the face crop
    side it wants; ``needs_colour`` is True where a grayscale video cannot work."""

    method: str
    crop_size: int
    needs_colour: bool

    def start(self, src_fps: float, warnings: list[str]) -> float: ...

    def push(self, crop: np.ndarray, t: float) -> None: ...

    def gap(self, t: float) -> None: ...

    def finish(self, grid: np.ndarray, segments: list[tuple[int, int]]) -> dict[str, np.ndarray]: ...

    def describe(self) -> dict | None: ...

    def recent(self, window_s: float, min_s: float = 0.0) -> tuple[float, dict[str, np.ndarray]] | None: ...

    def clone(self) -> Estimator: ...


def _run_start(t: np.ndarray, window_s: float, fs: float) -> int:
    """Index of the first of the last ``window_s`` seconds of samples at times ``t`` (ascending)."""
    return int(np.searchsorted(t, t[-1] - window_s + 0.5 / fs))


#: Where an RGB model's breathing rate comes from. "pulse": the breathing modulation (amplitude,
#: baseline, rate) of a POS pulse computed from the plain mean colour of the central 7/9 of the
#: model's own crops; "model": the model's RSP output. Leave-subjects-out on the 8 shared UBFC
#: subjects against the contact PPG's modulation, the model's RSP output read 7.8 /min MAE and the
#: crop pulse's modulation 2.8 (a skin mask on the 9x9 crop: 5.2; the whole crop: 3.5); on the
#: synthetic breathing benchmark POS's modulation is within 1 /min where the RSP output misses slow
#: breathing (docs/main_job.md, "Respiration"). Thermal models keep their RSP output.
RR_SOURCES = ("pulse", "model")
DEFAULT_RR_FROM = "pulse"
#: The "pulse" trace leaves out this fraction of the crop's side at each edge (the central 7/9).
PULSE_CROP_BORDER = 1 / 9


class TraceEstimator:
    """An unsupervised method on the mean skin colour of each crop (:mod:`mmrphys.signals.unsupervised`)."""

    crop_size = TRACE_CROP

    def __init__(self, method: str, min_skin_fraction: float = 0.05, skin_mask: bool = True):
        self.method = method
        self.needs_colour = method != "green"
        self.min_skin_fraction = min_skin_fraction
        self.skin_mask = skin_mask  # False: the plain mean of the crop (a model's tiny crops: RR_SOURCES)
        self._t: list[float] = []
        self._rgb: list[np.ndarray] = []
        self._run = 0  # index of the current face run's first sample
        self.fs = float("nan")

    def clone(self) -> TraceEstimator:
        return TraceEstimator(self.method, self.min_skin_fraction, self.skin_mask)

    def start(self, src_fps: float, warnings: list[str]) -> float:
        self.fs = float(src_fps)
        return self.fs

    def push(self, crop: np.ndarray, t: float) -> None:
        from mmrphys.faces.skin import skin_mean_rgb

        self._t.append(t)
        if self.skin_mask:
            self._rgb.append(skin_mean_rgb(crop, self.min_skin_fraction))
        else:
            self._rgb.append(crop.reshape(-1, crop.shape[-1]).mean(axis=0))

    def gap(self, t: float) -> None:
        self._t.append(t)
        self._rgb.append(np.full(3, np.nan))
        self._run = len(self._t)

    def recent(self, window_s: float, min_s: float = 0.0) -> tuple[float, dict[str, np.ndarray]] | None:
        """``(t_end, {"bvp": x})``: the method on the last ``window_s`` seconds of the current face run,
        resampled to ``fs`` and ending at the run's last frame ``t_end`` (None while the run is shorter
        than ``min_s``)."""
        from mmrphys.signals.unsupervised import get_method

        if len(self._t) <= self._run + 1:
            return None
        first = max(self._run, len(self._t) - int(2 * window_s * self.fs) - 2)  # the tail only
        t = np.asarray(self._t[first:])
        a = first + _run_start(t, window_s, self.fs)
        t, rgb = np.asarray(self._t[a:]), np.asarray(self._rgb[a:], dtype=float)
        seen = np.isfinite(rgb[:, 0])
        if seen.sum() < 2 or t[-1] - t[0] + 1.0 / self.fs < min_s - 1e-6:
            return None
        grid = t[-1] - np.arange(int(np.floor((t[-1] - t[0]) * self.fs + 1e-6)) + 1)[::-1] / self.fs
        trace = np.stack([np.interp(grid, t[seen], rgb[seen, c]) for c in range(3)], 1)
        return float(t[-1]), {"bvp": np.asarray(get_method(self.method)(trace, self.fs), dtype=float)}

    def finish(self, grid: np.ndarray, segments: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        from mmrphys.signals.unsupervised import get_method

        fn = get_method(self.method)
        t, rgb = np.asarray(self._t), np.asarray(self._rgb, dtype=float).reshape(-1, 3)
        seen = np.isfinite(rgb[:, 0])
        bvp = np.full(grid.size, np.nan)
        for s, e in segments:
            trace = np.stack([np.interp(grid[s:e], t[seen], rgb[seen, c]) for c in range(3)], 1)
            bvp[s:e] = np.asarray(fn(trace, self.fs), dtype=float)
        return {"bvp": bvp}

    def describe(self) -> None:
        return None


class ModelEstimator:
    """A neural model on windows of face crops (see the module docstring)."""

    def __init__(self, predictor, name: str, weights: str, min_duration_s: float, batch: int = MODEL_BATCH,
                 method: str | None = None, overlap: float = MODEL_WINDOW_OVERLAP,
                 rr_from: str = DEFAULT_RR_FROM):
        self.predictor = predictor
        self.batch = max(1, int(batch))
        self.spec = predictor.spec
        self.name = name
        self.method = method or ("mmrphys" if name.startswith("mmrphys") else name)
        self.weights = weights
        self.crop_size = self.spec.size
        # an RGB model learned colour: R = G = B frames are outside everything it was trained on
        self.needs_colour = self.spec.in_channels == 3
        self.min_duration_s = min_duration_s
        m = self.spec.frame_multiple
        self.win = (self.spec.frames - 1) // m * m + 1
        if not 0.0 <= overlap < 1.0:
            raise ConfigError(f"window overlap must be in [0, 1), got {overlap!r}")
        self.overlap = float(overlap)
        self.stride = max(1, int(round((self.win - 1) * (1.0 - self.overlap))))
        if rr_from not in RR_SOURCES:
            raise ConfigError(f"rr_from must be one of {', '.join(RR_SOURCES)}, got {rr_from!r}")
        if "rsp" not in predictor.tasks or not self.needs_colour:
            rr_from = "pulse" if self.needs_colour else "model"  # no RSP output / a thermal model
        self.rr_from = rr_from
        # the pulse trace for the breathing rate: POS on the central part of the model's own crops
        self._pulse = TraceEstimator("pos", skin_mask=False) if rr_from == "pulse" else None
        m = int(round(self.crop_size * PULSE_CROP_BORDER))
        self._centre = slice(m, self.crop_size - m)
        self.n_windows = 0
        self._batch: list[tuple[int, np.ndarray]] = []
        self._stream = None
        self._k0 = 0
        self._last_k: int | None = None
        self._out_end = 0  # grid samples [0, _out_end) have model outputs
        self.fs = float("nan")

    def clone(self) -> ModelEstimator:
        return ModelEstimator(self.predictor, self.name, self.weights, self.min_duration_s, self.batch,
                              self.method, self.overlap, self.rr_from)

    def start(self, src_fps: float, warnings: list[str]) -> float:
        from mmrphys.tensors import OverlapAdd, StreamResampler

        lo, hi = MODEL_NATIVE_FPS
        fs = float(src_fps)
        if not lo <= fs <= hi:
            fs = self.spec.fs
            warnings.append(f"video at {src_fps:.1f} fps resampled to {fs:.0f} fps for the model")
        m = self.spec.frame_multiple
        self.min_win = max(2 * m + 1, min(self.win, int(math.ceil(self.min_duration_s * fs))))
        self.resampler = StreamResampler(fs, t0=0.0, max_gap_s=0.5, dtype=np.uint8)
        self.acc = {task: OverlapAdd() for task in self.predictor.tasks}
        self.fs = fs
        if self._pulse is not None:
            self._pulse.start(fs, [])  # its trace is resampled onto the same grid
        return fs

    def push(self, crop: np.ndarray, t: float) -> None:
        from mmrphys.tensors import WindowStream

        if self._pulse is not None:
            self._pulse.push(crop[self._centre, self._centre], t)
        for k, _tk, item in self.resampler.push(crop, t):
            if self._stream is None or self._last_k is None or k != self._last_k + 1:
                self._end_stream()
                self._stream = WindowStream(self.win, self.stride, min_win=self.min_win,
                                            multiple=self.spec.frame_multiple)
                self._k0 = k
            self._last_k = k
            for start, frames in self._stream.push(item):
                self._queue(self._k0 + start, frames)

    def gap(self, t: float) -> None:
        self._end_stream()
        self.resampler.reset()
        self._last_k = None
        if self._pulse is not None:
            self._pulse.gap(t)

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
        if len(self._batch) >= self.batch:
            self._run_batch()

    def _run_batch(self) -> None:
        if not self._batch:
            return
        x = np.stack([f for _, f in self._batch]).transpose(0, 4, 1, 2, 3)  # (B, 3, T+1, S, S) uint8
        x = x.astype(np.float32)
        x /= np.float32(255.0 / self.spec.pixel_scale)  # float32 division: as torch's div_ did, bit for bit
        out = self.predictor(x)
        for task, acc in self.acc.items():
            for (k_start, _), y in zip(self._batch, np.asarray(out[task])):
                acc.add(k_start + 1, y)  # output j of a window starting at frame s belongs to s + 1 + j
                self._out_end = max(self._out_end, k_start + 1 + len(y))
        self.n_windows += len(self._batch)
        self._batch = []

    def finish(self, grid: np.ndarray, segments: list[tuple[int, int]]) -> dict[str, np.ndarray]:
        self._end_stream()
        inside = np.zeros(grid.size, dtype=bool)
        for s, e in segments:
            inside[s:e] = True
        out = {}
        for task, acc in self.acc.items():
            y = acc.result(grid.size)
            # a stream's first frame has no output of its own (the model differences frames)
            first = np.flatnonzero(np.isnan(y[:-1]) & ~np.isnan(y[1:])) + 1
            y[first - 1] = y[first]
            y[~inside] = np.nan
            out[task] = y
        if self._pulse is not None:  # "pulse": the breathing rate's source (see RR_SOURCES)
            out["pulse"] = self._pulse.finish(grid, segments)["bvp"]
        return out

    def recent(self, window_s: float, min_s: float = 0.0) -> tuple[float, dict[str, np.ndarray]] | None:
        """``(t_end, {task: x})``: the overlap-added outputs of the last ``window_s`` seconds of the
        current face run that windows have reached so far (a window runs once it is complete, so
        outputs lag the newest frame by up to one stride plus the batch); None while they cover
        less than ``min_s``."""
        covered = self._out_end - self._k0
        if self._stream is None or covered <= 0 or covered / self.fs < min_s - 1e-6:
            return None
        a = max(self._k0, self._out_end - int(round(window_s * self.fs)))
        out = {}
        for task, acc in self.acc.items():
            y = acc.result(self._out_end)[a:]
            if np.isnan(y[0]) and y.size > 1:
                y[0] = y[1]  # the run's first frame has no output of its own
            out[task] = y
        if self._pulse is not None:
            pulse = self._pulse.recent(window_s, min_s)
            if pulse is not None:
                out["pulse"] = pulse[1]["bvp"]
        return (self._out_end - 1) / self.fs, out

    def describe(self) -> dict:
        return {"name": self.name, "weights": self.weights, "input_size": self.spec.size,
                "rr_from": self.rr_from,
                "window_frames": self.win, "windows": self.n_windows, "tasks": list(self.predictor.tasks),
                "pixel_scale": self.spec.pixel_scale, "backend": self.predictor.backend}


def method_name(method, default: str) -> str:
    """``method`` as the lower-case name ``make_estimator`` takes (``default`` for None)."""
    if method is None:
        return default
    if not isinstance(method, str):
        raise ConfigError(f"method must be a name such as 'pos' or 'mmrphys', got {method!r}")
    return method.lower()


def make_estimator(method: str, weights=None, backend: str = "auto",
                   min_duration_s: float = 6.0, batch: int = MODEL_BATCH,
                   rr_from: str = DEFAULT_RR_FROM, threads: int = 1) -> Estimator:
    """The estimator for ``method``: an unsupervised method name, or ``"mmrphys"`` / ``"model"`` /
    a registered model name with ``weights`` (a file, ours or the authors', or a shipped name;
    default: the shipped default weights), run through ``backend`` (``BACKENDS``) in batches of
    ``batch`` windows (1: each window as soon as it is complete, for streams); ``rr_from``: an RGB
    model's breathing rate from the crop pulse's modulation (``"pulse"``) or its RSP output
    (``"model"``); ``threads``: intra-op threads of a model run by onnxruntime (a session setting;
    a torch model uses the process's ``torch.get_num_threads()``)."""
    if method in UNSUPERVISED_METHODS:
        if weights is not None:
            raise ConfigError(f"method {method!r} takes no weights; use --method mmrphys with --weights")
        return TraceEstimator(method)
    if backend not in BACKENDS:
        raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if method not in ("mmrphys", "model"):
        from mmrphys.models.registry import list_models

        if method not in list_models():
            raise ConfigError(f"unknown method {method!r}; choose mmrphys (with --weights) or one of "
                              f"{', '.join(sorted(UNSUPERVISED_METHODS))}")
    if backend == "auto" and rr_from == "pulse":
        twin = _runtime_twin(method, weights, threads)
        if twin is not None:  # the shipped weights' pulse branch, through onnxruntime (no torch)
            predictor, name, label = twin
            return ModelEstimator(predictor, name, label, min_duration_s, batch, rr_from=rr_from)
    backend = "eager" if backend == "auto" else backend
    onnx = _onnx_file(weights)
    if onnx is not None:  # an ONNX export (the authors' web models, or ours): run by onnxruntime
        from mmrphys.models.runtime import OnnxPredictor

        predictor = OnnxPredictor(onnx, threads=threads)
        if predictor.spec.in_channels != 3:
            raise WeightsError(f"{weights}: an ONNX model for {predictor.spec.in_channels}-channel input; "
                               "this video is RGB")
        return ModelEstimator(predictor, f"onnx:{Path(onnx).stem}", str(weights), min_duration_s, batch,
                              method="mmrphys", rr_from=rr_from)
    net, name, label = _load(weights)
    if method not in ("mmrphys", "model") and method != name:
        raise WeightsError(f"{label}: weights are for {name!r}, not for the requested {method!r}")
    if net.in_channels != 3:
        kind = {1: "thermal", 4: "RGB + thermal"}.get(net.in_channels, f"{net.in_channels}-channel")
        raise WeightsError(f"{label}: weights are for {kind} input ({name}); this video is RGB: "
                           "use RGB weights (e.g. an MMRPhysLEF ..._RGBx180x72 checkpoint)")
    from mmrphys.models import input_spec, prepare

    spec = input_spec(net)
    window = (1, 3, (spec.frames - 1) // spec.frame_multiple * spec.frame_multiple + 1, spec.size, spec.size)
    # the breathing rate from the crop pulse: the model's RSP branch is not run
    predictor = prepare(net, backend, example_shape=window, tasks=("bvp",) if rr_from == "pulse" else None)
    return ModelEstimator(predictor, name, label, min_duration_s, batch, rr_from=rr_from)


def runs_torch(method: str, weights=None, backend: str = "auto", rr_from: str = DEFAULT_RR_FROM) -> bool:
    """Whether :func:`make_estimator` with these arguments runs a model in torch (the ``mmrphys`` command
    sets torch's threads only then; importing torch costs ~1 s). ``method``: a name as ``make_estimator``
    takes it (:func:`method_name`)."""
    if method in UNSUPERVISED_METHODS:
        return False
    if _is_onnx(weights):
        return False
    return not (backend == "auto" and rr_from == "pulse" and _twin_entry(method, weights) is not None)


def _twin_entry(method: str, weights):
    """The catalogue entry of ``weights`` (None: the default) when it ships a runtime twin that
    ``method`` may run, else None."""
    from mmrphys.models import weights as catalogue

    label = "default" if weights is None else str(weights)
    if weights is not None and Path(label).exists():
        return None  # a file given by path runs as it is
    try:
        entry = catalogue.get_entry(label)
    except WeightsError:
        return None  # make_estimator reports unknown weights
    if entry.runtime_path is None or (method not in ("mmrphys", "model") and method != entry.model):
        return None
    return entry


def _runtime_twin(method: str, weights, threads: int):
    """``(OnnxPredictor, model name, label)`` for RGB weights that ship a runtime twin of their pulse
    branch (``Weights.runtime_path``: the default weights), or None (then torch runs them). A stale
    twin raises :class:`WeightsError` (:func:`mmrphys.models.runtime.runtime_twin`)."""
    from mmrphys.models.runtime import runtime_twin

    entry = _twin_entry(method, weights)
    if entry is None:
        return None
    predictor = runtime_twin(entry, threads=threads, tasks=("bvp",))
    if predictor.spec.in_channels != 3:
        return None
    return predictor, entry.model, "default" if weights is None else str(weights)


def _is_onnx(weights) -> bool:
    """Whether ``weights`` names an ONNX export: an ``.onnx`` file, or a catalogue name of kind ``onnx``."""
    if weights is None:
        return False
    p = Path(str(weights))
    if p.is_file():
        return p.suffix.lower() == ".onnx"
    from mmrphys.models.weights import find

    entry = find(str(weights))
    return entry is not None and entry.kind == "onnx"


def _onnx_file(weights):
    """The ONNX file ``weights`` names (:func:`_is_onnx`; a remote one downloaded), else None."""
    if not _is_onnx(weights):
        return None
    from mmrphys.models.weights import resolve_weights

    p = Path(str(weights))
    return p if p.is_file() else resolve_weights(str(weights), download=True)


def _load(weights):
    """(model, registry name, label) for a weights file or shipped name (default: ``"default"``)."""
    from mmrphys.models import checkpoints

    label = str("default" if weights is None else weights)
    try:
        net = checkpoints.load_model(label)
    except WeightsError:
        raise
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as err:  # unreadable / not a checkpoint
        raise WeightsError(f"{label}: unreadable weights ({type(err).__name__}: {str(err)[:100]})") from None
    return net, checkpoints.model_name_and_kwargs(net)[0], label
