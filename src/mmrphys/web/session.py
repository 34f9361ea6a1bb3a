"""Re-analyse a session exported by the web app (``mmrphys analyze session FILE``).

The page exports JSON (``format: "mmrphys-web-session"``: ``timestamps_s``, ``bvp``, ``rsp``, the
rates it showed, warnings) or CSV (``t_s,bvp,rsp,hr_bpm,rr_bpm``). Here the waveforms are put on a
uniform time grid (camera frames arrive with jitter) and analysed with :mod:`mmrphys.signals`: HR, RR,
quality, rolling rates and HRV, compared with what the page showed. Writes a small JSON report and a
PNG next to the file (or in ``--out``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from mmrphys.errors import InputError

FORMAT = "mmrphys-web-session"
#: A session whose timestamps span more than this many times its sample count at its median frame
#: rate has gaps too large to bridge by interpolation.
MAX_STRETCH = 2.0


def _floats(values, name: str, path: Path) -> np.ndarray:
    try:
        arr = np.asarray([np.nan if v is None or v == "" else float(v) for v in values], dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"{path}: field {name!r} must be a list of numbers") from None
    return arr


def load_session(path) -> dict:
    """Read an exported session: ``{"t", "bvp", "rsp" (or None), "page": {...}, "meta": {...}}``."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such session file")
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            obj = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise InputError(f"{path}: not a readable JSON session ({err})") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise InputError(f"{path}: not a web-app session export (field 'format' is not {FORMAT!r})")
        for key in ("timestamps_s", "bvp"):
            if not isinstance(obj.get(key), list):
                raise InputError(f"{path}: field {key!r} is missing")
        t = _floats(obj["timestamps_s"], "timestamps_s", path)
        bvp = _floats(obj["bvp"], "bvp", path)
        rsp = _floats(obj["rsp"], "rsp", path) if isinstance(obj.get("rsp"), list) else None
        rates = obj.get("rates") or {}
        page = {"heart_rate_bpm": rates.get("heart_rate_bpm"),
                "respiratory_rate_bpm": rates.get("respiratory_rate_bpm"),
                "heart": rates.get("heart") or [], "respiratory": rates.get("respiratory") or []}
        meta = dict(obj.get("metadata") or {})
        meta["warnings"] = obj.get("warnings") or []
    elif suffix == ".csv":
        try:
            with open(path, newline="") as fh:
                rows = list(csv.DictReader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            raise InputError(f"{path}: not a readable CSV session ({err})") from None
        if not rows or not {"t_s", "bvp"} <= set(rows[0]):
            raise InputError(f"{path}: a session CSV needs the columns t_s and bvp")
        t = _floats([r["t_s"] for r in rows], "t_s", path)
        bvp = _floats([r["bvp"] for r in rows], "bvp", path)
        rsp = None
        if "rsp" in rows[0] and any(r["rsp"] not in ("", None) for r in rows):
            rsp = _floats([r["rsp"] for r in rows], "rsp", path)
        hr_col = _floats([r.get("hr_bpm", "") for r in rows], "hr_bpm", path)
        rr_col = _floats([r.get("rr_bpm", "") for r in rows], "rr_bpm", path)
        last = lambda a: float(a[np.isfinite(a)][-1]) if np.isfinite(a).any() else None  # noqa: E731
        page = {"heart_rate_bpm": last(hr_col), "respiratory_rate_bpm": last(rr_col), "heart": [],
                "respiratory": []}
        meta = {}
    else:
        raise InputError(f"{path}: expected a .json or .csv session export, got {suffix or 'no suffix'!r}")
    if t.size != bvp.size or (rsp is not None and rsp.size != t.size):
        raise InputError(f"{path}: timestamps_s, bvp and rsp must have the same length")
    return {"t": t, "bvp": bvp, "rsp": rsp, "page": page, "meta": meta, "path": path}


def _uniform(t: np.ndarray, x: np.ndarray, fs: float) -> np.ndarray:
    grid = t[0] + np.arange(int(math.floor((t[-1] - t[0]) * fs)) + 1) / fs
    ok = np.isfinite(x)
    return np.interp(grid, t[ok], x[ok])


def analyze_session(path, min_seconds: float = 8.0) -> dict:
    """Analyse an exported session; returns the report dict (rates, quality, rolling HR, HRV, page rates)."""
    from mmrphys import signals

    s = load_session(path)
    path = s["path"]
    t, bvp, rsp = s["t"], s["bvp"], s["rsp"]
    good = np.isfinite(t) & np.isfinite(bvp)
    if good.sum() < 3:
        raise InputError(f"{path}: the session has no samples")
    t, bvp = t[good], bvp[good]
    rsp = rsp[good] if rsp is not None else None
    if np.any(np.diff(t) <= 0):
        raise InputError(f"{path}: timestamps_s must increase")
    duration = float(t[-1] - t[0])
    if duration < min_seconds:
        raise InputError(f"{path}: {duration:.1f} s of signal; need at least {min_seconds:.0f} s to analyse")
    fs = float(round(1.0 / np.median(np.diff(t)), 3))
    gaps = np.diff(t) * fs
    if duration * fs > MAX_STRETCH * t.size:
        # a uniform grid over the gaps would be mostly invented samples (and could be huge)
        worst = int(np.argmax(gaps))
        raise InputError(f"{path}: timestamps_s jump by {t[worst + 1] - t[worst]:.3g} s after sample "
                         f"{worst}; {t.size} samples would span {duration:.0f} s at {fs:g} Hz")
    bvp_u = _uniform(t, bvp, fs)
    rsp_u = _uniform(t, rsp, fs) if rsp is not None and np.isfinite(rsp).sum() > 3 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", signals.SignalWarning)
        hr = signals.heart_rate(bvp_u, fs)
        quality = signals.signal_quality(bvp_u, fs, kind="hr")
        if rsp_u is not None:
            rr, rr_source = signals.respiratory_rate(rsp_u, fs), "rsp"
        else:
            rr, rr_source = signals.respiratory_rate(signals.respiration_from_bvp(bvp_u, fs), fs), "bvp"
        times, rolling = signals.rolling_rates(bvp_u, fs, window_s=min(10.0, duration), step_s=1.0, kind="hr")
        try:
            hrv = signals.hrv_from_bvp(bvp_u, fs)
        except InputError:
            hrv = {}
    clean = lambda v: None if v is None or not np.isfinite(v) else round(float(v), 3)  # noqa: E731
    page = s["page"]
    report = {
        "file": str(path),
        "method": s["meta"].get("method"),
        "model": s["meta"].get("model"),
        "fs": fs,
        "duration_s": round(duration, 3),
        "samples": int(bvp.size),
        "heart_rate_bpm": clean(hr),
        "respiratory_rate_bpm": clean(rr),
        "respiratory_rate_source": rr_source,
        "quality": clean(quality),
        "page_heart_rate_bpm": clean(page["heart_rate_bpm"]),
        "page_respiratory_rate_bpm": clean(page["respiratory_rate_bpm"]),
        "rolling": {"t_s": [round(float(v + t[0]), 3) for v in times],
                    "heart_rate_bpm": [clean(v) for v in rolling]},
        "hrv": {k: (clean(v) if isinstance(v, (int, float, np.number)) else v)
                for k, v in hrv.items() if not isinstance(v, np.ndarray)},
        "warnings": s["meta"].get("warnings", []),
    }
    report["_arrays"] = {"t": t[0] + np.arange(bvp_u.size) / fs, "bvp": bvp_u, "rsp": rsp_u, "page": page}
    return report


def _write_atomic(path: Path, write) -> None:
    """``write(tmp_path)``, then rename over ``path``: a failure leaves no half-written file.

    Raises InputError naming the file when it cannot be written (missing folder, no permission, a
    folder in the way).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise InputError(f"{path}: cannot write ({err.strerror or err})") from None
    finally:
        tmp.unlink(missing_ok=True)


def write_plot(report: dict, png) -> Path:
    """A two- or three-panel PNG: BVP, respiration (when present), rolling HR beside the page's HR.

    Drawn on a bare Figure with the Agg canvas: no pyplot, no process-wide backend change.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    arr = report["_arrays"]
    panels = 3 if arr["rsp"] is not None else 2
    fig = Figure(figsize=(10, 2.4 * panels), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(panels, 1, sharex=True)
    axes[0].plot(arr["t"], arr["bvp"], color="#c0392b", lw=0.8)
    axes[0].set_ylabel("BVP")
    axes[0].set_title(f"{Path(report['file']).name}: HR {report['heart_rate_bpm']} bpm, "
                      f"RR {report['respiratory_rate_bpm']} /min, quality {report['quality']}")
    if arr["rsp"] is not None:
        axes[1].plot(arr["t"], arr["rsp"], color="#2266aa", lw=0.8)
        axes[1].set_ylabel("respiration")
    ax = axes[-1]
    rolled = [np.nan if v is None else v for v in report["rolling"]["heart_rate_bpm"]]
    ax.plot(report["rolling"]["t_s"], rolled, label="re-analysis (10 s windows)", color="#333")
    hist = arr["page"]["heart"]
    if hist:
        ax.plot([h["t_s"] for h in hist], [np.nan if h.get("bpm") is None else h["bpm"] for h in hist],
                label="shown by the page", color="#c0392b", ls="--")
    ax.set_ylabel("HR (bpm)")
    ax.set_xlabel("time (s)")
    ax.legend(loc="best", fontsize=8)
    png = Path(png)
    _write_atomic(png, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    return png


def analyze_session_main(args) -> int:
    """``mmrphys analyze session FILE [--out DIR] [--json PATH]``."""
    path = Path(args.file)
    report = analyze_session(path)
    out = Path(args.out) if args.out else path.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"{out}: cannot create the output folder ({err.strerror or err})") from None
    png = write_plot(report, out / f"{path.stem}_analysis.png")
    report.pop("_arrays")
    report["plot"] = str(png)
    text = json.dumps(report, indent=1)
    targets = [out / f"{path.stem}_analysis.json"] + ([Path(args.json)] if args.json else [])
    for target in targets:
        _write_atomic(target, lambda tmp: tmp.write_text(text))
    hr, rr = report["heart_rate_bpm"], report["respiratory_rate_bpm"]
    page = report["page_heart_rate_bpm"]
    shown = f" (page showed {page:.1f})" if page is not None else ""
    print(f"{path.name}: {report['duration_s']:.1f} s at {report['fs']:.2f} Hz, "
          f"method {report['method'] or '?'}")
    print(f"HR {hr if hr is None else f'{hr:.1f}'} bpm{shown}; RR {rr if rr is None else f'{rr:.1f}'} /min "
          f"(from {report['respiratory_rate_source']}); quality {report['quality']}")
    print(f"report: {targets[0]}, {png}", file=sys.stdout)
    return 0
