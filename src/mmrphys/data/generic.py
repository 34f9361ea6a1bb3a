"""Your own recordings: a video file and a CSV of signals with the same name, side by side.

Layout (any depth under the root)::

    ROOT/alice/rest.mp4            video (mp4, avi, mkv, mov, webm)
    ROOT/alice/rest.csv            signals, header row required
    ROOT/alice/rest.thermal.npy    optional thermal video, (N, H, W) float °C
    ROOT/alice/rest.boxes.csv      optional face boxes: frame, x, y, w, h (pixels)

CSV columns (case-insensitive): a time column ``time_s`` (or ``t_s``, ``time``, ``timestamp``, ``t``) in
seconds from the start of the video, and any of ``bvp`` (aliases ``ppg``, ``pulse``) and ``rsp``
(``resp``, ``respiration``, ``breathing``). With a time column labels are aligned to the frames by
time; without one, each column is stretched over the video by index. The subject id is the first
folder below the root (``alice``), or the file name for files directly in the root.

Face boxes (``NAME.boxes.csv``, header ``frame,x,y,w,h``): the face box of a frame as a face
detector reports it (top-left corner, width, height in video pixels; ``frame`` = 0-based index of
the decoded frame, optional when there is one row per frame). Frames may be left out or have empty
values (no face given there). ``mmrphys preprocess`` then crops with these boxes (square ×1.5, like
detected ones) instead of running the detector; ``mmrphys.synth.dataset`` writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmrphys.data._readers import read_csv_columns, video_fps, video_frames
from mmrphys.data.align import LENGTH_TOL_S
from mmrphys.data.base import Loader, Signal, natural_key, no_recordings, require_dir
from mmrphys.errors import InputError

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm")
TIME_COLUMNS = ("time_s", "t_s", "time", "timestamp", "t")
SIGNAL_ALIASES = {"bvp": ("bvp", "ppg", "pulse"), "rsp": ("rsp", "resp", "respiration", "breathing")}


def read_boxes_csv(path) -> np.ndarray:
    """Face boxes of a ``.boxes.csv`` as ``(N, 4)`` x, y, w, h indexed by frame (NaN = no box)."""
    cols = read_csv_columns(path, "face box CSV")
    missing = [c for c in ("x", "y", "w", "h") if c not in cols]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; expected frame,x,y,w,h")
    xywh = np.stack([cols[c] for c in ("x", "y", "w", "h")], axis=1)
    frames = cols.get("frame")
    if frames is None:
        frames = np.arange(len(xywh), dtype=float)
    bad = ~np.isfinite(frames) | (frames < 0) | (frames != np.round(frames))
    if bad.any():
        line = int(np.argmax(bad)) + 2
        raise InputError(f"{path}: line {line}: 'frame' must be a frame index 0, 1, 2, ...")
    given = np.isfinite(xywh).all(axis=1)
    small = given & ((xywh[:, 2] <= 0) | (xywh[:, 3] <= 0))
    if small.any():
        line = int(np.argmax(small)) + 2
        raise InputError(f"{path}: line {line}: box width and height must be positive")
    out = np.full((int(frames.max()) + 1 if len(frames) else 0, 4), np.nan)
    out[frames[given].astype(int)] = xywh[given]
    return out


def read_signal_csv(path) -> dict[str, Signal]:
    """Signals of a generic CSV as ``{"bvp"|"rsp": Signal}``; raises naming the file when none."""
    cols = read_csv_columns(path, "signal CSV")
    tcol = next((c for c in TIME_COLUMNS if c in cols), None)
    t = None
    if tcol is not None:
        t = cols[tcol]
        if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
            raise InputError(f"{path}: column '{tcol}' must be finite and strictly increasing (seconds)")
    out = {}
    for name, aliases in SIGNAL_ALIASES.items():
        col = next((a for a in aliases if a in cols), None)
        if col is not None:
            v = cols[col]
            ok = np.isfinite(v)
            if not ok.any():
                raise InputError(f"{path}: column '{col}' has no numbers")
            if t is None and not ok.all():  # no times: a dropped value would shift all after it
                line = int(np.argmax(~ok)) + 2
                raise InputError(
                    f"{path}: line {line}: column '{col}' is empty or not finite (no time column)"
                )
            if t is not None:
                gaps = np.diff(t[ok])
                if gaps.size and gaps.max() > LENGTH_TOL_S:
                    k = int(np.argmax(gaps))
                    raise InputError(
                        f"{path}: column '{col}' has no finite value for {gaps[k]:.2f} s "
                        f"(time {t[ok][k]:.2f}-{t[ok][k + 1]:.2f} s)"
                    )
            out[name] = Signal(v[ok], t=None if t is None else t[ok], spans_video=t is None)
    if not out:
        raise InputError(
            f"{path}: no signal column; expected one of "
            f"{', '.join(a for al in SIGNAL_ALIASES.values() for a in al)}"
        )
    return out


class Generic(Loader):
    name = "generic"
    description = "your own videos + CSV of signals (time_s, bvp, rsp)"
    fps = 30.0
    option_defaults = {"fps": None, "modality": "auto"}

    def recordings(self, root):
        root = require_dir(root)
        recs = []
        videos = [p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTS and p.is_file()]
        for v in sorted(videos, key=lambda p: natural_key(str(p.relative_to(root)))):
            rel = v.relative_to(root)
            subject = rel.parts[0] if len(rel.parts) > 1 else v.stem
            rid = "_".join(rel.with_suffix("").parts)
            files = {"video": str(v), "labels": str(v.with_suffix(".csv"))}
            recs.append(self._listed(rid, subject, files, self._one, v, rid, subject, files))
        if not recs:
            raise no_recordings(self.name, root, "NAME.mp4 + NAME.csv")
        return recs

    def _one(self, v: Path, rid: str, subject: str, files: dict):
        csv = Path(files["labels"])
        if not csv.is_file():
            raise InputError(f"video {v} has no signal file {csv.name} next to it")
        files = dict(files)
        thermal = v.with_name(v.stem + ".thermal.npy")
        mods = ("rgb",)
        if thermal.is_file() and self.options["modality"] in ("auto", "rgbt", "thermal"):
            files["thermal"] = str(thermal)
            mods = ("thermal",) if self.options["modality"] == "thermal" else ("rgb", "thermal")
        boxes = v.with_name(v.stem + ".boxes.csv")
        if boxes.is_file():
            files["boxes"] = str(boxes)
        names = tuple(read_signal_csv(csv))
        align = "time" if any(c in _header(csv) for c in TIME_COLUMNS) else "index"
        fps = video_fps(v, self.options["fps"])
        return self._recording(
            rid, subject, fps=fps, modalities=mods, label_names=names, files=files, align=align
        )

    def iter_frames(self, rec, modality):
        if modality == "thermal":
            arr = np.load(rec.files["thermal"], mmap_mode="r")
            if arr.ndim == 4:
                arr = arr[..., 0]
            if arr.ndim != 3:
                raise InputError(f"{rec.files['thermal']}: expected (N, H, W), got {arr.shape}")
            return ((np.asarray(a, dtype=np.float32), k / rec.fps) for k, a in enumerate(arr))
        return video_frames(rec.files["video"], fps=self.options["fps"])

    def read_labels(self, rec):
        return read_signal_csv(rec.files["labels"])

    def face_boxes(self, rec):
        return read_boxes_csv(rec.files["boxes"]) if "boxes" in rec.files else None


def _header(csv: Path) -> list[str]:
    with open(csv, encoding="utf-8", errors="replace") as fh:
        return [h.strip().lower() for h in fh.readline().split(",")]
