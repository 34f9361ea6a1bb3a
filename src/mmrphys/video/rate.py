"""Frame rates the video readers accept (files, ``fps=``, timestamps, folders of frames)."""

from __future__ import annotations

import math

from mmrphys.errors import InputError

#: Frame rates accepted from files, ``fps=`` and timestamps (frames per second).
MIN_FPS, MAX_FPS = 1.0, 1000.0


def check_fps(fps, what: str = "fps") -> float:
    """``fps`` as a float in [:data:`MIN_FPS`, :data:`MAX_FPS`]; :class:`InputError` naming ``what`` else."""
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number of frames per second, got {fps!r}") from None
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise InputError(f"{what} must be between {MIN_FPS:g} and {MAX_FPS:g} frames per second, "
                         f"got {value:g}")
    return value
