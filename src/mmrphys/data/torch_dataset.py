"""PyTorch ``Dataset`` over a preprocessing cache (one item per chunk).

Item: ``(frames, labels)`` with ``frames`` (C, T+1, H, W) float32 (raw 0–255 RGB, °C for thermal,
channels RGB then thermal) and ``labels`` ``{"bvp": (T,), "rsp": (T,)}`` float32. The extra frame is
a copy of the chunk's last frame (the MMRPhys trainer's rule); ``next_frame=True`` uses the first frame
of the next chunk of the same recording instead when there is one. Chunks are memory-mapped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from mmrphys.data.cache import OLD_FORMATS, DamagedRecording, read_manifest, verify_recording
from mmrphys.errors import ConfigError, InputError


class CacheDataset(Dataset):
    """Chunks of the recordings in ``cache_dir`` (optionally only ``recordings`` / ``subjects``).

    Each selected recording is checked at open (``verify``, see
    :func:`mmrphys.data.cache.verify_recording`; default ``labels``: every file's size and the
    SHA-256 of the label files, a stat per file plus ~1.5 kB read per chunk); a damaged one raises
    :class:`~mmrphys.data.cache.DamagedRecording` naming the file.
    """

    def __init__(
        self,
        cache_dir,
        tasks=("bvp", "rsp"),
        modalities=None,
        recordings=None,
        subjects=None,
        next_frame: bool = False,
        verify: str = "labels",
    ):
        self.cache_dir = Path(cache_dir)
        old: list[str] = []
        manifest = read_manifest(self.cache_dir)
        entries = manifest["recordings"]
        want_recs = None if recordings is None else {str(r) for r in recordings}
        want_subs = None if subjects is None else {str(s) for s in subjects}
        self.items: list[tuple[Path, int, int]] = []  # (recording dir, chunk, n_chunks)
        self.recordings: list[str] = []
        self.label_index: dict[str, int] | None = None
        self.modalities = None if modalities is None else tuple(modalities)
        self.next_frame = next_frame
        for rid, e in entries.items():
            if e["status"] != "done":
                continue
            if (want_recs is not None and rid not in want_recs) or (
                want_subs is not None and e["subject_id"] not in want_subs
            ):
                continue
            d = self.cache_dir / e["dir"]
            try:  # sizes of every file, SHA-256 of the labels: never train on a cut or changed label
                meta = verify_recording(d, verify)
            except DamagedRecording as err:
                raise DamagedRecording(f"{err}; rerun 'mmrphys preprocess' to redo {rid}") from None
            if meta["format"] in OLD_FORMATS:
                old.append(rid)
            names = [t for t in tasks if t in meta["labels"]]
            if len(names) != len(tasks):
                raise ConfigError(
                    f"{rid} in {self.cache_dir} has labels {meta['labels']}, not all of {tasks}"
                )
            mods = self.modalities or tuple(meta["modalities"])
            if not set(mods) <= set(meta["modalities"]):
                raise ConfigError(
                    f"{rid} in {self.cache_dir} has modalities {meta['modalities']}, not {mods}"
                )
            self.modalities = mods
            self.label_cols = {t: meta["labels"].index(t) for t in tasks}
            self.recordings.append(rid)
            self.items += [(d, k, meta["n_chunks"]) for k in range(meta["n_chunks"])]
        if not self.items:
            raise InputError(f"no chunks selected in {self.cache_dir}")
        if old:
            warnings.warn(
                f"{len(old)} recording(s) in {self.cache_dir} come from an older mmrphys without "
                f"checksums (first: {old[0]}): their structure was checked, not their contents",
                stacklevel=2,
            )
        self.tasks = tuple(tasks)

    def __len__(self) -> int:
        return len(self.items)

    def _frames(self, d: Path, k: int, m: str) -> np.ndarray:
        return np.load(d / f"{m}_{k:03d}.npy", mmap_mode="r")

    def __getitem__(self, i):
        d, k, n_chunks = self.items[i]
        parts = []
        for m in self.modalities:
            x = self._frames(d, k, m)
            extra = self._frames(d, k + 1, m)[:1] if self.next_frame and k + 1 < n_chunks else x[-1:]
            parts.append(np.concatenate([x, extra], axis=0).astype(np.float32))  # (T+1, H, W, c)
        frames = np.concatenate(parts, axis=-1).transpose(3, 0, 1, 2)  # (C, T+1, H, W)
        table = np.load(d / f"labels_{k:03d}.npy")
        labels = {
            t: torch.from_numpy(np.ascontiguousarray(table[:, c], dtype=np.float32))
            for t, c in self.label_cols.items()
        }
        return torch.from_numpy(np.ascontiguousarray(frames)), labels
