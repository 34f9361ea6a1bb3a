"""Frame and table readers shared by the dataset loaders; every error names the offending file."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from mmrphys.data.base import require_file
from mmrphys.errors import InputError


def video_frames(path, fps: float | None = None) -> Iterator[tuple[np.ndarray, float]]:
    """Stream ``(rgb uint8, t_s)`` from a video file (PyAV, decoder timestamps)."""
    from mmrphys.video import open_video

    yield from open_video(require_file(path, "video"), fps=fps)


def video_fps(path, fps: float | None = None) -> float:
    """The video's frame rate (``fps`` when given): used when listing recordings, no decoding."""
    if fps:
        return float(fps)
    from mmrphys.video import open_video

    return float(open_video(require_file(path, "video")).fps)


def read_image_rgb(path) -> np.ndarray:
    """One image file as RGB uint8 (BGR→RGB as the toolbox's cv2 readers do)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path} (missing, empty or not an image)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def image_frames(paths: Iterable, times) -> Iterator[tuple[np.ndarray, float]]:
    """Stream ``(rgb uint8, t_s)`` from image files (png/bmp/jpg)."""
    for p, t in zip(paths, times):
        yield read_image_rgb(p), float(t)


def npy_frame(path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read frame {path} ({type(err).__name__}: {err})") from None


def to_uint8(frame) -> np.ndarray:
    """Float frames in [0, 1] → uint8 (×255, rounded); uint8 passes through."""
    a = np.asarray(frame)
    if a.dtype == np.uint8:
        return a
    if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0 + 1e-6:
        a = a * 255.0
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def sorted_files(folder: Path, patterns: tuple[str, ...]) -> list[Path]:
    from mmrphys.data.base import natural_key

    files = [p for pat in patterns for p in folder.glob(pat) if p.is_file()]
    return sorted(set(files), key=lambda p: natural_key(p.name))


def read_numeric_rows(path, what: str = "label file") -> np.ndarray:
    """Whitespace- or comma-separated numbers as a 2-D float array (rows as in the file; ragged rows
    are padded with NaN); a non-numeric first row is taken for a header and skipped; ``nan`` or
    ``inf`` in the file is refused (naming the line), so NaN in the result is only padding."""
    p = require_file(path, what)
    rows = []
    with open(p, encoding="utf-8", errors="replace") as fh:
        for i, line in enumerate(fh):
            parts = [s for s in line.replace(",", " ").replace(";", " ").split() if s]
            if not parts:
                continue
            try:
                row = [float(s) for s in parts]
            except ValueError:
                if i == 0 and not rows:
                    continue  # header
                raise InputError(f"{p}: line {i + 1} is not numeric: {line.strip()[:60]!r}") from None
            if not all(math.isfinite(v) for v in row):
                bad = next(s for s, v in zip(parts, row) if not math.isfinite(v))
                raise InputError(f"{p}: line {i + 1} has a non-finite value {bad!r}")
            rows.append(row)
    if not rows:
        raise InputError(f"{p}: no numeric data")
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def read_csv_columns(path, what: str = "CSV file") -> dict[str, np.ndarray]:
    """A CSV with a header row as ``{lower-case column name: float array}``."""
    p = require_file(path, what)
    with open(p, newline="", encoding="utf-8", errors="replace") as fh:
        reader = csv.reader(fh)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise InputError(f"{p}: empty CSV") from None
        cols: list[list[float]] = [[] for _ in header]
        for i, row in enumerate(reader, start=2):
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) < len(header):
                raise InputError(f"{p}: line {i} has {len(row)} fields, the header has {len(header)}")
            try:
                for c, v in zip(cols, row):
                    c.append(float(v) if v.strip() else np.nan)
            except ValueError:
                raise InputError(f"{p}: line {i} is not numeric: {','.join(row)[:60]!r}") from None
    return {h: np.asarray(c, dtype=float) for h, c in zip(header, cols)}
