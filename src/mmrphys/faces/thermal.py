"""Face boxes in thermal frames: the warm head above the shoulders.

OpenCV's Haar cascades were trained on visible-light faces; on a contrast-normalised thermal frame
the eyes and brows that they key on are not dark, and they find few faces (measured on synthetic
thermal clips: see docs/main_job.md). :class:`WarmFaceDetector` instead segments the warm region
(skin and hair are warmer than a room), takes the largest warm blob, scans it from the top to find
the head's width, and places a face box of detector proportions on the head (side ≈ 1.05 × head
width, centre ≈ 0.68 head widths below the top of the head), so that the tracker's square ×1.5
crop frames a thermal face as it frames a detected RGB face.

Assumes one upright person warmer than the background (the usual thermal-camera setting); a hot
object above the head or a face cooler than the room is not handled.
"""

from __future__ import annotations

import cv2
import numpy as np

from mmrphys.faces.detect import Box

#: Face box side and centre (below the top of the head) in head widths; from head proportions (a
#: head is ~1.25 widths tall with the eyes half-way) and checked on synthetic thermal faces.
BOX_SIDE_PER_HEAD = 1.05
BOX_CENTRE_PER_HEAD = 0.68
#: Frames are segmented at this longest side (the box only needs a few pixels of precision).
SEGMENT_MAX_SIDE = 160


def normalised_u8(img: np.ndarray) -> np.ndarray:
    """A float image stretched between its 1st and 99.5th percentiles to uint8 (flat -> zeros)."""
    img = np.asarray(img, dtype=np.float32)
    lo, hi = np.percentile(img, [1.0, 99.5])
    if not hi > lo:
        return np.zeros(img.shape, np.uint8)
    return np.clip((img - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def _thermal_image(frame) -> np.ndarray:
    get = getattr(frame, "thermal", None)
    img = get() if callable(get) else np.asarray(frame)
    if img.ndim == 3:
        img = img.mean(axis=2)
    return np.asarray(img, dtype=np.float32)


class WarmFaceDetector:
    """``detect(frame) -> list[Box]`` on thermal frames (a float (H, W) array in any unit, or a lazy
    frame with ``.thermal()``); the same interface as :class:`~mmrphys.faces.FaceDetector`.

    ``min_size``: smallest head width as a fraction of the frame's shorter side.
    """

    backend = "warm-region"

    def __init__(self, min_size: float = 0.08, max_side: int = SEGMENT_MAX_SIDE):
        self.min_size = float(min_size)
        self.max_side = int(max_side)

    def detect(self, frame, min_face_px: float | None = None, max_face_px: float | None = None) -> list[Box]:
        img = _thermal_image(frame)
        h, w = img.shape
        s = min(1.0, self.max_side / max(h, w))
        if s < 1.0:
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
        u8 = cv2.GaussianBlur(normalised_u8(img), (0, 0), 1.0)
        if int(u8.max()) - int(u8.min()) < 16:  # no contrast: no warm body in view
            return []
        _, warm = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        warm = cv2.morphologyEx(warm, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(warm, connectivity=8)
        if n < 2:
            return []
        k = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        blob = labels == k
        if blob.all():  # the whole frame is "warm": nothing stands out
            return []
        head = self._head(blob)
        if head is None:
            return []
        top, x0, x1 = head
        width = (x1 - x0) / s
        if width < self.min_size * min(h, w):
            return []
        side = BOX_SIDE_PER_HEAD * width
        cx, cy = (x0 + x1) / 2 / s, top / s + BOX_CENTRE_PER_HEAD * width
        box = Box(float(cx - side / 2), float(cy - side / 2), float(side), float(side), float(blob.sum()))
        if (min_face_px and side < 0.8 * min_face_px) or (max_face_px and side > 1.25 * max_face_px):
            return []
        return [box]

    @staticmethod
    def _head(blob: np.ndarray):
        """(top row, left, right) of the head: scanned from the top of the blob until one running
        head width below it (the chin); None for a blob without rows."""
        rows = np.flatnonzero(blob.any(axis=1))
        if rows.size == 0:
            return None
        top = int(rows[0])
        left, right, widest = None, None, 0
        for y in range(top, int(rows[-1]) + 1):
            cols = np.flatnonzero(blob[y])
            if cols.size == 0:
                continue
            a, b = int(cols[0]), int(cols[-1]) + 1
            if b - a > widest:
                widest = b - a
            left = a if left is None else min(left, a)
            right = b if right is None else max(right, b)
            if y - top >= widest:
                break
        return top, left, right
