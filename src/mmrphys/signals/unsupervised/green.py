"""GREEN (Verkruysse et al., 2008): the mean green channel, unfiltered."""

from __future__ import annotations

import numpy as np

from mmrphys.signals.unsupervised._common import as_rgb


def green(rgb, fs: float | None = None) -> np.ndarray:
    """BVP (T,) = the green channel of a (T, 3) mean-RGB trace (fs unused; kept for a uniform signature)."""
    return as_rgb(rgb)[:, 1].copy()
