"""The training crop: square box about the face, enlarged, clipped to the frame, resized by area."""

from __future__ import annotations

import cv2
import numpy as np


def square_box(box, scale: float = 1.5, frame_shape=None) -> tuple[int, int, int, int]:
    """Square ``(x0, y0, x1, y1)`` around ``box`` (a Box or ``(x, y, w, h)``).

    Side = ``max(w, h) * scale``, centred on the box centre, then clipped to ``frame_shape`` (H, W).
    Clipping keeps the crop inside the frame, so near a border it is no longer square; ``crop_resize``
    still returns a square image (as the rPPG-Toolbox does).
    """
    x, y, w, h = (float(v) for v in tuple(box)[:4])
    side = max(w, h) * scale
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
    if frame_shape is not None:
        fh, fw = int(frame_shape[0]), int(frame_shape[1])
        x0, y0 = max(0, x0), max(0, y0)
        x1, y1 = min(fw, x1), min(fh, y1)
    return x0, y0, max(x0 + 1, x1), max(y0 + 1, y1)


def crop_resize(frame: np.ndarray, xyxy, size: int) -> np.ndarray:
    """Crop ``frame[y0:y1, x0:x1]`` and resize to ``size``×``size`` with cv2.INTER_AREA (uint8 out)."""
    x0, y0, x1, y1 = (int(v) for v in xyxy)
    h, w = frame.shape[:2]
    x0, y0 = min(max(0, x0), w - 1), min(max(0, y0), h - 1)
    x1, y1 = max(x0 + 1, min(w, x1)), max(y0 + 1, min(h, y1))
    roi = frame[y0:y1, x0:x1]
    out = cv2.resize(roi, (int(size), int(size)), interpolation=cv2.INTER_AREA)
    if out.ndim == 2:
        out = out[..., None]
    return out
