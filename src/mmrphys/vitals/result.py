"""The main job's result: JSON (the contract), CSV of the waveforms, and the PNG report."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


def _clean(v):
    """JSON-safe: NaN/inf -> None, numpy -> Python, arrays -> lists (rounded)."""
    if isinstance(v, dict):
        return {str(k): _clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v]
    if isinstance(v, np.ndarray):
        if v.dtype.kind == "f":
            return [None if not math.isfinite(x) else round(float(x), 5) for x in v.tolist()]
        return _clean(v.tolist())
    if isinstance(v, (np.floating, float)):
        return None if not math.isfinite(float(v)) else float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Path):
        return str(v)
    return v


@dataclass
class Result:
    """Outcome of :func:`mmrphys.vitals.estimate`; ``to_dict()`` follows the JSON contract.

    Rates are NaN (``null`` in JSON) where not estimable; the reason is in ``quality["warnings"]``.
    ``bvp``/``rsp`` are on the uniform time grid ``timestamps_s`` with NaN where no face was seen.
    """

    heart_rate_bpm: float
    respiratory_rate_bpm: float
    fps: float
    duration_s: float
    timestamps_s: np.ndarray
    bvp: np.ndarray
    rsp: np.ndarray | None
    rolling: list[dict]
    hrv: dict
    quality: dict
    method: str
    model: dict | None
    source: str | None = None
    extra: dict = field(default_factory=dict)
    # for the report (not in the JSON)
    report_frame: np.ndarray | None = field(default=None, repr=False)
    report_box: tuple | None = None
    analysis_span: tuple[int, int] | None = None  # grid samples [start, end) the rates come from
    rsp_source: str | None = None
    #: Confidence (0-1) per vital, ``{"heart_rate": x, "respiratory_rate": y}`` (None: not reported);
    #: see :func:`mmrphys.signals.quality.confidence`. Below its threshold the vital has a warning.
    confidence: dict = field(default_factory=dict)

    @property
    def warnings(self) -> list[str]:
        return list(self.quality.get("warnings", []))

    def to_dict(self, waveforms: bool = True) -> dict:
        """The JSON contract (``waveforms=False`` leaves out ``timestamps_s``, ``bvp``, ``rsp``)."""
        d = {
            "heart_rate_bpm": self.heart_rate_bpm,
            "respiratory_rate_bpm": self.respiratory_rate_bpm,
            "fps": self.fps,
            "duration_s": self.duration_s,
            "method": self.method,
            "model": self.model,
            "quality": self.quality,
            "confidence": self.confidence,
            "hrv": self.hrv,
            "rolling": self.rolling,
            "source": self.source,
            "respiration_source": self.rsp_source,
            **self.extra,
        }
        if waveforms:
            d["timestamps_s"] = self.timestamps_s
            d["bvp"] = self.bvp
            d["rsp"] = self.rsp
        return _clean(d)

    def write_json(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False))
        return path

    def write_csv(self, path) -> Path:
        """Waveforms, one row per sample: ``time_s, bvp, rsp`` (empty cells where not estimated)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        rsp = self.rsp if self.rsp is not None else np.full_like(self.bvp, np.nan)

        def cell(x):
            return "" if not math.isfinite(x) else f"{x:.5f}"

        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["time_s", "bvp", "rsp"])
            for t, b, r in zip(self.timestamps_s, self.bvp, rsp):
                w.writerow([f"{t:.4f}", cell(b), cell(r)])
        return path

    def write_report(self, path) -> Path:
        from mmrphys.vitals.report import write_report

        return write_report(self, path)

    def save(self, out_dir, stem: str = "result") -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>_waveforms.csv`` and ``<stem>_report.png`` into ``out_dir``."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        return {"json": self.write_json(out / f"{stem}.json"),
                "csv": self.write_csv(out / f"{stem}_waveforms.csv"),
                "report": self.write_report(out / f"{stem}_report.png")}

    def summary(self) -> str:
        """One line: HR, RR, quality."""
        def fmt(x, unit):
            return "n/a" if x is None or not math.isfinite(x) else f"{x:.1f} {unit}"

        q = self.quality
        return (f"HR {fmt(self.heart_rate_bpm, 'bpm')}, RR {fmt(self.respiratory_rate_bpm, '/min')}, "
                f"signal quality {q.get('signal_quality', float('nan')):.2f}, "
                f"face found in {100 * q.get('face_detected_fraction', 0):.0f}% of frames")
