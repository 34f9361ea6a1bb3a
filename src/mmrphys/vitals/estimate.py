"""The main job: video (file or frames) -> HR, RR, waveforms, HRV, quality per face (one streaming pass).

decode -> track -> estimator -> signals -> :class:`Result`:

1. decode: frames one at a time with their real timestamps (:mod:`mmrphys.video`);
2. track: every face, with a stable id, detection every second, short gaps bridged
   (:mod:`mmrphys.faces`);
3. estimator: each face's crops go to its own :class:`~mmrphys.vitals.estimators.Estimator` (an
   unsupervised method on the mean skin colour, or a neural model on windows of crops), which
   returns waveforms on a uniform time grid (variable frame rate handled with the timestamps);
4. signals: rates, rolling rates, HRV, quality and confidence from each face's longest segment
   (:mod:`mmrphys.signals`);
5. result: :class:`Result` of the main face (present longest, then largest) with every face in
   ``faces`` (JSON contract, CSV, PNG).

Steps 2-5 are :class:`mmrphys.vitals.pipeline.Pipeline` (``push`` per frame, ``finish``); a live
stream (:class:`mmrphys.vitals.stream.Stream`) drives the same object.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError, InputError
from mmrphys.video import ImageFolder, VideoReader, as_lazy_frame, frames_from_array, open_video
from mmrphys.vitals.estimators import (
    DEFAULT_RR_FROM,
    UNSUPERVISED_METHODS,
    Estimator,
    make_estimator,
    method_name,
)
from mmrphys.vitals.pipeline import DETECT_EVERY_S, MIN_DURATION_S, Pipeline, check_max_faces
from mmrphys.vitals.result import Result

__all__ = ["DEFAULT_METHOD", "MIN_DURATION_S", "UNSUPERVISED_METHODS", "estimate"]

#: The method used when none is given: the learned model on the shipped default weights
#: (leave-subjects-out HR error well below POS's; src/mmrphys/weights/MODEL_CARD.md).
DEFAULT_METHOD = "mmrphys"
#: Frames are downscaled during decoding to this longest side: crops end up at <= 72 px, so
#: 4K input costs no accuracy but would cost memory and time.
PROCESS_MAX_SIDE = 1280


def estimate(source, method: str | None = None, weights=None, fps: float | None = None, timestamps=None,
             *, preset: str = "mmrphys", progress: bool | None = None, detect_every_s: float = DETECT_EVERY_S,
             max_side: int = PROCESS_MAX_SIDE, backend: str = "auto",
             max_faces: int | None = None, estimator: Estimator | None = None, detector=None,
             rr_from: str = DEFAULT_RR_FROM, decode_thread: bool = True, threads: int = 1) -> Result:
    """Heart rate, breathing rate, waveforms, HRV, quality and confidence of every face in a video.

    ``source``: a video path, a folder of image frames (PNG, JPEG, ...: one recording, natural
    file-name order, with ``fps``), or a uint8 frame array (N, H, W, 3) with ``fps`` or per-frame
    ``timestamps`` (seconds). ``method``: an unsupervised method (``pos`` — the default —,
    ``chrom``, ``green``, ``ica``, ``lgi``, ``pbv``, ``omit``) or ``mmrphys`` (any neural model:
    MMRPhys, FactorizePhys, PhysNet, EfficientPhys; the architecture is read from the weights) with
    ``weights`` = a weights file (ours or the authors' ``.pth``) or a shipped weights name;
    ``backend``: ``"auto"`` (the default weights' pulse branch through onnxruntime, without torch;
    any other weights ``"eager"``), ``"eager"`` or ``"compiled"`` (see
    :func:`mmrphys.models.prepare` and ``estimators.BACKENDS``); ``threads``: intra-op threads of a
    model run by onnxruntime (torch uses the process's setting). ``fps``
    overrides a file's frame rate. ``rr_from``: where a model's breathing rate comes from,
    ``"pulse"`` (the breathing modulation of a POS pulse from the model's own face crops; the
    default, the more accurate on real video: ``estimators.RR_SOURCES``) or ``"model"`` (its RSP
    output); thermal models always use their RSP output. ``max_faces``: faces followed at a time
    and reported (default: all). ``progress``: a progress bar (default: when stderr is a terminal).
    ``estimator``: a ready :class:`Estimator` prototype instead of ``method``/``weights`` (e.g. the
    thermal one, :func:`mmrphys.vitals.thermal.estimate_thermal`). ``detector``: a face detector of
    your own, any object with ``detect(frame, min_face_px=None, max_face_px=None) -> list[Box]``
    (largest first) and a ``backend`` name, as :class:`mmrphys.faces.FaceDetector` (the default, OpenCV's Haar
    cascade); a source may also bring its own (``source.face_detector``).
    ``decode_thread``: decode a video file in a background thread beside tracking and the model
    (the default: a second core does the decoding); False decodes in the calling thread, which
    costs less CPU in all where other processes already use every core
    (:func:`mmrphys.estimate_many` with several workers). Either way the results are the same.

    Returns the main face's :class:`Result` (the face present longest, then the largest); every face
    seen for at least ``MIN_DURATION_S`` at a time is in ``result.faces`` (the main one included),
    each with its own id, box track, rates, waveforms, quality and confidence. Raises
    :class:`InputError` / :class:`WeightsError` / :class:`ConfigError` with a one-line reason; a face
    seen in only part of the clip gives a partial result with warnings.
    """
    max_faces = check_max_faces(max_faces)
    if estimator is None:
        estimator = make_estimator(method_name(method, DEFAULT_METHOD), weights, backend, MIN_DURATION_S,
                                   rr_from=rr_from, threads=threads)
    reader = _open_source(source, fps, timestamps, max_side)
    _warm_imports()
    warnings = _check_reader(reader, estimator)
    pipe = Pipeline(estimator, float(reader.fps), warnings, max_faces=max_faces,
                    detect_every_s=detect_every_s, name=str(getattr(reader, "path", None) or "frames"),
                    n_frames=reader.n_frames,
                    detector=detector or getattr(reader, "face_detector", None),
                    keyframe_times=getattr(reader, "keyframe_times", None))
    with _progress(reader.n_frames, progress) as bar:
        for frame, t in _lazy_frames(reader, decode_thread):
            pipe.push(frame, t)
            bar.update(1)
    pipe.warnings.extend(getattr(reader, "warnings", []))
    return pipe.finish(preset, source=None if getattr(reader, "path", None) is None else str(reader.path))


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


#: Readers that decode files and can do so in a background thread (``decode_thread``).
_DECODERS = (VideoReader, ImageFolder)


def _lazy_frames(reader, decode_thread: bool = True):
    """``(lazy frame, t)`` pairs: the reader's own (YUV crops; a video file decoding in a thread
    unless ``decode_thread`` is False) when it has them."""
    frames = getattr(reader, "frames", None)
    if callable(frames):
        return frames(prefetch=False) if not decode_thread and isinstance(reader, _DECODERS) else frames()
    return ((as_lazy_frame(f), t) for f, t in reader)


def _progress(total, enabled):
    if enabled is None:
        enabled = sys.stderr.isatty()
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=not enabled, leave=False, dynamic_ncols=True)


