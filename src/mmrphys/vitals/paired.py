"""An RGB video and its thermal recording as one source of frames for the main job (or thermal alone).

:class:`PairedSource` has the reader interface the main job drives (``fps``, ``n_frames``, ``path``,
``warnings``, ``frames()`` yielding ``(lazy frame, t_s)``) plus ``face_detector``: the detector the
tracker should use (None: the usual RGB one; :class:`~mmrphys.faces.thermal.WarmFaceDetector` for
thermal alone). Its lazy frames (:class:`PairedFrame`) answer ``gray()`` (what face detection sees),
``rgb()`` (the report's picture) and ``crop_rgb(box, size)``, which here returns the model's input
channels as float32 ``(size, size, C)``: RGB (0-255) then thermal (°C), or thermal alone.

Alignment: each RGB frame is paired with the thermal frame nearest in time (both recordings' times
start at their first frame; ``thermal_delay_s`` shifts the thermal clock when the thermal camera
started later). RGB frames more than half a thermal frame interval before the first thermal frame, or
more than one interval after the last, are not used. :meth:`PairedSource.alignment` reports the
pairing (offsets between paired frames, frames used, each recording's rate).

Face box mapping: the thermal view is taken to show the same scene at another resolution, so a box
found in the RGB frame is scaled by the size ratio of the two views, per axis (a warning says so when
their aspect ratios differ). With thermal alone, faces are found in the thermal frames themselves.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import cv2
import numpy as np

from mmrphys.errors import InputError
from mmrphys.faces.thermal import WarmFaceDetector, normalised_u8
from mmrphys.video.frame import _clip_box

__all__ = ["PairedFrame", "PairedSource"]

#: Aspect ratios of the two views may differ by this fraction before a warning says so.
ASPECT_TOLERANCE = 0.02


class PairedFrame:
    """One time step: the RGB lazy frame (or None) and the thermal frame paired with it."""

    __slots__ = ("_rgb", "_thermal", "_span")

    def __init__(self, rgb_frame, thermal: np.ndarray, span: tuple[float, float] | None = None):
        self._rgb = rgb_frame
        self._thermal = thermal
        self._span = span  # thermal (lo, hi) °C for the report picture; None: the frame's own range

    @property
    def shape(self) -> tuple[int, int, int]:
        if self._rgb is not None:
            return self._rgb.shape
        h, w = self._thermal.shape
        return h, w, 3

    def thermal(self) -> np.ndarray:
        """The thermal frame, float32 (H, W) in °C (relative units for a grey thermal video)."""
        return self._thermal

    def gray(self) -> np.ndarray:
        """What face detection sees: the RGB frame's grey image, else the contrast-stretched thermal."""
        return self._rgb.gray() if self._rgb is not None else normalised_u8(self._thermal)

    def rgb(self) -> np.ndarray:
        """The RGB picture, else the thermal frame in a false-colour palette (for the report)."""
        if self._rgb is not None:
            return self._rgb.rgb()
        img = self._thermal
        if self._span is not None:
            lo, hi = self._span
            u8 = np.clip((img - lo) * (255.0 / max(hi - lo, 1e-6)), 0, 255).astype(np.uint8)
        else:
            u8 = normalised_u8(img)
        return cv2.cvtColor(cv2.applyColorMap(u8, cv2.COLORMAP_INFERNO), cv2.COLOR_BGR2RGB)

    def thermal_box(self, xyxy) -> tuple[float, float, float, float]:
        """A box in this frame's coordinates (:attr:`shape`) in thermal pixels."""
        if self._rgb is None:
            return tuple(float(v) for v in xyxy)
        h, w = self.shape[:2]
        th, tw = self._thermal.shape
        sx, sy = tw / w, th / h
        x0, y0, x1, y1 = (float(v) for v in xyxy)
        return x0 * sx, y0 * sy, x1 * sx, y1 * sy

    def crop_rgb(self, xyxy, size: int) -> np.ndarray:
        """The model's channels of the box, float32 ``(size, size, C)``: RGB 0-255 + thermal °C (C = 4)
        when there is an RGB frame, thermal alone (C = 1) otherwise."""
        x0, y0, x1, y1 = _clip_box(self.thermal_box(xyxy), *self._thermal.shape)
        t = cv2.resize(self._thermal[y0:y1, x0:x1], (int(size), int(size)), interpolation=cv2.INTER_AREA)
        if self._rgb is None:
            return t[..., None]
        rgb = self._rgb.crop_rgb(xyxy, size).astype(np.float32)
        return np.concatenate([rgb, t[..., None]], axis=2)


