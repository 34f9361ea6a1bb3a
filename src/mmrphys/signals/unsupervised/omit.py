"""OMIT (Álvarez Casado & Bordallo López, 2023) as in the rPPG-Toolbox: QR-decompose the 3×T RGB matrix,
project out the first orthonormal column and keep the green row. No filtering."""

from __future__ import annotations

import numpy as np

from mmrphys.signals.unsupervised._common import as_rgb


def omit(rgb, fs: float | None = None) -> np.ndarray:
    """BVP (T,) by OMIT from a (T, 3) mean-RGB trace (fs unused)."""
    x = as_rgb(rgb).T  # (3, T)
    q = np.linalg.qr(x)[0][:, :1]
    projected = (np.eye(3) - q @ q.T) @ x
    return projected[1]
