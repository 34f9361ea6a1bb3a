"""PNG report: frame with the face box, BVP and respiration traces, spectra with peaks, rolling rates,
the confidence of each vital and every warning.

Drawn on a :class:`matplotlib.figure.Figure` with its own Agg canvas: the process-wide matplotlib
backend (``matplotlib.use``) and pyplot's figure registry are left alone.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

#: The summary line and the PNG report mark a vital whose confidence (0-1) is below this
#: (also ``mmrphys.vitals.result.LOW_CONFIDENCE``): the threshold below which the main job warns,
#: ``mmrphys.signals.quality.CONFIDENCE_THRESHOLD``, spelled out so that importing the result does
#: not import SciPy (tested equal).
LOW_CONFIDENCE = 0.3
#: Warnings listed in the report (the rest are counted); each wrapped to this many characters.
REPORT_WARNINGS = 8
WARNING_WIDTH = 52


def _spectrum(x: np.ndarray, fs: float):
    from scipy import signal as sps

    x = x[np.isfinite(x)]
    if x.size < 16:
        return np.zeros(0), np.zeros(0)
    nfft = 1 << int(math.ceil(math.log2(max(x.size, 256) * 4)))
    f, p = sps.periodogram(x - x.mean(), fs=fs, nfft=nfft, window="hann")
    return f * 60.0, p / (p.max() or 1.0)


def _summary_lines(result) -> list[tuple[str, str]]:
    """(text, colour) lines of the report's text panel: rates with their confidence, then warnings."""
    hr, rr = result.heart_rate_bpm, result.respiratory_rate_bpm
    q = result.quality
    lines: list[tuple[str, str]] = []
    vitals = (("HR", hr, "bpm", "heart_rate"), ("RR", rr, "/min", "respiratory_rate"))
    for label, value, unit, vital in vitals:
        if value is None or not math.isfinite(value):
            lines.append((f"{label}  n/a", "black"))
            continue
        conf = result.confidence_of(vital) if hasattr(result, "confidence_of") else None
        low = conf is not None and conf < LOW_CONFIDENCE
        lines.append((f"{label}  {value:.1f} {unit}", "firebrick" if low else "black"))
        if conf is not None:
            lines.append((f"    {'LOW CONFIDENCE' if low else 'confidence'} {conf:.2f}",
                          "firebrick" if low else "dimgray"))
    sq = q.get("signal_quality")
    lines += [(f"signal quality {sq:.2f}" if isinstance(sq, (int, float)) and math.isfinite(sq)
               else "signal quality n/a", "black"),
              (f"face in {100 * (q.get('face_detected_fraction') or 0):.0f}% of frames", "black"),
              (f"method {result.method}", "black"),
              (f"{result.duration_s:.1f} s at {result.fps:.2f} fps", "black")]
    warnings = list(q.get("warnings", []) or [])
    if warnings:
        lines.append(("", "black"))
        lines.append((f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}:", "firebrick"))
    for w in warnings[:REPORT_WARNINGS]:
        wrapped = textwrap.wrap(str(w), WARNING_WIDTH) or [""]
        lines.append(("! " + wrapped[0], "firebrick"))
        lines += [("  " + more, "firebrick") for more in wrapped[1:]]
    if len(warnings) > REPORT_WARNINGS:
        lines.append((f"  ... and {len(warnings) - REPORT_WARNINGS} more (see the JSON)", "firebrick"))
    return lines


def render_report(result, target) -> None:
    """Draw the report of a :class:`~mmrphys.vitals.result.Result` as PNG into ``target`` (a path or a
    binary file object)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    t, fs = result.timestamps_s, result.fps
    faces = list(getattr(result, "faces", None) or [])
    extra_rows = len(faces) if len(faces) > 1 else 0  # one row per face when there are several
    fig = Figure(figsize=(12, 8 + 2.2 * extra_rows), dpi=90)
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(3 + extra_rows, 3, width_ratios=[1, 1.4, 1.4], hspace=0.6 if extra_rows else 0.45,
                          wspace=0.3)

    ax = fig.add_subplot(gs[0, 0])
    if result.report_frame is not None:
        ax.imshow(result.report_frame)
        if result.report_box is not None:
            x0, y0, x1, y1 = result.report_box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=2))
    else:
        ax.text(0.5, 0.5, "no face found", ha="center", va="center")
    ax.set_axis_off()
    ax.set_title("face crop (square ×1.5)" if not extra_rows else f"main face: {result.face_id}", fontsize=9)

    hr, rr = result.heart_rate_bpm, result.respiratory_rate_bpm
    axt = fig.add_subplot(gs[1:, 0])
    axt.set_axis_off()
    lines = _summary_lines(result)
    step = min(0.05, 1.0 / max(len(lines), 1))
    for i, (text, colour) in enumerate(lines):
        axt.text(0.0, 1.0 - i * step, text, va="top", family="monospace", fontsize=8.5, color=colour,
                 transform=axt.transAxes)

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
    if ax.get_legend_handles_labels()[0]:
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
    for row, face in enumerate(faces[:extra_rows]):
        _face_row(fig, gs, 3 + row, face, t)
    fig.savefig(target, format="png")


def _face_row(fig, gs, row: int, face, t) -> None:
    """One face of several: its frame with its box, its BVP with its rates and confidence."""
    from matplotlib.patches import Rectangle

    ax = fig.add_subplot(gs[row, 0])
    if face.report_frame is not None:
        ax.imshow(face.report_frame)
        if face.report_box is not None:
            x0, y0, x1, y1 = face.report_box
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="lime", lw=2))
            ax.text(x0, y0, f" {face.face_id}", color="lime", va="bottom", fontsize=10, weight="bold")
    ax.set_axis_off()

    def rate(value, unit, vital):
        if value is None or not math.isfinite(value):
            return "n/a"
        c = face.confidence_of(vital)
        return f"{value:.1f} {unit}" + ("" if c is None else f" (conf. {c:.2f})")

    ax = fig.add_subplot(gs[row, 1:])
    ax.plot(t, face.bvp, lw=0.7, color="crimson")
    main = " (main)" if face.main_face else ""
    ax.set_title(f"face {face.face_id}{main}: HR {rate(face.heart_rate_bpm, 'bpm', 'heart_rate')}, "
                 f"RR {rate(face.respiratory_rate_bpm, '/min', 'respiratory_rate')}, "
                 f"present {face.present_s or 0:.0f} s", fontsize=9)
    ax.set_xlabel("time (s)")
    ax.set_yticks([])


def write_report(result, path) -> Path:
    """Draw the report of ``result`` to ``path`` (PNG), atomically (see :meth:`Result.write_report`)."""
    return result.write_report(path)
