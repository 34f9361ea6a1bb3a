"""Live streams: push frames as they come, read HR/RR per face about once a second, a Result at the end.

::

    import mmrphys
    with mmrphys.Stream(fps=30) as stream:            # method="pos" (default), "mmrphys", ...
        for frame in camera:                          # RGB uint8 (H, W, 3)
            reading = stream.push(frame)              # None while warming up (the first 6 s of face)
            if reading:
                print(reading.heart_rate_bpm, reading.respiratory_rate_bpm, reading.confidence)
    result = stream.result                            # = stream.close(): the whole stream's Result

:class:`Stream` drives the same :class:`~mmrphys.vitals.pipeline.Pipeline` as
:func:`~mmrphys.vitals.estimate`, so ``close()`` returns what ``estimate`` returns for the same frames
and frame rate — bit for bit with the unsupervised methods. With a neural model a stream runs each
window as soon as it is complete (batch 1, for latency) where ``estimate`` batches two; the outputs
then differ by float32 rounding only (bounded in ``tests/vitals/test_stream.py``).
"""

from __future__ import annotations

import math

import numpy as np

from mmrphys.errors import ConfigError, InputError
from mmrphys.video.rate import check_fps
from mmrphys.vitals.estimators import make_estimator, method_name
from mmrphys.vitals.pipeline import MIN_DURATION_S, Pipeline, Reading, check_max_faces
from mmrphys.vitals.result import Result

__all__ = ["READING_EVERY_S", "Stream"]

#: Readings are computed once per this many seconds of video time.
READING_EVERY_S = 1.0
#: Without ``fps``, the frame rate is measured on the first frames' timestamps: this many seconds
#: (or FPS_PROBE_FRAMES frames, whichever comes first) are held back, then processed.
FPS_PROBE_S = 1.0
FPS_PROBE_FRAMES = 60


