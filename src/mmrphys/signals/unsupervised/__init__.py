"""Classic unsupervised rPPG methods: ``METHODS[name](rgb, fs) -> bvp`` with rgb a (T, 3) mean-RGB trace
(made from frames and face boxes by :mod:`mmrphys.faces.traces`; the signals stage never imports faces).

Parameters follow the rPPG-Toolbox (see each module). GREEN, LGI, PBV and OMIT return unfiltered
signals, as the toolbox does; evaluate them with a preset that band-passes (e.g. ``heart_rate(bvp, fs,
preset="toolbox")``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.signals.unsupervised.chrom import chrom
from mmrphys.signals.unsupervised.green import green
from mmrphys.signals.unsupervised.ica import ica, jade
from mmrphys.signals.unsupervised.lgi import lgi
from mmrphys.signals.unsupervised.omit import omit
from mmrphys.signals.unsupervised.pbv import pbv
from mmrphys.signals.unsupervised.pos import pos

METHODS: dict[str, Callable[..., np.ndarray]] = {
    "green": green, "ica": ica, "chrom": chrom, "pos": pos, "lgi": lgi, "pbv": pbv, "omit": omit,
}


def get_method(name: str) -> Callable[..., np.ndarray]:
    """The method function for ``name`` (case-insensitive)."""
    try:
        return METHODS[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown unsupervised method {name!r}; choose from {sorted(METHODS)}") from None


__all__ = ["METHODS", "get_method", "green", "ica", "chrom", "pos", "lgi", "pbv", "omit", "jade"]
