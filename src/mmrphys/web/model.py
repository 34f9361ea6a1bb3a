"""The ONNX model the web app runs: located or exported at server start-up, and described for the page.

Order: ``--model PATH`` (an ``.onnx`` file is served as is; a weights file, ours or the authors', is
exported), else the package's default shipped weights (:mod:`mmrphys.models.weights`): their shipped
runtime twin (the pulse branch as ONNX, :mod:`mmrphys.models.runtime`) where they have one, else
exported once with :func:`mmrphys.models.export.export_onnx` and cached under the user's cache
folder. The exporter needs the ``onnx`` package (a dependency of mmrphys). When the package ships no
default weights the page falls back to POS and says so; anything else that stops the export (no
``onnx`` module, a cache folder that cannot be written) is a one-line error.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import inspect
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from mmrphys.errors import ConfigError, WeightsError

# The page's sliding window: T = 180 output samples (6 s at 30 fps) per 181-frame window (the main
# job's window for MMRPhys, ``MMRPhys.window_frames``, tested equal), a new window every
# (T) x (1 - MODEL_WINDOW_OVERLAP) = 90 frames at least, and -- when the graph's frame axis is really
# dynamic -- a shorter first window so the first estimate comes sooner.
DEFAULT_FRAMES = 181
FIRST_FRAMES = 121
STRIDE = 90

#: The post-processing preset the page follows: the main job's default (``mmrphys.estimate``).
PAGE_PRESET = "mmrphys"
#: Labels the page shows for the quality index (``mmrphys.signals.signal_quality``, 0-1): a clean
#: pulse scores >= 0.85 on 10 s and white noise <= 0.25 (tests/signals/test_quality.py).
QUALITY_GOOD = 0.5
QUALITY_FAIR = 0.3


@functools.cache
def page_settings(preset: str = PAGE_PRESET) -> dict:
    """What the page computes with, read from the Python package (one source of truth).

    The bands, filter order, PSD rule, harmonic check and quality windows of the preset
    (:mod:`mmrphys.signals`), the crop scale of the face tracker (:mod:`mmrphys.faces`), the rate
    windows and minimum durations of the main job (:mod:`mmrphys.vitals`) and the model window's
    overlap. Sent to the page in ``/api/model.json`` as ``settings``; the page has no copies.
    """
    from importlib import import_module

    from mmrphys.faces import FaceTracker
    from mmrphys.signals.presets import get_preset

    # modules by full name: ``mmrphys.signals.spectrum`` and ``mmrphys.vitals.estimate`` are also the
    # names of functions in their packages
    spectrum = import_module("mmrphys.signals.spectrum")
    quality = import_module("mmrphys.signals.quality")
    pipeline = import_module("mmrphys.vitals.pipeline")  # the main job's windows and durations
    estimators = import_module("mmrphys.vitals.estimators")  # its model rate and window overlap
    p = get_preset(preset)
    return {
        "preset": {
            "name": p.name, "order": p.order, "hr_band": list(p.hr_band), "rr_band": list(p.rr_band),
            "detrend": p.detrend, "psd": p.psd, "welch_after_s": p.welch_after_s, "rr_zscore": p.rr_zscore,
            "subharmonic_ratio": spectrum.SUBHARMONIC_RATIO, "subharmonic_floor": spectrum.SUBHARMONIC_FLOOR,
        },
        "quality": {"half_width_hz": dict(quality._HALF_WIDTH_HZ),  # signal_quality's windows
                    "good": QUALITY_GOOD, "fair": QUALITY_FAIR},
        "windows": {
            "hr_s": pipeline.ROLLING_HR_WINDOW_S, "rr_s": pipeline.ROLLING_RR_WINDOW_S,
            "hr_min_s": pipeline.MIN_DURATION_S, "rr_min_s": pipeline.RR_MIN_DURATION_S,
            "step_s": pipeline.ROLLING_STEP_S, "no_face_s": pipeline.MAX_GAP_S,
        },
        "respiration": _respiration_settings(),
        "crop_scale": inspect.signature(FaceTracker).parameters["scale"].default,
        "model_fs": estimators.MODEL_FS,
        "window_overlap": estimators.MODEL_WINDOW_OVERLAP,
    }


def _respiration_settings() -> dict:
    """Where the page's breathing rate comes from and how, as the main job computes it.

    ``rr_from``: the main job's default source of a model's breathing rate
    (``vitals.estimators.DEFAULT_RR_FROM``: ``"pulse"``, the breathing modulation of a POS pulse on the
    central part of the model's crops; ``"model"``: its RSP output). ``pulse``: that POS
    (``signals.unsupervised.pos``: window, detrend, band) and the crop border. ``modulation``: the
    constants of ``signals.respiration.respiration_from_bvp`` and of the peak detection it uses
    (``signals.rates.detect_peaks``). ``sources``: the ``rsp_source`` labels of ``vitals.pipeline``.
    """
    from importlib import import_module

    estimators = import_module("mmrphys.vitals.estimators")
    pipeline = import_module("mmrphys.vitals.pipeline")
    respiration = import_module("mmrphys.signals.respiration")
    rates = import_module("mmrphys.signals.rates")
    pos = import_module("mmrphys.signals.unsupervised.pos")
    return {
        "rr_from": estimators.DEFAULT_RR_FROM,
        "pulse": {"window_s": pos.WINDOW_S, "band_hz": list(pos.BAND_HZ), "order": pos.BAND_ORDER,
                  "detrend_lambda": pos.DETREND_LAMBDA, "crop_border": estimators.PULSE_CROP_BORDER},
        "modulation": {"min_beats": respiration.MIN_BEATS, "min_troughs": respiration.MIN_TROUGHS,
                       "fusion_half_width_hz": respiration.FUSION_HALF_WIDTH_HZ,
                       "peak_min_spacing": rates.PEAK_MIN_SPACING,
                       "peak_min_prominence": rates.PEAK_MIN_PROMINENCE,
                       "peak_prominence_percentile": rates.PEAK_PROMINENCE_PERCENTILE},
        "sources": {"pulse": pipeline.RSP_FROM_CROP_PULSE, "bvp": pipeline.RSP_FROM_BVP,
                    "model": pipeline.RSP_FROM_MODEL},
    }


@dataclass
class WebModel:
    """What the page needs to know about the model (sent as ``/api/model.json``)."""

    available: bool
    name: str = "pos"
    label: str = "POS (no model)"
    path: str | None = None
    size: int = 72
    channels: int = 3
    frames: int = DEFAULT_FRAMES
    first_frames: int | None = None
    stride: int = STRIDE
    fs: float = 30.0
    outputs: tuple[str, ...] = ()
    reason: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        for private in ("path", "detail"):  # the page gets the file at /model.onnx; no local paths leave
            d.pop(private)
        d["url"] = "/model.onnx" if self.available else None
        d["outputs"] = list(self.outputs)
        d["settings"] = page_settings()
        return d


def cache_dir() -> Path:
    """``$MMRPHYS_CACHE`` or ``$XDG_CACHE_HOME/mmrphys`` (default ``~/.cache/mmrphys``), plus ``/web``."""
    root = os.environ.get("MMRPHYS_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "mmrphys")
    return Path(root) / "web"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def export_weights(weights_path: Path, name: str, cache: Path | None = None) -> Path:
    """Export a weights file to ONNX once; later calls reuse ``<cache>/<name>-<sha>.onnx``.

    The file is written to a temporary name and renamed, so a killed export leaves no half file.
    Raises :class:`ConfigError` (one line) when the ``onnx`` package is missing or the cache folder
    cannot be written.
    """
    cache = Path(cache or cache_dir())
    target = cache / f"{name}-{_digest(weights_path)}.onnx"
    if target.is_file():
        return target
    if importlib.util.find_spec("onnx") is None:
        raise ConfigError(f"{weights_path.name}: exporting the model for the web page needs the 'onnx' "
                          "package, which is missing: pip install onnx (or start with --model FILE.onnx)")
    from mmrphys.models.checkpoints import load_model
    from mmrphys.models.export import export_onnx

    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"{cache}: cannot create the model cache ({err.strerror or err}); set "
                          "MMRPHYS_CACHE to a writable folder") from None
    model = load_model(weights_path)
    tmp = target.with_suffix(f".tmp{os.getpid()}.onnx")
    try:
        export_onnx(model, tmp)
        os.replace(tmp, target)
    except OSError as err:
        raise ConfigError(f"{cache}: cannot write the exported model ({err.strerror or err}); set "
                          "MMRPHYS_CACHE to a writable folder") from None
    finally:
        tmp.unlink(missing_ok=True)
    return target


def describe_onnx(path: Path, name: str, label: str) -> WebModel:
    """Read the graph's input shape and find which window lengths it really runs (with onnxruntime).

    The authors' export declares a dynamic frame axis yet only runs 181 frames; ours runs any valid
    length. Probing once at start-up tells the page which it has.
    """
    import numpy as np

    from mmrphys.models.runtime import onnx_session

    # quiet: the probe of a fixed-length graph below fails on purpose
    sess = onnx_session(path, threads=1, quiet=True)
    inp = sess.get_inputs()[0]
    shape = list(inp.shape)
    if len(shape) != 5:
        raise WeightsError(f"{path}: expected a (B, C, T+1, H, W) input, got shape {shape}")
    channels = shape[1] if isinstance(shape[1], int) else 3
    size = shape[3] if isinstance(shape[3], int) else 72
    if channels != 3:
        raise WeightsError(f"{path}: the web app feeds RGB (3 channels); this model takes {channels}")

    def runs(frames: int) -> bool:
        x = np.zeros((1, channels, frames, size, size), np.float32)
        x[:, :, ::2] = 0.5  # a non-constant clip keeps InstanceNorm away from 0/0
        try:
            sess.run(None, {inp.name: x})
            return True
        except Exception:  # a fixed reshape inside the graph fails here
            return False

    frames = shape[2] if isinstance(shape[2], int) else DEFAULT_FRAMES
    if not runs(frames):
        raise WeightsError(f"{path}: the model does not run on a {frames}-frame window")
    dynamic = not isinstance(shape[2], int)
    first = FIRST_FRAMES if dynamic and frames > FIRST_FRAMES and runs(FIRST_FRAMES) else None
    return WebModel(available=True, name=name, label=label, path=str(path), size=size, channels=channels,
                    frames=frames, first_frames=first, outputs=tuple(o.name for o in sess.get_outputs()))


def resolve_model(model_arg: str | None = None, cache: Path | None = None) -> WebModel:
    """The model to serve. ``model_arg`` problems raise; a missing default gives the POS fallback."""
    if model_arg:
        path = Path(model_arg).expanduser()
        if not path.is_file():
            raise WeightsError(f"{model_arg}: no such model file")
        if path.suffix.lower() == ".onnx":
            return describe_onnx(path, path.stem, f"custom model {path.name}")
        onnx = export_weights(path, path.stem, cache)
        return describe_onnx(onnx, path.stem, f"{path.stem} (exported to ONNX)")
    from mmrphys.models import weights as shipped

    try:
        w = shipped.get_weights("default")
    except WeightsError as err:
        # The page shows ``reason``; the full message (with local paths) stays on the server's console.
        return WebModel(available=False, reason="no default model in this installation; start the server "
                        "with --model FILE", detail=str(err).splitlines()[0])
    if w.runtime_path is not None:  # the shipped ONNX twin: nothing to export (no torch at start-up)
        from mmrphys.models.runtime import runtime_twin

        onnx = runtime_twin(w).path
    else:
        onnx = export_weights(w.path, w.name, cache)
    arch = w.card.get("model", "model")
    return describe_onnx(onnx, w.name, f"{arch} · {w.name}")