class Stream:
    """Heart rate and breathing of every face in a live stream of frames.

    ``fps``: the frames' rate (timestamps are then ``i / fps`` unless ``push`` is given ``t_s``);
    None measures it on the first second of ``t_s`` values. ``method``, ``weights``, ``backend``,
    ``max_faces``, ``preset``, ``threads``: as for :func:`mmrphys.estimate`. ``name`` names the stream in
    messages and in the result's ``source``.

    ``push(frame, t_s=None) -> Reading | None``: one frame (RGB uint8 (H, W, 3), grey (H, W), or a
    lazy frame of :mod:`mmrphys.video`) at time ``t_s`` seconds (any origin; increasing). Returns the
    latest :class:`~mmrphys.vitals.pipeline.Reading` (updated once per ``READING_EVERY_S`` of video;
    HR once a face has been seen ``MIN_DURATION_S`` in a row, RR after ``RR_MIN_DURATION_S``), or
    None until the first one. ``readings()``: every reading so far. ``close() -> Result``: the whole
    stream (also ``stream.result``; a context manager closes on exit without an exception).
    """

    def __init__(self, fps: float | None = None, method: str | None = None, weights=None, *,
                 max_faces: int | None = None, backend: str = "auto", preset: str = "mmrphys",
                 name: str = "stream", threads: int = 1):
        from mmrphys.vitals.estimate import DEFAULT_METHOD

        self.fps = None if fps is None else check_fps(fps, "fps")
        self.max_faces = check_max_faces(max_faces)
        self.preset = preset
        self.name = str(name)
        # batch 1: a window runs as soon as it is complete (latency over throughput)
        name = method_name(method, DEFAULT_METHOD)
        self._estimator = make_estimator(name, weights, backend, MIN_DURATION_S, batch=1, threads=threads)
        self.method = self._estimator.method
        self._pipe: Pipeline | None = None
        self._held: list[tuple[object, float]] = []  # frames held back while measuring the rate
        self._n = 0
        self._t0: float | None = None
        self._last_t = -math.inf
        self._shape: tuple | None = None
        self._next_reading = READING_EVERY_S
        self._readings: list[Reading] = []
        self._latest: Reading | None = None
        self.result: Result | None = None
        self._closed = False

    # ------------------------------------------------------------------------------------- frames
    def push(self, frame, t_s: float | None = None) -> Reading | None:
        """Process one frame; the latest reading, or None while warming up (see the class docstring)."""
        if self._closed:
            raise ConfigError(f"{self.name}: push after close()")
        frame = self._check_frame(frame)
        t = self._time(t_s)
        if self._pipe is None:
            self._held.append((frame, t))
            rate = self._probe_rate()
            if rate is None:
                return None
            self._start(rate)
            held, self._held = self._held, []
            for f, tf in held:
                self._process(f, tf)
        else:
            self._process(frame, t)
        return self._latest

    def _check_frame(self, frame):
        index = self._n
        self._n += 1
        if hasattr(frame, "crop_rgb"):  # a lazy frame from mmrphys.video
            shape = tuple(frame.shape[:2])
        else:
            arr = np.asarray(frame)
            if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) \
                    or min(arr.shape[:2]) < 8:
                raise InputError(f"{self.name}: frame {index} must be an RGB uint8 (H, W, 3) or grey (H, W) "
                                 f"image, got {arr.dtype} {arr.shape}")
            if arr.ndim == 2:
                if self._estimator.needs_colour:
                    raise InputError(f"{self.name}: frame {index} is grey; {self.method.upper()} needs "
                                     "colour (use method='green')")
                arr = np.repeat(arr[..., None], 3, axis=2)
            frame, shape = arr, arr.shape[:2]
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise InputError(f"{self.name}: frame {index} is {shape[1]}x{shape[0]}, the stream's frames are "
                             f"{self._shape[1]}x{self._shape[0]}")
        return frame

    def _time(self, t_s) -> float:
        index = self._n - 1
        if t_s is None:
            if self.fps is None:
                raise ConfigError(f"{self.name}: frame {index} has no t_s; give Stream(fps=...) or t_s with "
                                  "every frame")
            t = index / self.fps
        else:
            try:
                t_abs = float(t_s)
            except (TypeError, ValueError):
                raise InputError(f"{self.name}: frame {index}: t_s must be a number of seconds, "
                                 f"got {t_s!r}") from None
            if not math.isfinite(t_abs):
                raise InputError(f"{self.name}: frame {index}: t_s is {t_abs}")
            if self._t0 is None:
                self._t0 = t_abs
            t = t_abs - self._t0
        if t <= self._last_t:
            raise InputError(f"{self.name}: frame {index}: t_s={t_s} does not come after the previous "
                             "frame's")
        self._last_t = t
        return t

    def _probe_rate(self) -> float | None:
        if self.fps is not None:
            return self.fps
        span = self._held[-1][1] - self._held[0][1]
        if span < FPS_PROBE_S and len(self._held) < FPS_PROBE_FRAMES:
            return None
        return self._measured_rate()

    def _measured_rate(self) -> float:
        n, span = len(self._held), self._held[-1][1] - self._held[0][1]
        if n < 2 or span <= 0:
            raise InputError(f"{self.name}: {n} frame(s): too few to measure the frame rate")
        rate = (n - 1) / span
        try:
            return check_fps(rate)
        except InputError:
            raise InputError(f"{self.name}: the first timestamps give {rate:.3g} frames per second: t_s must "
                             "be in seconds") from None

    def _start(self, rate: float) -> None:
        self.fps = rate
        self._pipe = Pipeline(self._estimator, rate, [], max_faces=self.max_faces, name=self.name)

    def _process(self, frame, t: float) -> None:
        self._pipe.push(frame, t)
        if t + 1e-9 >= self._next_reading:
            self._next_reading = (math.floor(t / READING_EVERY_S + 1e-9) + 1) * READING_EVERY_S
            reading = self._pipe.reading(self.preset)
            if reading.faces or self._latest is not None:
                self._latest = reading
                self._readings.append(reading)

    # ----------------------------------------------------------------------------------- results
    @property
    def latest(self) -> Reading | None:
        """The latest reading (None while warming up)."""
        return self._latest

    def readings(self) -> list[Reading]:
        """Every reading so far, oldest first (one per ``READING_EVERY_S`` after warm-up)."""
        return list(self._readings)

    @property
    def n_frames(self) -> int:
        return self._n

    def close(self) -> Result:
        """The whole stream's :class:`Result` (as :func:`mmrphys.estimate` on the same frames); raises
        :class:`InputError` when the stream is too short or no face was seen long enough."""
        if self.result is not None:
            return self.result
        if self._closed:
            raise ConfigError(f"{self.name}: closed without a result")
        self._closed = True
        if self._pipe is None:
            if not self._held:
                raise InputError(f"{self.name}: no frames were pushed")
            self._start(self._measured_rate())
            for f, tf in self._held:
                self._pipe.push(f, tf)
            self._held = []
        self.result = self._pipe.finish(self.preset, source=self.name)
        return self.result

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._closed = True
            self._held = []
