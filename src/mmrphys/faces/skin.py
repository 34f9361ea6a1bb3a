"""Skin-coloured pixels of a face crop and their mean colour (OpenCV only, no SciPy).

Thresholds of Chai & Ngan (1999) in YCrCb: Cr 133–173, Cb 77–127. Used per frame by the main job and
by ``mmrphys.signals.unsupervised.traces`` (which re-exports them for the colour-trace API).
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
    """Mean (R, G, B) of the skin pixels of a uint8 RGB image; the whole image's mean where under
    ``min_skin_fraction`` of it is skin."""
    img = np.ascontiguousarray(img, dtype=np.uint8)
    mask = skin_mask_u8(img)
    if cv2.countNonZero(mask) >= min_skin_fraction * mask.size:
        return np.array(cv2.mean(img, mask=mask)[:3], dtype=np.float64)
    return np.array(cv2.mean(img)[:3], dtype=np.float64)
