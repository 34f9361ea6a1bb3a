"""Skin-coloured pixels of a face crop and their mean colour (OpenCV only, no SciPy).

Thresholds of Chai & Ngan (1999) in YCrCb: Cr 133–173, Cb 77–127. Used per frame by the main job and
by :mod:`mmrphys.faces.traces` (the colour traces of the unsupervised methods).
"""

from __future__ import annotations

import cv2
import numpy as np

CR_RANGE = (133, 173)
CB_RANGE = (77, 127)


def skin_mask_u8(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W) mask, 255 on skin-coloured pixels of a contiguous uint8 RGB image."""
    ycrcb = cv2.cvtColor(img, cv2.COLOR_RGB2YCrCb)
    return cv2.inRange(ycrcb, (0, CR_RANGE[0], CB_RANGE[0]), (255, CR_RANGE[1], CB_RANGE[1]))


def skin_mean_rgb(img: np.ndarray, min_skin_fraction: float = 0.05) -> np.ndarray:
    """Mean (R, G, B) of the skin pixels of an RGB image (uint8, or float32 in 0–255: the mask is taken
    from its values clipped to uint8); the whole image's mean where under ``min_skin_fraction`` of it
    is skin."""
    img = np.ascontiguousarray(img if img.dtype in (np.uint8, np.float32) else img.astype(np.float32))
    u8 = img if img.dtype == np.uint8 else np.clip(img, 0, 255).astype(np.uint8)
    mask = skin_mask_u8(u8)
    if cv2.countNonZero(mask) >= min_skin_fraction * mask.size:
        return np.array(cv2.mean(img, mask=mask)[:3], dtype=np.float64)
    return np.array(cv2.mean(img)[:3], dtype=np.float64)
