"""A label signal on its own time base (kept apart from the loaders so that alignment needs no loader)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Signal(NamedTuple):
    """A label signal on its own time base: sample times ``t`` (s) when known, else a rate ``fs``.

    Neither (both None) means "one sample per frame, same interval as the video" (the rPPG-Toolbox's
    assumption, used by index resampling), unless ``spans_video``: the samples span the video at a
    rate nobody knows (a generic CSV without a time column), so their count says nothing about
    the video's length (see :func:`mmrphys.data.align.check_lengths`).
    """

    values: np.ndarray
    t: np.ndarray | None = None
    fs: float | None = None
    spans_video: bool = False

    def times(self) -> np.ndarray | None:
        """Sample times in seconds (from ``t``, else ``arange / fs``), or None when unknown."""
        if self.t is not None:
            return np.asarray(self.t, dtype=float)
        if self.fs:
            return np.arange(len(self.values)) / float(self.fs)
        return None
