"""Face tracking for video: detect every N frames, glide between detections, bridge short gaps."""

from __future__ import annotations

import numpy as np

from mmrphys.faces.crop import square_box
from mmrphys.faces.detect import Box, FaceDetector


def _iou(a, b) -> float:
    ax0, ay0, aw, ah = a[:4]
    bx0, by0, bw, bh = b[:4]
    ix = max(0.0, min(ax0 + aw, bx0 + bw) - max(ax0, bx0))
    iy = max(0.0, min(ay0 + ah, by0 + bh) - max(ay0, by0))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


class FaceTracker:
    """Per-frame face box from detections every ``every_n`` frames.

    ``update(frame, index)`` returns the training crop ``(x0, y0, x1, y1)`` (square ×``scale``) or
    ``None`` when no face is known. Between detections the box glides linearly to the latest
    detection over ``every_n`` frames (no jumps that would show up as a pulse-band step in the
    colour traces); moves below ``deadband`` (fraction of the box side) are ignored to keep the crop
    still. When a scheduled detection fails, the detector retries every ``every_n // 3`` frames and
    the last box is kept (bridged) for up to ``max_gap`` frames; after that ``update`` returns
    ``None`` until a face is found again. ``gaps`` lists ``(start, end, bridged)`` frame ranges
    (end exclusive; ``end`` is None while a gap is still open) counted from the first failed
    detection. With several faces the one overlapping the tracked face is kept, else the largest.
    """

    def __init__(self, detector: FaceDetector | None = None, every_n: int = 30, scale: float = 1.5,
                 max_gap: int = 45, deadband: float = 0.04):
        self.detector = detector or FaceDetector()
        self.every_n = max(1, int(every_n))
        self.scale = float(scale)
        self.max_gap = int(max_gap)
        self.deadband = float(deadband)
        self.retry_every = max(1, self.every_n // 3)
        self.n_detections = 0  # detector calls
        self.n_found = 0  # calls that found a face
        self.frames_with_face = 0
        self.frames_seen = 0
        self.gaps: list[tuple[int, int | None, bool]] = []
        self.last_detection: Box | None = None
        self._box: np.ndarray | None = None  # current (x, y, w, h)
        self._step = np.zeros(4)
        self._ramp_left = 0
        self._next_detect = 0
        self._fail_since: int | None = None

    @property
    def lost(self) -> bool:
        return self._box is None

    def _choose(self, boxes: list[Box]) -> Box:
        if self._box is not None and len(boxes) > 1:
            best = max(boxes, key=lambda b: _iou(b, self._box))
            if _iou(best, self._box) > 0.3:
                return best
        return boxes[0]  # largest

    def _accept(self, det: Box, index: int) -> None:
        target = np.array(det[:4], dtype=float)
        if self._box is None:
            self._box = target
            self._ramp_left = 0
        else:
            side = max(self._box[2], self._box[3])
            move = np.abs(target - self._box).max() / side
            if move > 0.5:  # a different place entirely (cut, new person): snap
                self._box = target
                self._ramp_left = 0
            elif move > self.deadband:
                self._step = (target - self._box) / self.every_n
                self._ramp_left = self.every_n
        if self._fail_since is not None:
            start = self._fail_since
            self.gaps.append((start, index, index - start <= self.max_gap))
            self._fail_since = None

    def update(self, frame: np.ndarray, index: int):
        """Box for frame ``index`` (frames must come in increasing order)."""
        self.frames_seen += 1
        if index >= self._next_detect:
            # while tracking, look only for faces of 60-170 % of the tracked size (much faster)
            min_face = max_face = None
            if self._box is not None:
                min_face = 0.6 * min(self._box[2], self._box[3])
                max_face = 1.7 * max(self._box[2], self._box[3])
            boxes = self.detector.detect(frame, min_face_px=min_face, max_face_px=max_face)
            self.n_detections += 1
            if boxes:
                self.n_found += 1
                self.last_detection = self._choose(boxes)
                self._accept(self.last_detection, index)
                self._next_detect = index + self.every_n
            else:
                if self._fail_since is None:
                    self._fail_since = index
                self._next_detect = index + self.retry_every
        if self._fail_since is not None and index - self._fail_since >= self.max_gap:
            self._box = None  # long gap: forget the box so a re-found face is snapped to, not glided to
            self._ramp_left = 0
        if self._box is None:
            return None
        if self._ramp_left > 0:
            self._box = self._box + self._step
            self._ramp_left -= 1
        self.frames_with_face += 1
        return square_box(self._box, self.scale, frame.shape[:2])

    def finish(self, n_frames: int) -> list[tuple[int, int, bool]]:
        """Close an open gap at ``n_frames`` and return all gaps ``(start, end, bridged)``."""
        if self._fail_since is not None:
            start = self._fail_since
            self.gaps.append((start, n_frames, n_frames - start <= self.max_gap))
            self._fail_since = None
        return list(self.gaps)
