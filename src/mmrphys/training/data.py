"""From config dataset entries to training chunks and test videos.

Real datasets come through :mod:`mmrphys.data` (loaders by name); each recording is face-cropped
the training way (detection every 30 frames, square box ×1.5, INTER_AREA to ``size``) once and
cached as ``.npz`` under the cache folder, keyed by the recording's fingerprint and the size.
Synthetic recordings (``name: synth``) are rendered with :mod:`mmrphys.synth.clip` directly at the
crop: the generator knows where the face is, so no detector is involved.

A recording in memory is a :class:`Clip`: uint8 frames (N, S, S, C), per-frame labels, fps.
:class:`ChunkDataset` cuts clips into non-overlapping chunks of T frames (the remainder is
dropped, as in the rPPG-Toolbox) and yields the trainer's items.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mmrphys.errors import ConfigError, InputError
from mmrphys.training.evaluate import TestVideo

DEFAULT_CACHE = Path(os.environ.get("MMRPHYS_CACHE", Path.home() / ".cache" / "mmrphys" / "crops"))


@dataclass
class Clip:
    """One recording at model resolution."""

    id: str
    subject: str
    frames: np.ndarray  # (N, S, S, C) uint8
    fs: float
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    dataset: str = ""

    def to_test_video(self) -> TestVideo:
        return TestVideo(id=self.id, frames=self.frames, fs=self.fs, labels=self.labels, subject=self.subject)


class ChunkDataset(torch.utils.data.Dataset):
    """Non-overlapping chunks of ``chunk`` frames from clips; items are the trainer's dicts.

    Labels are z-scored per chunk (the trainer z-scores again; harmless). ``ids`` name the chunks
    (``<clip id>#<k>``) and :meth:`manifest_hash` fingerprints the whole set for checkpoints.
    """

    def __init__(self, clips: list[Clip], chunk: int):
        self.clips = clips
        self.chunk = int(chunk)
        self.index = [(c, k) for c, clip in enumerate(clips) for k in range(len(clip.frames) // self.chunk)]
        self.ids = [f"{clips[c].id}#{k}" for c, k in self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict:
        c, k = self.index[i]
        clip = self.clips[c]
        sl = slice(k * self.chunk, (k + 1) * self.chunk)
        frames = torch.from_numpy(np.ascontiguousarray(clip.frames[sl])).float().permute(3, 0, 1, 2)
        item = {"frames": frames, "id": self.ids[i]}
        for task, y in clip.labels.items():
            seg = np.asarray(y[sl], dtype=np.float32)
            item[task] = torch.from_numpy((seg - seg.mean()) / max(float(seg.std()), 1e-6))
        return item

    def manifest_hash(self) -> str:
        h = hashlib.sha256()
        for clip in self.clips:
            h.update(f"{clip.dataset}/{clip.id}:{clip.frames.shape}:{clip.fs:.4f}".encode())
            h.update(np.ascontiguousarray(clip.frames[:: max(1, len(clip.frames) // 16)]).tobytes())
            for task in sorted(clip.labels):
                h.update(task.encode() + np.asarray(clip.labels[task], dtype=np.float32).tobytes())
        h.update(str(self.chunk).encode())
        return h.hexdigest()[:16]


# ------------------------------------------------------------------------------------ selection
def select_recordings(recs: list, spec: dict) -> list:
    """Apply ``subjects`` / ``exclude_subjects`` / ``split`` ([begin, end] over sorted subjects)."""

    def sid(r):
        return str(r.subject_id)

    if spec.get("subjects"):
        keep = {str(s) for s in spec["subjects"]}
        missing = keep - {sid(r) for r in recs}
        if missing:
            raise ConfigError(f"data {spec['name']}: subjects not found: {', '.join(sorted(missing))}")
        recs = [r for r in recs if sid(r) in keep]
    if spec.get("exclude_subjects"):
        drop = {str(s) for s in spec["exclude_subjects"]}
        recs = [r for r in recs if sid(r) not in drop]
    if spec.get("fold"):
        ids = {
            line.strip().split(",")[0] for line in Path(spec["fold"]).read_text().splitlines() if line.strip()
        }
        recs = [r for r in recs if sid(r) in ids]
    if spec.get("split"):
        from mmrphys.data.base import natural_key

        subjects = sorted({sid(r) for r in recs}, key=natural_key)
        b, e = spec["split"]
        keep = set(subjects[int(round(b * len(subjects))) : int(round(e * len(subjects)))])
        recs = [r for r in recs if sid(r) in keep]
    return recs


# ---------------------------------------------------------------------------------- real data
def crop_recording(rec, size: int, modality: str = "rgb", every_n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Face crops (N, size, size, C) uint8 and frame times of a recording (the training crop)."""
    from mmrphys.faces import FaceTracker, crop_resize

    if rec.pre_cropped:
        frames, times = rec.load()
        import cv2

        out = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])
        return (out if out.ndim == 4 else out[..., None]), times
    tracker = FaceTracker(every_n=every_n)
    crops, times, last = [], [], None
    for i, (frame, t) in enumerate(rec.frames()):
        box = tracker.update(frame, i)
        if box is None:
            box = last  # keep the last crop through short misses; centre crop before the first face
        if box is None:
            h, w = frame.shape[:2]
            s = min(h, w)
            box = ((w - s) // 2, (h - s) // 2, (w + s) // 2, (h + s) // 2)
        last = box
        crops.append(crop_resize(frame, box, size))
        times.append(t)
    if not crops:
        raise InputError(f"{rec.dataset} {rec.recording_id}: no frames decoded")
    return np.stack(crops), np.asarray(times)


def load_clip(rec, size: int, cache_dir: Path | None = None) -> Clip:
    """A recording face-cropped to ``size`` with per-frame labels, from the cache when present."""
    cache_dir = Path(cache_dir or DEFAULT_CACHE)
    key = f"{rec.dataset}_{rec.recording_id}_{size}_{rec.fingerprint()}.npz"
    path = cache_dir / key
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        labels = {k[6:]: z[k] for k in z.files if k.startswith("label_")}
        return Clip(rec.recording_id, str(rec.subject_id), z["frames"], float(z["fs"]), labels, rec.dataset)
    frames, times = crop_recording(rec, size)
    labels = rec.aligned_labels(len(frames), times)
    fs = float(rec.fps) if rec.fps else float(1.0 / np.median(np.diff(times)))
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(
        tmp,
        frames=frames,
        fs=fs,
        **{f"label_{k}": np.asarray(v, dtype=np.float32) for k, v in labels.items()},
    )
    os.replace(tmp, path)
    return Clip(
        rec.recording_id,
        str(rec.subject_id),
        frames,
        fs,
        {k: np.asarray(v, dtype=np.float32) for k, v in labels.items()},
        rec.dataset,
    )


# ----------------------------------------------------------------------------- synthetic data
SYNTH_DEFAULTS = {
    "n_clips": 16,
    "duration_s": 12.0,
    "fps": 30.0,
    "hr_range": [50.0, 150.0],
    "rr_range": [8.0, 30.0],
    "seed": 0,
    "render_size": 144,
}


def synth_clips(size: int, **options) -> list[Clip]:
    """Synthetic face clips rendered at ``render_size`` and cropped like real data (square ×1.5)."""
    from mmrphys.faces import crop_resize, square_box
    from mmrphys.synth.clip import Effects, draw_face, physiology, random_look, render_frames

    unknown = set(options) - set(SYNTH_DEFAULTS)
    if unknown:
        raise ConfigError(
            f"data synth.options: unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(SYNTH_DEFAULTS)}"
        )
    o = SYNTH_DEFAULTS | options
    rng = np.random.default_rng(o["seed"])
    clips = []
    for i in range(int(o["n_clips"])):
        seed = int(rng.integers(2**31))
        hr = float(rng.uniform(*o["hr_range"]))
        rr = float(rng.uniform(*o["rr_range"]))
        phys = physiology(hr, rr, o["duration_s"], o["fps"], seed=seed)
        r = int(o["render_size"])
        scene = draw_face(r, r, random_look(seed), seed=seed)
        fx = Effects(
            pulse_amplitude=float(rng.uniform(0.004, 0.02)),
            noise=float(rng.uniform(0.5, 3.0)),
            light_change=float(rng.uniform(0.0, 0.1)),
        )
        box = square_box(scene["box"], 1.5, (r, r))
        frames = np.stack(
            [crop_resize(rgb, box, size) for rgb, _ in render_frames(scene, phys, fx, seed=seed)]
        )
        clips.append(
            Clip(
                f"synth{i:04d}",
                f"synth{i:04d}",
                frames,
                float(o["fps"]),
                {"bvp": phys["bvp"].astype(np.float32), "rsp": phys["rsp"].astype(np.float32)},
                "synth",
            )
        )
    return clips


def _synth_cached(size: int, options: dict, cache_dir: Path | None) -> list[Clip]:
    cache_dir = Path(cache_dir or DEFAULT_CACHE)
    key = hashlib.sha1(json.dumps([size, SYNTH_DEFAULTS | options], sort_keys=True).encode()).hexdigest()[:12]
    path = cache_dir / f"synth_{size}_{key}.npz"
    if path.is_file():
        z = np.load(path)
        n = int(z["n"])
        return [
            Clip(
                f"synth{i:04d}",
                f"synth{i:04d}",
                z[f"f{i}"],
                float(z["fs"]),
                {"bvp": z[f"bvp{i}"], "rsp": z[f"rsp{i}"]},
                "synth",
            )
            for i in range(n)
        ]
    clips = synth_clips(size, **options)
    cache_dir.mkdir(parents=True, exist_ok=True)
    arrays = {"n": len(clips), "fs": clips[0].fs}
    for i, c in enumerate(clips):
        arrays |= {f"f{i}": c.frames, f"bvp{i}": c.labels["bvp"], f"rsp{i}": c.labels["rsp"]}
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return clips


# ------------------------------------------------------------------------------------ entries
def load_entry(spec: dict, size: int, cache_dir=None, log=print) -> list[Clip]:
    """All clips of one ``data.train``/``data.test`` entry (selection applied)."""
    if spec["name"] == "synth":
        return _synth_cached(size, dict(spec.get("options") or {}), cache_dir)
    from mmrphys.data import get_loader

    loader = get_loader(spec["name"], **(spec.get("options") or {}))
    recs = select_recordings(loader.recordings(spec["path"]), spec)
    if not recs:
        raise ConfigError(f"data {spec['name']}: no recordings left after subject selection")
    clips = []
    for r in recs:
        log(f"[data] {spec['name']} {r.recording_id}: face crops at {size}x{size}")
        clips.append(load_clip(r, size, cache_dir))
    return clips


def build_train_set(cfg: dict, log=print) -> ChunkDataset:
    """The training chunks of every ``data.train`` entry."""
    d = cfg["data"]
    clips = [c for spec in d["train"] for c in load_entry(spec, d["size"], d["cache"], log)]
    return ChunkDataset(clips, d["chunk"])


def build_test_sets(cfg: dict, log=print) -> dict[str, list[TestVideo]]:
    """Test videos per ``data.test`` entry, keyed ``<name>`` (or ``<name>_<k>`` for repeats)."""
    d = cfg["data"]
    out = {}
    for k, spec in enumerate(d["test"]):
        key = spec["name"] if spec["name"] not in out else f"{spec['name']}_{k}"
        out[key] = [c.to_test_video() for c in load_entry(spec, d["size"], d["cache"], log)]
    return out
