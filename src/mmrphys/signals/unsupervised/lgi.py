"""LGI (Pilz et al., 2018) as in the rPPG-Toolbox: remove the dominant colour direction (first left
singular vector of the 3×T RGB matrix, not mean-centred) and keep the green row. No filtering."""

from __future__ import annotations

import numpy as np

from mmrphys.signals.unsupervised._common import as_rgb


def lgi(rgb, fs: float | None = None) -> np.ndarray:
    """BVP (T,) by LGI from a (T, 3) mean-RGB trace (fs unused)."""
    x = as_rgb(rgb).T  # (3, T)
    u = np.linalg.svd(x, full_matrices=False)[0][:, :1]
    projected = (np.eye(3) - u @ u.T) @ x
    return projected[1]