class PairedSource:
    """RGB reader + thermal reader (or the thermal reader alone) as one reader (module docstring)."""

    def __init__(self, rgb_reader, thermal_reader, thermal_delay_s: float = 0.0):
        self.rgb = rgb_reader
        self.thermal = thermal_reader
        self.delay_s = float(thermal_delay_s)
        if not math.isfinite(self.delay_s):
            raise InputError(f"thermal delay must be a finite number of seconds, got {thermal_delay_s}")
        self.warnings: list[str] = list(getattr(thermal_reader, "warnings", []))
        self.is_grayscale = False
        self.bit_depth = 8
        main = rgb_reader if rgb_reader is not None else thermal_reader
        self.fps = float(main.fps)
        self.n_frames = main.n_frames
        self.path = main.path
        self.timestamps_guessed = bool(getattr(main, "timestamps_guessed", False))
        self.face_detector = WarmFaceDetector() if rgb_reader is None else None
        self._offsets: list[float] = []
        self._pairs = 0
        self._skipped_before = self._skipped_after = 0
        self._span: tuple[float, float] | None = None
        if rgb_reader is not None:
            self._check_views()
            if thermal_reader.fps < 0.5 * self.fps:
                self.warnings.append(f"the thermal recording has {thermal_reader.fps:.1f} fps, the RGB video "
                                     f"{self.fps:.1f}: each thermal frame is repeated for several RGB frames")

    def _check_views(self) -> None:
        rw, rh = getattr(self.rgb, "output_size", (self.rgb.width, self.rgb.height))
        tw, th = self.thermal.width, self.thermal.height
        if abs((rw / rh) / (tw / th) - 1.0) > ASPECT_TOLERANCE:
            self.warnings.append(f"the thermal view ({tw}x{th}) and the RGB view ({rw}x{rh}) have different "
                                 "aspect ratios: face boxes are scaled per axis, assuming both show the "
                                 "same scene")

    # the reader interface
    def __iter__(self):
        for frame, t in self.frames():
            yield frame.rgb(), t

    def frames(self) -> Iterator[tuple[PairedFrame, float]]:
        if self.rgb is None:
            yield from self._thermal_only()
        else:
            yield from self._paired()

    def _thermal_only(self):
        for img, t in self.thermal:
            self._note_span(img)
            self._pairs += 1
            self._offsets.append(0.0)
            yield PairedFrame(None, img, self._span), t

    def _note_span(self, img: np.ndarray) -> None:
        if self._span is None:  # one palette range for the whole recording (first frame's)
            lo, hi = np.percentile(img, [1.0, 99.5])
            self._span = (float(lo), float(hi))

    def _paired(self):
        rgb_frames = self.rgb.frames() if callable(getattr(self.rgb, "frames", None)) else iter(self.rgb)
        thermal = iter(self.thermal)
        half, period = 0.5 / self.thermal.fps, 1.0 / self.thermal.fps  # a frame lasts until the next
        cur = next(thermal, None)
        if cur is None:
            raise InputError(f"{self.thermal.name}: no thermal frames")
        nxt = next(thermal, None)
        for frame, t in rgb_frames:
            tt = t - self.delay_s  # this RGB frame's time on the thermal clock
            while nxt is not None and abs(nxt[1] - tt) <= abs(cur[1] - tt):
                cur, nxt = nxt, next(thermal, None)
            if tt < cur[1] - half:
                self._skipped_before += 1
                continue
            if nxt is None and tt >= cur[1] + period - 1e-9:
                self._skipped_after += 1
                continue
            self._pairs += 1
            self._offsets.append(float(cur[1] - tt))
            yield PairedFrame(frame, cur[0]), t
        if self._pairs == 0:
            raise InputError(f"{self.thermal.name}: the thermal recording does not overlap the RGB video in "
                             "time")
        if self._skipped_before or self._skipped_after:
            self.warnings.append(f"the thermal recording covers part of the RGB video: "
                                 f"{self._skipped_before + self._skipped_after} RGB frames without a thermal "
                                 "frame are not used")

    def alignment(self) -> dict:
        """How the recordings were paired (for the result's ``thermal`` field)."""
        off = np.abs(np.asarray(self._offsets)) if self._offsets else np.zeros(1)
        th = self.thermal
        return {"source": None if th.path is None else str(th.path), "kind": th.kind, "unit": th.unit,
                "fps": th.fps, "size": [th.width, th.height], "frames_paired": self._pairs,
                "rgb_frames_without_thermal": self._skipped_before + self._skipped_after,
                "delay_s": self.delay_s, "offset_median_s": float(np.median(off)),
                "offset_max_s": float(off.max()), "timestamps_guessed": bool(th.timestamps_guessed),
                "mapping": "thermal alone" if self.rgb is None else "box scaled by the views' size ratio",
                "face_detector": "warm-region (thermal)" if self.rgb is None else "haar (RGB)"}
