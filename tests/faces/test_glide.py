"""How the box moves between detections: the linear glide and the smooth (Hann-speed) glide."""

from __future__ import annotations

import numpy as np
import pytest

from mmrphys.errors import ConfigError
from mmrphys.faces.track import SMOOTH_GLIDE_INTERVALS, FaceTrack, MultiFaceTracker

EVERY = 10
SHAPE = (1000, 1000)


def _path(glide: str, targets: list[tuple[int, float]], n_frames: int) -> np.ndarray:
    """x of the box per frame with detections ``(frame, x)`` of a 100 px face (no detector needed)."""
    track = FaceTrack(1, 0, every_n=EVERY, glide=glide)
    xs, pending = [], dict(targets)
    for i in range(n_frames):
        if i in pending:
            track.accept((pending[i], 100.0, 100.0, 100.0), i)
        track.advance(i, SHAPE)
        xs.append(track.box[0])
    return np.asarray(xs)


@pytest.mark.parametrize("glide", ["linear", "smooth"])
def test_the_box_arrives_at_the_detection(glide):
    x = _path(glide, [(0, 100.0), (EVERY, 120.0)], 4 * EVERY)
    assert x[EVERY - 1] == 100.0  # no move before the second detection
    # the whole 20 px move is made (float sums of n steps: exact to ~1e-12 px)
    assert x[-1] == pytest.approx(120.0, abs=1e-9)
    assert np.all(np.diff(x) >= -1e-12)  # monotone: no overshoot


def test_smooth_glide_has_no_speed_steps():
    lin = np.diff(_path("linear", [(0, 100.0), (EVERY, 120.0), (2 * EVERY, 140.0)], 6 * EVERY))
    smo = np.diff(_path("smooth", [(0, 100.0), (EVERY, 120.0), (2 * EVERY, 140.0)], 6 * EVERY))
    # linear: the speed jumps from 0 to the full 2 px/frame at once
    assert np.abs(np.diff(lin)).max() == pytest.approx(20.0 / EVERY)
    # smooth: each 20 px move is a Hann bump over 2 intervals (peak speed 2 * 20 / 21 px/frame); its
    # speed changes per frame by at most 20 * 2 pi / 21 / 21 ~ 0.29 px/frame (overlapping bumps add)
    assert np.abs(np.diff(smo)).max() < 0.35
    assert smo.max() < 2.1
    n = int(SMOOTH_GLIDE_INTERVALS * EVERY)
    assert np.abs(smo[2 * EVERY + n:]).max() == 0.0  # done within 2 intervals of the last detection


def test_small_moves_are_ignored_by_both():
    for glide in ("linear", "smooth"):
        x = _path(glide, [(0, 100.0), (EVERY, 103.0)], 3 * EVERY)  # 3 % of the side < 4 % deadband
        assert np.all(x == 100.0)


def test_unknown_glide_is_refused():
    with pytest.raises(ConfigError, match="glide"):
        FaceTrack(1, 0, glide="cubic")
    with pytest.raises(ConfigError, match="glide"):  # at construction, before any face is followed
        MultiFaceTracker(glide="cubic")
