"""One interface for every dataset: :class:`Recording` (what one recording holds) and :class:`Loader`.

A loader lists a dataset's recordings from its on-disk layout (cheap: no frames are decoded) and
reads a recording's frames one at a time and its label signals. ``Recording`` is plain, picklable
data (paths and options), so worker processes rebuild the loader from the registry by name.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmrphys.data.labels import Signal
from mmrphys.errors import ConfigError, InputError

__all__ = ["Loader", "Recording", "Signal", "MODALITIES"]

MODALITIES = ("rgb", "thermal")


@dataclass
class Recording:
    """One recording: where its files are and what it holds.

    ``files`` maps a role (``"video"``, ``"labels"``, ``"rgb_dir"``, ...) to a path; ``options`` are
    the loader options it was listed with (they travel to worker processes). ``align`` is the
    dataset's default label alignment (``"index"`` or ``"time"``). ``error`` is set when listing
    found this recording broken (a missing or unreadable file, named): listing goes on, using the
    recording raises :class:`InputError` with it, and preprocessing records it as failed.
    """

    dataset: str
    recording_id: str
    subject_id: str
    fps: float
    modalities: tuple[str, ...] = ("rgb",)
    label_names: tuple[str, ...] = ("bvp",)
    files: dict[str, str] = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    align: str = "index"
    pre_cropped: bool = False
    error: str | None = None

    def _check(self) -> None:
        if self.error:
            raise InputError(self.error)

    def loader(self) -> Loader:
        from mmrphys.data.registry import get_loader

        return get_loader(self.dataset, **self.options)

    def frames(self, modality: str | None = None) -> Iterator[tuple[np.ndarray, float]]:
        """Stream ``(frame, t_s)``: RGB uint8 HxWx3, or thermal float32 HxW in °C."""
        self._check()
        modality = modality or self.modalities[0]
        if modality not in self.modalities:
            raise ConfigError(
                f"{self.dataset} recording {self.recording_id} has no {modality!r} frames "
                f"(has {', '.join(self.modalities)})"
            )
        return self.loader().iter_frames(self, modality)

    def labels(self) -> dict[str, Signal]:
        """Label signals on their own time base (see :mod:`mmrphys.data.align` to put them on frames)."""
        self._check()
        return self.loader().read_labels(self)

    def frame_times(self) -> np.ndarray | None:
        """Frame times (s, from 0) from the dataset's metadata, without decoding; None if not stored."""
        return self.loader().frame_times(self)

    @property
    def has_face_boxes(self) -> bool:
        """Whether the dataset gives this recording's face boxes (e.g. a generic ``NAME.boxes.csv``)."""
        return "boxes" in self.files

    def face_boxes(self) -> np.ndarray | None:
        """Given face boxes ``(N, 4)`` = x, y, w, h per frame (pixels of the first modality's frames;
        NaN rows = no face given for that frame), or None when the dataset has none."""
        self._check()
        return self.loader().face_boxes(self)

    def load(self, modality: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Whole recording in memory: ``(frames (N, H, W[, 3]), times (N,))``. For small data and tests."""
        frames, times = [], []
        for frame, t in self.frames(modality):
            frames.append(frame)
            times.append(t)
        return np.stack(frames), np.asarray(times, dtype=float)

    def aligned_labels(
        self, n_frames: int, frame_times=None, method: str | None = None
    ) -> dict[str, np.ndarray]:
        """Labels resampled to ``n_frames`` frames (see :func:`mmrphys.data.align.align_labels`), after
        checking that they last as long as the video (:func:`mmrphys.data.align.check_lengths`)."""
        from mmrphys.data.align import align_labels, check_lengths

        labels, method = self.labels(), method or self.align
        check_lengths(labels, n_frames, frame_times, method, fps=self.fps, source=self.label_source())
        return align_labels(labels, n_frames, frame_times=frame_times, method=method)

    def label_source(self) -> str:
        """What to name in a label error: the label file, else the recording id."""
        return self.files.get("labels") or self.files.get("mat") or self.recording_id

    def fingerprint(self) -> str:
        """Short hash of the recording's identity, options and source files (names, sizes, mtimes)."""
        h = hashlib.sha1()
        h.update(
            json.dumps([self.dataset, self.recording_id, self.options], sort_keys=True, default=str).encode()
        )
        for role in sorted(self.files):
            h.update(role.encode())
            h.update(_path_signature(Path(self.files[role])).encode())
        return h.hexdigest()[:10]


def _path_signature(p: Path) -> str:
    try:
        if p.is_dir():
            n = size = mtime = 0
            with os.scandir(p) as it:
                for e in it:
                    if e.is_file():
                        st = e.stat()
                        n, size, mtime = n + 1, size + st.st_size, max(mtime, st.st_mtime_ns)
            return f"{p.name}:dir:{n}:{size}:{mtime}"
        st = p.stat()
        return f"{p.name}:{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        return f"{p.name}:missing"


class Loader:
    """Base class of dataset loaders; subclasses set ``name``/``fps`` and implement the three readers.

    ``option_defaults`` lists the options a loader accepts (``get_loader(name, **options)``); unknown
    options raise :class:`ConfigError`.
    """

    name = ""
    description = ""
    fps = 30.0
    option_defaults: dict = {}

    def __init__(self, **options):
        unknown = sorted(set(options) - set(self.option_defaults))
        if unknown:
            raise ConfigError(
                f"dataset {self.name!r} has no option(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(self.option_defaults)) or 'none'}"
            )
        self.options = {**self.option_defaults, **options}

    def recordings(self, root) -> list[Recording]:
        """All recordings under ``root``, sorted by recording id."""
        raise NotImplementedError

    def iter_frames(self, rec: Recording, modality: str) -> Iterator[tuple[np.ndarray, float]]:
        raise NotImplementedError

    def read_labels(self, rec: Recording) -> dict[str, Signal]:
        raise NotImplementedError

    def frame_times(self, rec: Recording) -> np.ndarray | None:
        return None

    def face_boxes(self, rec: Recording) -> np.ndarray | None:
        return None

    # helpers shared by the loaders -------------------------------------------------------------
    def _listed(self, recording_id: str, subject_id: str, files: dict, build, *args) -> Recording:
        """``build(*args)`` (which returns the Recording), or when it raises :class:`InputError` (a
        file of this recording missing or unreadable) a Recording carrying that error and ``files``,
        so that one broken recording does not stop the listing of the others."""
        try:
            return build(*args)
        except InputError as err:
            return self._recording(recording_id, subject_id, files=dict(files), error=str(err))

    def _recording(self, recording_id: str, subject_id: str, **kw) -> Recording:
        kw.setdefault("fps", self.fps)
        return Recording(
            dataset=self.name,
            recording_id=recording_id,
            subject_id=subject_id,
            options=dict(self.options),
            **kw,
        )


def require_dir(root) -> Path:
    """``root`` as a Path, or :class:`InputError` when it is not a directory."""
    p = Path(root).expanduser()
    if not p.is_dir():
        raise InputError(f"dataset root {p} does not exist or is not a directory")
    return p


def require_file(path, what: str = "file") -> Path:
    """``path`` as a Path, or :class:`InputError` naming the missing/empty file."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"missing {what}: {p}")
    if p.stat().st_size == 0:
        raise InputError(f"empty {what}: {p}")
    return p


def no_recordings(dataset: str, root: Path, pattern: str) -> InputError:
    return InputError(f"no {dataset} recordings under {root} (expected {pattern})")


def natural_key(s: str):
    """Sort key that orders 'subject2' before 'subject10'."""
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(s))]


def import_optional(module: str, package: str, dataset: str):
    """Import an optional dependency or raise :class:`ConfigError` naming the package to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"reading {dataset} needs the '{package}' package: pip install {package} "
            f"(or pip install 'mmrphys[data]')"
        ) from None
