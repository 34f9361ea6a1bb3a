"""The main job with a thermal recording: RGB + thermal (RGBT weights) or thermal alone (T weights).

:func:`estimate_thermal` (also ``mmrphys.estimate(video, thermal=T)`` and ``mmrphys estimate VIDEO
--thermal T``) opens the thermal recording (:func:`mmrphys.video.thermal.open_thermal`), pairs it with
the RGB video by time (:class:`~mmrphys.vitals.paired.PairedSource`), and runs the main job with a
:class:`ThermalModelEstimator`: face crops of both views stacked as RGB + T (4 channels) for RGB +
thermal weights, or T alone (1 channel) for thermal weights. The models take the first temporal
difference and normalise RGB and thermal separately (``models.layers.DiffNormalize``), so the thermal
channel goes in as it is stored in training (°C, as ``data.cache`` keeps it) and any affine unit
(relative intensity of a grey video) works as well. The breathing rate comes from the model's RSP
output: for the fused models (``bp4d-lnf``: RGB -> BVP, thermal -> RSP; EF/LF: both), the thermal
channel is what the RSP branch sees.

Weights: the authors' BP4D+ checkpoints by name (``bp4d-lef-rgbt``, ``bp4d-lnf``, ``bp4d-llf``,
``bp4d-lef-thermal``; downloaded with ``mmrphys weights download NAME``), or a file (e.g. ours trained
with ``configs/thermal/``). Without ``weights`` the BP4D+ LEF RGBT (RGB + thermal) or T (thermal
alone) checkpoint is used when it has been downloaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError, WeightsError
from mmrphys.vitals.estimators import MODEL_BATCH, UNSUPERVISED_METHODS, ModelEstimator

__all__ = ["DEFAULT_THERMAL_WEIGHTS", "ThermalModelEstimator", "estimate_thermal", "make_thermal_estimator"]

#: Weights used with a thermal recording when none are given, by input ("rgbt": an RGB video and its
#: thermal recording, "t": thermal alone). Named weights are never downloaded implicitly.
DEFAULT_THERMAL_WEIGHTS = {"rgbt": "bp4d-lef-rgbt", "t": "bp4d-lef-thermal"}


class ThermalModelEstimator(ModelEstimator):
    """A :class:`~mmrphys.vitals.estimators.ModelEstimator` for float32 crops whose last channel is
    thermal (°C): the crops are resampled as floats, and the thermal channel reaches the model in °C
    while RGB channels are scaled as for RGB weights (0-1 for scale-free models)."""

    def __init__(self, predictor, name: str, weights: str, min_duration_s: float, channels: str,
                 batch: int = MODEL_BATCH):
        super().__init__(predictor, name, weights, min_duration_s, batch)
        self.channels = channels

    def clone(self) -> ThermalModelEstimator:
        return ThermalModelEstimator(self.predictor, self.name, self.weights, self.min_duration_s,
                                     self.channels, self.batch)

    def start(self, src_fps: float, warnings: list[str]) -> float:
        from mmrphys.tensors import StreamResampler

        fs = super().start(src_fps, warnings)
        self.resampler = StreamResampler(fs, t0=0.0, max_gap_s=0.5, dtype=np.float32)
        # ModelEstimator divides every channel by 255 / pixel_scale: undo that for the thermal one
        self._thermal_gain = np.float32(255.0 / self.spec.pixel_scale)
        return fs

    def push(self, crop: np.ndarray, t: float) -> None:
        crop = np.array(crop, dtype=np.float32)
        crop[..., -1] *= self._thermal_gain
        super().push(crop, t)

    def describe(self) -> dict:
        return {**super().describe(), "channels": "RGB + thermal" if self.channels == "rgbt" else "thermal"}


def make_thermal_estimator(method: str | None, weights, channels: str, backend: str = "auto",
                           min_duration_s: float = 6.0) -> ThermalModelEstimator:
    """The estimator for ``channels`` (``"rgbt"``: RGB video + thermal, ``"t"``: thermal alone) with
    ``weights`` (a file or name; default :data:`DEFAULT_THERMAL_WEIGHTS`, not downloaded implicitly),
    run in torch (``backend`` ``"auto"`` is ``"eager"``: no thermal weights ship a runtime twin).
    :class:`WeightsError` when the weights do not take that input."""
    from mmrphys.models import checkpoints, input_spec, list_models, prepare

    method = (method or "mmrphys").lower()
    if method in UNSUPERVISED_METHODS:
        raise ConfigError(f"method {method!r} reads colour only; a thermal recording needs a model: "
                          "--method mmrphys with thermal or RGB + thermal weights (e.g. bp4d-lef-rgbt)")
    if method not in ("mmrphys", "model") and method not in list_models():
        raise ConfigError(f"unknown method {method!r}; with --thermal use --method mmrphys")
    label = str(weights) if weights is not None else DEFAULT_THERMAL_WEIGHTS[channels]
    try:
        net = checkpoints.load_model(label, download=weights is not None)
    except WeightsError as err:
        if weights is None:
            raise WeightsError(f"{err} (the default weights for {_what(channels)}; or give --weights FILE)") \
                from None
        raise
    except (OSError, RuntimeError, EOFError, KeyError, ValueError) as err:
        raise WeightsError(f"{label}: unreadable weights ({type(err).__name__}: {str(err)[:100]})") from None
    name = checkpoints.model_name_and_kwargs(net)[0]
    c = int(net.in_channels)
    if channels == "t" and c != 1:
        need = "the RGB video too: mmrphys estimate VIDEO --thermal T" if c == 4 else "RGB video, not thermal"
        raise WeightsError(f"{label}: weights for {_input_of(c)} ({name}) need {need}; thermal alone needs "
                           "thermal weights (e.g. bp4d-lef-thermal)")
    if channels == "rgbt" and c == 3:
        raise WeightsError(f"{label}: weights for RGB input ({name}) cannot use the thermal recording: give "
                           "RGB + thermal (bp4d-lef-rgbt, bp4d-lnf, bp4d-llf) or thermal weights, or leave "
                           "--thermal out")
    spec = input_spec(net)
    win = (spec.frames - 1) // spec.frame_multiple * spec.frame_multiple + 1
    window = (1, 4 if channels == "rgbt" else 1, win, spec.size, spec.size)
    predictor = prepare(net, "eager" if backend == "auto" else backend, example_shape=window)
    return ThermalModelEstimator(predictor, name, label, min_duration_s, channels)


def _what(channels: str) -> str:
    return "an RGB video with its thermal recording" if channels == "rgbt" else "thermal alone"


def _input_of(c: int) -> str:
    return {1: "thermal input", 3: "RGB input", 4: "RGB + thermal input"}.get(c, f"{c}-channel input")


def _open_rgb(source, fps, max_side):
    from mmrphys.errors import InputError
    from mmrphys.video import VideoReader, frames_from_array, open_video

    if source is None or isinstance(source, VideoReader):
        return source
    if isinstance(source, (str, Path)):
        return open_video(source, fps=fps, max_side=max_side)
    if isinstance(source, (np.ndarray, list, tuple)):
        return frames_from_array(source, fps=fps)
    raise InputError(f"source must be a video path or a frame array, got {type(source).__name__}")


def estimate_thermal(source, thermal=None, method: str | None = None, weights=None, fps: float | None = None,
                     *,
                     thermal_unit: str | None = None, thermal_fps: float | None = None,
                     thermal_delay_s: float = 0.0, preset: str = "mmrphys", progress: bool | None = None,
                     detect_every_s: float | None = None, max_side: int | None = None,
                     backend: str = "auto", max_faces: int | None = None):
    """HR, RR, waveforms and quality from an RGB video and its thermal recording, or from thermal alone.

    ``source``: the RGB video (path or frame array) or None; ``thermal``: the thermal recording (a
    path — ``.npy``/``.npz``, TIFF stack, folder of iBVP ``.raw`` frames, grey video — or an (N, H, W)
    array), read with ``thermal_unit`` / ``thermal_fps`` (:func:`mmrphys.video.thermal.open_thermal`);
    ``thermal_delay_s``: when the thermal recording started after the RGB video. The other arguments
    as :func:`mmrphys.estimate`. The result's ``thermal`` field reports the pairing.
    """
    from mmrphys.video.thermal import open_thermal

    if thermal is None:
        raise ConfigError("no thermal recording given (thermal=)")
    from mmrphys.vitals.estimate import DETECT_EVERY_S, MIN_DURATION_S, PROCESS_MAX_SIDE, estimate
    from mmrphys.vitals.paired import PairedSource

    channels = "t" if source is None else "rgbt"
    estimator = make_thermal_estimator(method, weights, channels, backend, MIN_DURATION_S)
    reader = PairedSource(_open_rgb(source, fps, max_side or PROCESS_MAX_SIDE),
                          open_thermal(thermal, unit=thermal_unit, fps=thermal_fps), thermal_delay_s)
    result = estimate(reader, estimator=estimator, preset=preset, progress=progress,
                      detect_every_s=detect_every_s or DETECT_EVERY_S, max_faces=max_faces)
    result.extra["thermal"] = reader.alignment()
    if source is None:
        result.source = str(reader.thermal.path) if reader.thermal.path is not None else None
    return result
