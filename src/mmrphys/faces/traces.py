"""Mean-RGB traces of a face box, the input of the unsupervised methods (``mmrphys.signals.unsupervised``).

The rPPG-Toolbox averages the whole crop (face box ×1.5, hair and background included). ``skin=True``
averages only skin-coloured pixels (YCrCb thresholds Cr 133–173, Cb 77–127 of Chai & Ngan, 1999; see
:mod:`mmrphys.faces.skin`), falling back to the whole box in frames where under ``min_skin_fraction`` of
its pixels are skin.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from mmrphys.errors import InputError
from mmrphys.faces.skin import skin_mask_u8, skin_mean_rgb

__all__ = ["skin_mask", "mean_rgb", "rgb_trace"]


def skin_mask(frame_rgb: np.ndarray) -> np.ndarray:
    """Boolean (H, W) mask of skin-coloured pixels of a uint8 RGB image."""
    return skin_mask_u8(np.ascontiguousarray(frame_rgb, dtype=np.uint8)) > 0


def mean_rgb(frame_rgb, xyxy=None, skin: bool = False, min_skin_fraction: float = 0.05) -> np.ndarray:
    """Mean (R, G, B) of a frame (H, W, 3), within box ``xyxy = (x0, y0, x1, y1)`` when given."""
    frame = np.asarray(frame_rgb)
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise InputError(f"mean_rgb: expected an (H, W, 3) RGB frame, got shape {frame.shape}")
    if xyxy is not None:
        h, w = frame.shape[:2]
        x0, y0, x1, y1 = (int(round(v)) for v in xyxy)
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1 <= x0 or y1 <= y0:
            raise InputError(f"mean_rgb: box {tuple(xyxy)} is empty inside a {w}x{h} frame")
        frame = frame[y0:y1, x0:x1]
    if frame.size == 0:
        raise InputError("mean_rgb: empty frame")
    # cv2.mean is ~10x faster than numpy on uint8 crops; other dtypes go through float32
    img = np.ascontiguousarray(frame if frame.dtype == np.uint8 else frame.astype(np.float32))
    if skin:
        return skin_mean_rgb(img, min_skin_fraction)
    return np.array(cv2.mean(img)[:3], dtype=np.float64)


def rgb_trace(frames: Iterable, boxes=None, skin: bool = False) -> np.ndarray:
    """(T, 3) mean-RGB trace of an iterable of frames; ``boxes`` is None or one xyxy (or None) per frame."""
    out = []
    box_iter = iter(boxes) if boxes is not None else None
    for i, frame in enumerate(frames):
        box = next(box_iter, None) if box_iter is not None else None
        try:
            out.append(mean_rgb(frame, box, skin=skin))
        except InputError as exc:
            raise InputError(f"frame {i}: {exc}") from None
    if not out:
        raise InputError("rgb_trace: no frames")
    return np.stack(out)
