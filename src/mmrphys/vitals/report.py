"""PNG report: frame with the face box, BVP and respiration traces, spectra with peaks, rolling rates."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def _spectrum(x: np.ndarray, fs: float):
    from scipy import signal as sps

    x = x[np.isfinite(x)]
    if x.size < 16:
        return np.zeros(0), np.zeros(0)
    nfft = 1 << int(math.ceil(math.log2(max(x.size, 256) * 4)))
    f, p = sps.periodogram(x - x.mean(), fs=fs, nfft=nfft, window="hann")
    return f * 60.0, p / (p.max() or 1.0)


def write_report(result, path) -> Path:
    """Draw the report of a :class:`~mmrphys.vitals.result.Result` to ``path`` (PNG, matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    t, fs = result.timestamps_s, result.fps
    fig = plt.figure(figsize=(12, 8), dpi=90)
    gs = fig.add_gridspec(3, 3, width_ratios=[1, 1.4, 1.4], hspace=0.45, wspace=0.3)

    ax = fig.add_subplot(gs[0, 0])
    if result.report_frame is not None:
        ax.imshow(result.report_frame)
        if result.report_box is not None:
            x0, y0, x1, y1 = result.report_box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=2))
    else:
        ax.text(0.5, 0.5, "no face found", ha="center", va="center")
    ax.set_axis_off()
    ax.set_title("face crop (square ×1.5)", fontsize=9)

    hr, rr = result.heart_rate_bpm, result.respiratory_rate_bpm
    q = result.quality
    lines = [f"HR  {hr:.1f} bpm" if math.isfinite(hr) else "HR  n/a",
             f"RR  {rr:.1f} /min" if math.isfinite(rr) else "RR  n/a",
             f"signal quality {q.get('signal_quality', float('nan')):.2f}",
             f"face in {100 * q.get('face_detected_fraction', 0):.0f}% of frames",
             f"method {result.method}", f"{result.duration_s:.1f} s at {fs:.2f} fps"]
    for w in q.get("warnings", [])[:4]:
        lines.append("! " + (w if len(w) < 60 else w[:57] + "..."))
    axt = fig.add_subplot(gs[1:, 0])
    axt.set_axis_off()
    axt.text(0.0, 1.0, "\n".join(lines), va="top", family="monospace", fontsize=9)

    span = result.analysis_span
    ax = fig.add_subplot(gs[0, 1:])
    ax.plot(t, result.bvp, lw=0.8, color="crimson")
    if span:
        ax.axvspan(t[span[0]], t[span[1] - 1], color="0.9", zorder=0)
    ax.set_title("blood volume pulse (BVP)", fontsize=9)
    ax.set_xlabel("time (s)")
    ax.set_yticks([])

    ax = fig.add_subplot(gs[1, 1])
    if result.rsp is not None:
        ax.plot(t, result.rsp, lw=0.8, color="teal")
    ax.set_title(f"respiration ({result.rsp_source or 'n/a'})", fontsize=9)
    ax.set_xlabel("time (s)")
    ax.set_yticks([])

    ax = fig.add_subplot(gs[1, 2])
    seg = slice(*span) if span else slice(None)
    f, p = _spectrum(result.bvp[seg], fs)
    if f.size:
        keep = (f >= 36) & (f <= 200)
        ax.plot(f[keep], p[keep], color="crimson", lw=1, label="BVP")
    if result.rsp is not None:
        f2, p2 = _spectrum(result.rsp[seg], fs)
        if f2.size:
            keep = (f2 >= 4) & (f2 <= 40)
            ax.plot(f2[keep], p2[keep], color="teal", lw=1, label="resp.")
    if math.isfinite(hr):
        ax.axvline(hr, color="crimson", ls="--", lw=0.8)
    if math.isfinite(rr):
        ax.axvline(rr, color="teal", ls="--", lw=0.8)
    ax.set_title("spectra (dashed: chosen rates)", fontsize=9)
    ax.set_xlabel("per minute")
    ax.set_yticks([])
    ax.legend(fontsize=7)

    ax = fig.add_subplot(gs[2, 1:])
    if result.rolling:
        rt = [r["time_s"] for r in result.rolling]
        rh = [np.nan if r["heart_rate_bpm"] is None else r["heart_rate_bpm"] for r in result.rolling]
        rrr = [np.nan if r["respiratory_rate_bpm"] is None else r["respiratory_rate_bpm"]
               for r in result.rolling]
        ax.plot(rt, rh, ".-", color="crimson", ms=3, label="HR (bpm)")
        ax.plot(rt, rrr, ".-", color="teal", ms=3, label="RR (/min)")
        ax.legend(fontsize=7)
    ax.set_title("rolling rates", fontsize=9)
    ax.set_xlabel("time (s)")
    fig.savefig(path)
    plt.close(fig)
    return path
