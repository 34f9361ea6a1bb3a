"""Offline face detection (OpenCV Haar cascade from opencv-python-headless; no downloads)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np

from mmrphys.errors import ConfigError

# Detect on a frame downscaled to this longest side: Haar cost grows with pixel count and faces in
# rPPG video fill a large part of the frame, so 320 px keeps them well above the 24 px minimum.
DETECT_MAX_SIDE = 320
# While tracking a face of known size, downscale further so the smallest face searched for is this
# many pixels (twice the cascade's 24 px window): the box's precision is set by the 15 % scale
# steps, not by the resolution, and the cost falls with the pixel count.
TRACK_MIN_FACE_PX = 48

# The whole-frame search for new faces while faces are followed (``FaceDetector.discover``)
# downscales so that the smallest face searched for is the cascade's own 24 px window: the same
# faces, about half the cost of ``detect`` (boxes to ~1/24 of a side, refined by the next tracking
# detection).
DISCOVER_MIN_FACE_PX = 24
# When the search on the downscaled frame finds nothing, it is repeated on a finer image where a face
# of this fraction of the frame's shorter side (or the tracked face's smallest size) is
# TRACK_MIN_FACE_PX: a person further from an HD camera (a 60 px face in 1280x720 is 15 px after the
# 320 px downscale, and below ``min_size``). Frames with a face found at the usual scale never pay for
# it, and get the same boxes as before.
SMALL_FACE_FRACTION = 0.05
# The finer search costs up to ~20x the usual one on a textured frame without a face (0.6 s on 720p
# noise here): after this many in a row found nothing, only every FINE_BACKOFF-th is done.
FINE_RETRIES = 3
FINE_BACKOFF = 5

# "haar" tries the default frontal cascade, then alt2 where the first finds nothing (alt2 finds more
# low-contrast faces, e.g. dark skin in dim light; measured on synthetic faces: 30/60 -> 43/60).
_CASCADES = {
    "haar": ("haarcascade_frontalface_default.xml", "haarcascade_frontalface_alt2.xml"),
    "haar_default": ("haarcascade_frontalface_default.xml",),
    "haar_alt2": ("haarcascade_frontalface_alt2.xml",),
}


class Box(NamedTuple):
    """A face box in pixels of the frame passed to ``detect``; ``score`` = cascade neighbour count."""

    x: float
    y: float
    w: float
    h: float
    score: float = 1.0

    @property
    def area(self) -> float:
        return self.w * self.h


class FaceDetector:
    """Frontal face detector; ``detect(frame_rgb) -> list[Box]`` sorted largest first.

    ``max_side`` is the longest side the frame is downscaled to before detection (boxes are mapped
    back to full-frame pixels). ``min_size`` is the smallest face as a fraction of the frame's
    shorter side.
    """

    def __init__(self, backend: str = "haar", max_side: int = DETECT_MAX_SIDE, min_size: float = 0.15,
                 scale_factor: float = 1.15, min_neighbors: int = 5):
        if backend not in _CASCADES:
            raise ConfigError(f"unknown face detector backend {backend!r}; choose from {sorted(_CASCADES)}")
        self._cascades = []
        for name in _CASCADES[backend]:
            path = Path(cv2.data.haarcascades) / name
            cascade = cv2.CascadeClassifier(str(path))
            if cascade.empty():  # pragma: no cover - broken OpenCV install
                raise ConfigError(f"cannot load the Haar cascade {path}")
            self._cascades.append(cascade)
        self.backend = backend
        self.max_side = int(max_side)
        self.min_size = float(min_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self._fine_misses = 0  # finer searches in a row that found nothing
        self._fine_skipped = 0  # finer searches skipped since the last one

    def discover(self, frame_rgb: np.ndarray) -> list[Box]:
        """Faces of every size ``detect`` finds, on a coarser image (``DISCOVER_MIN_FACE_PX``): the
        trackers' periodic search for new faces while others are followed."""
        return self._detect(frame_rgb, None, None, coarse=True)

    def detect(self, frame_rgb: np.ndarray, min_face_px: float | None = None,
               max_face_px: float | None = None) -> list[Box]:
        """Faces in an RGB (or grey) uint8 frame, largest first (empty list when none).

        ``frame_rgb`` may also be a lazy frame (``mmrphys.video.frame``), whose grey image is used.
        ``min_face_px`` (frame pixels) raises the smallest face searched for, e.g. while tracking a
        face of known size: the cascade's cost falls steeply with fewer, larger scales; the frame is
        then also downscaled further (``TRACK_MIN_FACE_PX``). ``max_face_px`` bounds the largest face.
        """
        return self._detect(frame_rgb, min_face_px, max_face_px, coarse=False)

    def _detect(self, frame_rgb, min_face_px, max_face_px, coarse: bool) -> list[Box]:
        gray_of = getattr(frame_rgb, "gray", None)
        frame = gray_of() if callable(gray_of) else np.asarray(frame_rgb)
        if frame.ndim == 3 and frame.shape[2] == 3:
            gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        elif frame.ndim == 3:
            gray = np.ascontiguousarray(frame[..., 0])
        else:
            gray = frame
        if gray.dtype != np.uint8:
            gray = cv2.normalize(gray, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        h, w = gray.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if min_face_px:
            s = min(s, TRACK_MIN_FACE_PX / float(min_face_px))
        if coarse:
            s = min(s, DISCOVER_MIN_FACE_PX / max(1.0, self.min_size * min(h, w)))
        boxes = self._search(gray, s, min_face_px, max_face_px, self.min_size)
        if boxes or coarse:
            return boxes
        # nothing at the usual scale: faces below min_size, or below the cascade's window after the
        # downscale, are searched once more on a finer image (a face found above never pays for this)
        # the smallest face searched for at TRACK_MIN_FACE_PX (twice the cascade's window: smaller faces
        # are found unreliably), the tracked face's or SMALL_FACE_FRACTION of the shorter side
        smallest = float(min_face_px) if min_face_px else SMALL_FACE_FRACTION * min(h, w)
        fine = max(s, min(1.0, TRACK_MIN_FACE_PX / smallest))
        if (fine > s or smallest < self.min_size * min(h, w)) and self._fine_due():
            boxes = self._search(gray, fine, min_face_px, max_face_px, SMALL_FACE_FRACTION)
            self._fine_misses = 0 if boxes else self._fine_misses + 1
        return boxes

    def _fine_due(self) -> bool:
        """Whether the finer search runs now (see ``FINE_RETRIES``)."""
        if self._fine_misses < FINE_RETRIES:
            return True
        self._fine_skipped = (self._fine_skipped + 1) % FINE_BACKOFF
        return self._fine_skipped == 0

    def _search(self, gray, s: float, min_face_px, max_face_px, min_size: float) -> list[Box]:
        """The cascades on ``gray`` downscaled by ``s``; faces of at least ``min_size`` of the shorter
        side (and ``min_face_px``, frame pixels), boxes in frame pixels, largest first."""
        h, w = gray.shape[:2]
        if s < 1.0:
            size = (max(1, round(w * s)), max(1, round(h * s)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        min_px = max(20, int(min_size * min(gray.shape[:2])))
        if min_face_px:
            min_px = max(min_px, int(min_face_px * s))
        min_px = min(min_px, min(gray.shape[:2]) - 1)
        max_px = int(max_face_px * s) + 1 if max_face_px else 0
        max_size = (max_px, max_px) if max_px > min_px else (0, 0)
        rects, neighbours = (), ()
        for cascade in self._cascades:
            rects, neighbours = cascade.detectMultiScale2(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(min_px, min_px), maxSize=max_size)
            if len(rects):
                break
        boxes = [Box(float(x / s), float(y / s), float(bw / s), float(bh / s), float(n))
                 for (x, y, bw, bh), n in zip(np.reshape(rects, (-1, 4)), np.ravel(neighbours))]
        return sorted(boxes, key=lambda b: -b.area)
