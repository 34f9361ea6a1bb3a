"""Bland–Altman agreement statistics and plot (matplotlib, Agg canvas: no display needed).

Conventions follow the rPPG-Toolbox: differences are ``gt − pred``, SD is the sample SD (ddof=1), limits
of agreement are bias ± 1.96·SD, and with ``averaged=True`` (the toolbox's evaluation setting, for
values averaged over several observations per subject) the corrected SD √2·SD is used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrphys.errors import InputError
from mmrphys.signals.metrics import _pair

__all__ = ["bland_altman", "plot_bland_altman"]


def bland_altman(pred, gt, averaged: bool = False, nan_policy: str = "raise") -> dict:
    """Bland–Altman data: ``means``, ``diffs`` (gt − pred) and ``bias``, ``sd``, ``loa_low``, ``loa_high``.

    ``sd`` is the SD used for the limits (√2-corrected when ``averaged``); ``sd_diff`` is the plain one.
    Needs at least 2 pairs.
    """
    p, g = _pair(pred, gt, nan_policy)
    if p.size < 2:
        raise InputError(f"bland_altman: need at least 2 pairs, got {p.size}")
    diffs = g - p
    means = (g + p) / 2.0
    bias = float(diffs.mean())
    sd_diff = float(diffs.std(ddof=1))
    sd = float(np.sqrt(2.0) * sd_diff) if averaged else sd_diff
    return {
        "means": means, "diffs": diffs, "n": int(p.size), "bias": bias, "sd_diff": sd_diff, "sd": sd,
        "loa_low": bias - 1.96 * sd, "loa_high": bias + 1.96 * sd, "averaged": bool(averaged),
    }


def plot_bland_altman(pred, gt, path=None, averaged: bool = False, units: str = "bpm",
                      title: str = "", nan_policy: str = "raise"):
    """Scatter (pred vs gt) and difference (Bland–Altman) panels; saved to ``path`` when given.

    Returns the matplotlib Figure. Uses a bare Agg canvas, so it works headless and leaves pyplot alone.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ba = bland_altman(pred, gt, averaged=averaged, nan_policy=nan_policy)
    p, g = _pair(pred, gt, nan_policy)
    fig = Figure(figsize=(9, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(1, 2)
    ax1.scatter(g, p, s=18, alpha=0.7)
    lims = [min(g.min(), p.min()), max(g.max(), p.max())]
    ax1.plot(lims, lims, "k--", lw=1, label="y = x")
    ax1.set_xlabel(f"ground truth [{units}]")
    ax1.set_ylabel(f"estimate [{units}]")
    ax1.legend(loc="best")
    ax1.grid(alpha=0.3)
    ax2.scatter(ba["means"], ba["diffs"], s=18, alpha=0.7)
    ax2.axhline(ba["bias"], color="k", lw=1, label=f"bias {ba['bias']:.2f}")
    sd_note = "√2·SD" if averaged else "SD"
    ax2.axhline(ba["loa_high"], color="k", ls="--", lw=1, label=f"bias ± 1.96·{sd_note}")
    ax2.axhline(ba["loa_low"], color="k", ls="--", lw=1)
    ax2.set_xlabel(f"mean of ground truth and estimate [{units}]")
    ax2.set_ylabel(f"ground truth − estimate [{units}]")
    ax2.legend(loc="best")
    ax2.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150)
    return fig
