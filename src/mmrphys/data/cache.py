"""Preprocessing cache: face crop, resize, chunk; streamed, resumable, parallel, verified, never lossy.

Layout of one cache (``OUT/<dataset>_<size>px_T<chunk>_<crop>_<hash6>/``)::

    manifest.json                   settings, counts, one entry per recording (done / failed + error)
    <recording_id>-<key8>/          one folder per finished recording (renamed into place atomically)
        meta.json                   subject, fps, n_frames, n_chunks, label names/means/stds, face
                                    stats, and the size and SHA-256 of every file below
        rgb_000.npy ...             (T, S, S, 3) uint8 face crops, one file per chunk of T frames
        thermal_000.npy ...         (T, S, S, 1) float16 °C (thermal datasets)
        labels_000.npy ...          (T, L) float32 labels, z-scored over the whole recording
        times.npy                   (N,) float64 timestamps of every decoded frame (s)

Chunks hold T frames, not T+1: the training dataset appends the last frame again (the MMRPhys
trainer's rule). A recording is processed in one worker, one frame at a time: memory is one chunk
buffer plus the decoder, whatever the video length. A folder appears under its final name only when
complete, so an interrupted run leaves nothing half-written that a later run could mistake for done.
A rerun verifies every finished recording against the sizes and SHA-256 digests in its meta.json
(and meta.json against the digest in the manifest) and redoes any that differ; the others are
skipped (same recording files + same settings = same key). See docs/datasets.md for the guarantees.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from mmrphys.data._cache_files import (
    FORMAT,
    LEVELS,
    META,
    OLD_FORMATS,
    CacheWriteError,
    DamagedRecording,
    discard,
    save_npy,
    sha256_file,
    verify_recording,
    write_bytes,
)
from mmrphys.data.align import align_labels, check_lengths, standardize
from mmrphys.data.base import Recording
from mmrphys.errors import ConfigError, InputError, MmrphysError

__all__ = [
    "Settings",
    "Report",
    "preprocess",
    "process_recording",
    "read_manifest",
    "verify_recording",
    "cache_dir_for",
    "recording_key",
    "resolve_crop",
    "default_workers",
    "CacheWriteError",
    "DamagedRecording",
    "FORMAT",
    "OLD_FORMATS",
]

MANIFEST = "manifest.json"
CROPS = ("face", "given", "none", "auto")


@dataclass(frozen=True)
class Settings:
    """What determines the cache's content (all of it goes into the cache key)."""

    size: int = 72  # output side in pixels (72, 36, 9)
    chunk: int = 180  # frames per chunk (T)
    # "face": detected face box (square x box_scale), "given": the dataset's own face boxes used the
    # same way (no detector), "none": whole frame, "auto": "given" when every recording has boxes,
    # else "face" (resolved by ``preprocess`` before the cache is named). "detect" = "face".
    crop: str = "face"
    box_scale: float = 1.5
    detect_every: int = 30  # face re-detection interval, frames
    detector: str = "haar"
    label_norm: str = "standardized"  # or "raw"
    align: str | None = None  # None: the dataset's default ("index" or "time")

    def __post_init__(self):
        if self.crop == "detect":  # the CLI's name; "face" keeps existing caches' keys
            object.__setattr__(self, "crop", "face")

    def validate(self) -> Settings:
        if self.size < 2 or self.chunk < 1 or self.detect_every < 1 or self.box_scale <= 0:
            raise ConfigError(f"bad preprocessing settings: {self}")
        if self.crop not in CROPS:
            raise ConfigError(f"crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.label_norm not in ("standardized", "raw"):
            raise ConfigError(f"label_norm must be 'standardized' or 'raw', got {self.label_norm!r}")
        if self.align not in (None, "index", "time"):
            raise ConfigError(f"align must be index or time, got {self.align!r}")
        return self

    def digest(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    def tag(self) -> str:
        crop = {
            "face": f"face{self.box_scale:g}x-det{self.detect_every}",
            "given": f"face{self.box_scale:g}x-given{self.detect_every}",
        }.get(self.crop, self.crop if self.crop == "auto" else "nocrop")
        return f"{self.size}px_T{self.chunk}_{crop}"


def resolve_crop(settings: Settings, recordings: list[Recording]) -> Settings:
    """``settings`` with ``crop="auto"`` made concrete: ``"given"`` when every recording has face
    boxes of its own (``Recording.has_face_boxes``), else ``"face"`` (detection)."""
    if settings.crop != "auto":
        return settings
    usable = [r for r in recordings if not r.error]  # a broken one must not change the others' key
    given = bool(usable) and all(r.has_face_boxes for r in usable)
    return replace(settings, crop="given" if given else "face")


def cache_dir_for(out, dataset: str, settings: Settings) -> Path:
    """The folder of the cache for ``dataset`` with ``settings`` under ``out`` (readable name + hash)."""
    return Path(out) / f"{dataset}_{settings.tag()}_{settings.digest()[:6]}"


def recording_key(rec: Recording, settings: Settings) -> str:
    """Folder name of one recording: its id and a hash of its files and the settings."""
    h = hashlib.sha1(f"{rec.fingerprint()}|{settings.digest()}".encode()).hexdigest()[:8]
    return f"{rec.recording_id}-{h}"


@dataclass
class Report:
    """Outcome of :func:`preprocess`."""

    cache_dir: Path
    processed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    redone: dict[str, str] = field(default_factory=dict)  # cached copy damaged -> reprocessed (why)
    unverified: list[str] = field(default_factory=list)  # old-format copies: structure checked only
    manifest_rebuilt: str | None = None  # why manifest.json was rebuilt from the folders
    n_chunks: int = 0
    n_frames: int = 0
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


# ---------------------------------------------------------------------------------------------------
# one recording (runs in a worker process)


# ---------------------------------------------------------------------------------------------------
# one recording (runs in a worker process)


def _scale_box(xyxy, src_shape, dst_shape):
    sy, sx = dst_shape[0] / src_shape[0], dst_shape[1] / src_shape[1]
    x0, y0, x1, y1 = xyxy
    return int(x0 * sx), int(y0 * sy), int(round(x1 * sx)), int(round(y1 * sy))


class GivenBoxes:
    """Stands in for the face detector with a recording's own boxes, so that given boxes go through
    the same tracker as detections (looked up at the same schedule, glided, enlarged ×box_scale):
    the crops move and scale exactly as for detected faces. Set ``index`` to the frame's index."""

    def __init__(self, boxes: np.ndarray):
        self.boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)
        self.index = 0

    def detect(self, frame, *args, **kwargs) -> list:  # the FaceDetector.detect signature, sizes ignored
        from mmrphys.faces import Box

        if not 0 <= self.index < len(self.boxes) or not np.isfinite(self.boxes[self.index]).all():
            return []
        return [Box(*(float(v) for v in self.boxes[self.index]))]


def process_recording(rec: Recording, settings: Settings, cache_dir) -> dict:
    """Crop, resize and chunk one recording into ``cache_dir/<key>/``; returns its meta dict.

    Reads the labels first (a bad label file fails before any decoding), streams the frames, checks
    the labels' length against the video (:func:`mmrphys.data.align.check_lengths`), and renames the
    folder into place only when complete (a stale folder under that name is replaced). Raises
    :class:`InputError` naming the file for bad input, :class:`CacheWriteError` when the cache cannot
    be written.
    """
    import cv2

    if rec.error:
        raise InputError(rec.error)
    cache_dir = Path(cache_dir)
    key = recording_key(rec, settings)
    final = cache_dir / key
    tmp = cache_dir / f".{key}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as err:
        raise CacheWriteError(f"cannot write into {cache_dir}: {err.strerror or err}") from None
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)  # one process per core already; and the same crops in a pool or in process
    try:
        return _process(rec, settings, key, tmp, final)
    finally:
        cv2.setNumThreads(threads)
        shutil.rmtree(tmp, ignore_errors=True)


def _process(rec: Recording, settings: Settings, key: str, tmp: Path, final: Path) -> dict:
    from mmrphys.faces import FaceDetector, FaceTracker, crop_resize

    t_start = time.perf_counter()
    raw_labels = rec.labels()
    mods = rec.modalities
    S, T = settings.size, settings.chunk
    channels = {"rgb": 3, "thermal": 1}
    dtypes = {"rgb": np.uint8, "thermal": np.float16}
    buffers = {m: np.zeros((T, S, S, channels[m]), dtypes[m]) for m in mods}
    crop = resolve_crop(settings, [rec]).crop
    use_face = crop in ("face", "given") and not rec.pre_cropped
    tracker = given = None
    if use_face:
        if crop == "given":
            boxes = rec.face_boxes()
            if boxes is None:
                raise InputError(
                    f"{rec.recording_id}: crop 'given' but the dataset gives no face boxes for it "
                    f"(generic layout: NAME.boxes.csv next to the video)"
                )
            given = GivenBoxes(boxes)
        detector = given if given is not None else FaceDetector(settings.detector)
        tracker = FaceTracker(detector, every_n=settings.detect_every, scale=settings.box_scale)
    files: dict[str, dict] = {}
    iters = [rec.frames(m) for m in mods]
    times: list[float] = []
    n = n_chunks = no_face = 0
    last_box = None
    for frames in zip(*iters):
        t = frames[0][1]
        ref = frames[0][0]
        box = None
        if use_face:
            if given is not None:
                given.index = n
            box = tracker.update(ref, n)
            if box is None:
                no_face += 1
                box = last_box  # keep the last crop through a lost face; whole frame before any
            last_box = box
        for m, (frame, _) in zip(mods, frames):
            if box is None:
                xyxy = (0, 0, frame.shape[1], frame.shape[0])
            elif frame.shape[:2] != ref.shape[:2]:
                xyxy = _scale_box(box, ref.shape, frame.shape)
            else:
                xyxy = box
            crop = crop_resize(frame if m == "rgb" else np.asarray(frame, np.float32), xyxy, S)
            buffers[m][n % T] = crop.reshape(S, S, channels[m])
        times.append(t)
        n += 1
        if n % T == 0:
            for m in mods:
                name = f"{m}_{n_chunks:03d}.npy"
                files[name] = save_npy(tmp / name, buffers[m])
            n_chunks += 1
    if n_chunks == 0:
        raise InputError(f"{rec.recording_id}: only {n} frames, fewer than one chunk of {T}")
    frame_times = np.asarray(times)
    method = settings.align or rec.align
    check_lengths(raw_labels, n, frame_times, method, fps=rec.fps, source=rec.label_source())
    labels = align_labels(raw_labels, n, frame_times=frame_times, method=method)
    names = [k for k in ("bvp", "rsp") if k in labels] + sorted(k for k in labels if k not in ("bvp", "rsp"))
    stats = {}
    cols = []
    for k in names:
        x = labels[k]
        if not np.all(np.isfinite(x)):
            raise InputError(f"{rec.label_source()}: label '{k}' has NaN/inf values after alignment")
        if settings.label_norm == "standardized":
            x, mean, std = standardize(x)
            stats[k] = {"mean": mean, "std": std}
        cols.append(x.astype(np.float32))
    table = np.stack(cols, axis=1)
    for k in range(n_chunks):
        files[f"labels_{k:03d}.npy"] = save_npy(tmp / f"labels_{k:03d}.npy", table[k * T : (k + 1) * T])
    files["times.npy"] = save_npy(tmp / "times.npy", frame_times)
    duration = float(frame_times[-1] - frame_times[0]) if n > 1 else 0.0
    meta = {
        "format": FORMAT,
        "dataset": rec.dataset,
        "recording_id": rec.recording_id,
        "subject_id": rec.subject_id,
        "key": key,
        "fingerprint": rec.fingerprint(),
        "settings_hash": settings.digest(),
        "modalities": list(mods),
        "labels": names,
        "label_stats": stats,
        "label_samples": {k: int(len(v.values)) for k, v in raw_labels.items()},
        "align": method,
        "fps": rec.fps,
        "measured_fps": (n - 1) / duration if duration > 0 else rec.fps,
        "n_frames": n,
        "n_chunks": n_chunks,
        "chunk": T,
        "size": S,
        "tail_frames_dropped": n - n_chunks * T,
        "face": None
        if tracker is None
        else {
            "source": "given" if given is not None else "detected",
            "detections": tracker.n_detections,
            "found": tracker.n_found,
            "frames_without_face": no_face,
        },
        "seconds": round(time.perf_counter() - t_start, 3),
        "meta": rec.meta,
        "files": files,
    }
    write_bytes(tmp / META, json.dumps(meta, indent=1, default=str).encode())
    discard(final)  # a damaged or stale copy under the final name (the run holds the cache's lock)
    try:
        os.replace(tmp, final)
    except OSError as err:
        raise CacheWriteError(f"cannot move {tmp.name} to {final}: {err.strerror or err}") from None
    return meta


# ---------------------------------------------------------------------------------------------------
# the run (main process)


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write_bytes(tmp, json.dumps(obj, indent=1, default=str).encode())
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise CacheWriteError(f"cannot write {path}: {err.strerror or err}") from None


def read_manifest(cache_dir) -> dict:
    """The manifest of a cache folder; raises :class:`InputError` naming it when absent or broken."""
    p = Path(cache_dir) / MANIFEST
    try:
        data = json.loads(p.read_text())
        if not isinstance(data.get("recordings"), dict):
            raise ValueError("no 'recordings' table")
        return data
    except FileNotFoundError:
        raise InputError(f"no cache manifest {p} (run 'mmrphys preprocess' first)") from None
    except (ValueError, AttributeError, UnicodeDecodeError) as err:
        raise InputError(f"{p}: corrupt manifest ({err}); rerun 'mmrphys preprocess' to rebuild it") from None
    except OSError as err:
        raise InputError(f"cannot read {p}: {err.strerror or err}") from None


def _old_entries(path: Path, settings_hash: str) -> tuple[dict, str | None]:
    """Entries of an existing manifest that are usable, and why it was not (None when it was)."""
    if not path.exists():
        return {}, None
    try:
        old = json.loads(path.read_text())
        if not isinstance(old.get("recordings"), dict):
            raise ValueError("no 'recordings' table")
    except (OSError, ValueError, AttributeError, UnicodeDecodeError) as err:
        return {}, f"{path} was unreadable: {type(err).__name__}: {err}"
    if old.get("settings_hash") != settings_hash:
        return {}, f"{path}: written for other settings"
    entries = {k: v for k, v in old["recordings"].items() if _entry_ok(v)}
    return entries, None if len(entries) == len(old["recordings"]) else f"{path}: damaged entries"


def _entry_ok(v) -> bool:
    if not isinstance(v, dict) or not isinstance(v.get("dir"), str) or "subject_id" not in v:
        return False
    if v.get("status") == "done":
        return all(isinstance(v.get(k), int) for k in ("n_chunks", "n_frames"))
    return v.get("status") == "failed"


class _Manifest:
    def __init__(self, cache_dir: Path, dataset: str, root, settings: Settings):
        self.path = cache_dir / MANIFEST
        self.old, self.problem = _old_entries(self.path, settings.digest())
        created = None
        if self.problem is None and self.path.exists():
            created = json.loads(self.path.read_text()).get("created")
        self.data = {
            "format": FORMAT,
            "dataset": dataset,
            "root": str(root),
            "settings": asdict(settings),
            "settings_hash": settings.digest(),
            "chunk_frames_stored": settings.chunk,
            "created": created or time.strftime("%Y-%m-%dT%H:%M:%S"),
            "recordings": dict(self.old),
        }

    def meta_sha256(self, rec_id: str, key: str) -> str | None:
        e = self.old.get(rec_id) or {}
        return e.get("meta_sha256") if e.get("dir") == key and e.get("status") == "done" else None

    def set(self, rec: Recording, key: str, status: str, meta: dict | None = None, error: str | None = None):
        entry = {"status": status, "dir": key, "subject_id": rec.subject_id}
        if meta:
            entry.update(
                n_frames=meta["n_frames"],
                n_chunks=meta["n_chunks"],
                labels=meta["labels"],
                modalities=meta["modalities"],
                fps=meta["fps"],
                meta_sha256=sha256_file(self.path.parent / key / META),
            )
        if error:
            entry["error"] = error
        self.data["recordings"][rec.recording_id] = entry

    def save(self, keep: Iterable[str]):
        # this run's recordings, plus finished ones of earlier runs whose folders are still there
        keep = set(keep)
        root = self.path.parent
        recs = {
            k: v
            for k, v in sorted(self.data["recordings"].items())
            if k in keep or (v["status"] == "done" and (root / v["dir"] / META).is_file())
        }
        self.data["recordings"] = recs
        done = [v for v in recs.values() if v["status"] == "done"]
        self.data["counts"] = {
            "recordings": len(recs),
            "done": len(done),
            "failed": sum(v["status"] == "failed" for v in recs.values()),
            "chunks": sum(v["n_chunks"] for v in done),
            "frames": sum(v["n_frames"] for v in done),
            "subjects": len({v["subject_id"] for v in done}),
        }
        self.data["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        _write_json_atomic(self.path, self.data)


def default_workers(n_tasks: int) -> int:
    """Worker processes by default: one per core, at most 8, at most one per recording."""
    return max(1, min(os.cpu_count() or 1, 8, n_tasks))


def _describe(err: BaseException) -> str:
    text = str(err) if isinstance(err, MmrphysError) else f"{type(err).__name__}: {err}"
    return " ".join(text.split())  # one line


def preprocess(
    recordings: list[Recording],
    out,
    settings: Settings | None = None,
    workers: int | None = None,
    progress: bool | None = None,
    dataset: str | None = None,
    root=None,
    verify: str = "full",
    worker_init: Callable[[], None] | None = None,
) -> Report:
    """Preprocess ``recordings`` into a cache under ``out``; returns a :class:`Report`.

    Finished recordings are verified (``verify``: ``full`` = sizes and SHA-256 of every file,
    ``labels``, ``sizes``; see :func:`verify_recording`) and skipped, or redone when damaged
    (``Report.redone``). Failures (bad input, a label/video length mismatch, dead workers) are
    collected by name in the report and the manifest, never dropped; the run goes on. A cache that
    cannot be written (read-only, full disk) stops the run with :class:`CacheWriteError`, keeping
    what is finished. ``workers`` processes (spawn) run in parallel; ``workers=0`` or 1 runs in this
    process. ``worker_init`` (picklable, no arguments) runs first in each worker process, e.g. to
    import the module that registers your own loader.
    """
    settings = (settings or Settings()).validate()
    if workers is not None and (not isinstance(workers, int) or workers < 0):
        raise ConfigError(f"workers must be a whole number >= 0 (0: in this process), got {workers!r}")
    if verify not in LEVELS:
        raise ConfigError(f"verify must be one of {', '.join(LEVELS)}, got {verify!r}")
    if not recordings:
        raise InputError("no recordings to preprocess")
    settings = resolve_crop(settings, recordings)
    if settings.crop == "given":
        lacking = [r.recording_id for r in recordings if not r.has_face_boxes and not r.error]
        if lacking:
            raise ConfigError(
                f"crop 'given' needs face boxes for every recording; {len(lacking)} have none "
                f"(first: {lacking[0]}; generic layout: NAME.boxes.csv next to the video)"
            )
    dataset = dataset or recordings[0].dataset
    ids = [r.recording_id for r in recordings]
    if len(set(ids)) != len(ids):
        raise InputError(
            f"duplicate recording ids in {dataset}: {sorted({i for i in ids if ids.count(i) > 1})}"
        )
    cache = cache_dir_for(out, dataset, settings)
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CacheWriteError(f"cannot create the cache folder {cache}: {err.strerror or err}") from None
    if not os.access(cache, os.W_OK):
        return _check_read_only(recordings, cache, settings, verify)
    lock = _lock(cache)
    try:
        return _preprocess_locked(
            recordings, cache, settings, workers, progress, dataset, root, ids, verify, worker_init
        )
    finally:
        lock.close()


def _lock(cache: Path):
    """Exclusive lock on the cache folder (released by the OS if this process dies)."""
    try:
        fh = open(cache / ".lock", "w")
    except OSError as err:
        raise CacheWriteError(f"cannot write into the cache folder {cache}: {err.strerror or err}") from None
    try:
        import fcntl

        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:  # pragma: no cover - Windows: no advisory locks, run one preprocess at a time
        pass
    except OSError:
        fh.close()
        raise InputError(f"another 'mmrphys preprocess' is writing {cache}; wait for it to finish") from None
    return fh


def _check_read_only(recordings, cache: Path, settings: Settings, verify: str) -> Report:
    """A cache folder this process cannot write: fine when every recording is there and verifies."""
    report = Report(cache)
    t0 = time.perf_counter()
    todo = []
    for rec in recordings:
        try:
            if rec.error:
                raise InputError(rec.error)
            meta = verify_recording(cache / recording_key(rec, settings), verify)
        except InputError as err:
            todo.append(f"{rec.recording_id}: {err}")
            continue
        report.skipped.append(rec.recording_id)
        report.n_chunks += meta["n_chunks"]
        report.n_frames += meta["n_frames"]
        if meta["format"] in OLD_FORMATS:
            report.unverified.append(rec.recording_id)
    if todo:
        raise CacheWriteError(
            f"the cache folder {cache} is read-only and {len(todo)} recording(s) need processing "
            f"(first: {todo[0]})"
        )
    report.elapsed_s = time.perf_counter() - t0
    return report


def _preprocess_locked(
    recordings, cache, settings, workers, progress, dataset, root, ids, verify, worker_init
) -> Report:
    _remove_stale(cache)  # left by an interrupted run
    manifest = _Manifest(cache, dataset, root, settings)
    report = Report(cache, manifest_rebuilt=manifest.problem)
    t0 = time.perf_counter()
    pending, broken = [], []
    for rec in recordings:
        key = recording_key(rec, settings)
        if rec.error:
            broken.append(rec)
            continue
        if not (cache / key).exists():
            pending.append(rec)
            continue
        try:
            meta = verify_recording(cache / key, verify, manifest.meta_sha256(rec.recording_id, key))
        except DamagedRecording as err:
            report.redone[rec.recording_id] = str(err)
            discard(cache / key)
            pending.append(rec)
            continue
        manifest.set(rec, key, "done", meta)
        report.skipped.append(rec.recording_id)
        if meta["format"] in OLD_FORMATS:
            report.unverified.append(rec.recording_id)
    bar = _progress_bar(len(recordings), progress, initial=len(report.skipped))

    def finish(rec, meta=None, error=None):
        key = recording_key(rec, settings)
        if error is None:
            manifest.set(rec, key, "done", meta)
            report.processed.append(rec.recording_id)
        else:
            manifest.set(rec, key, "failed", error=error)
            report.failed[rec.recording_id] = error
        manifest.save(ids)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"failed {len(report.failed)}" if report.failed else "")

    def done(rec, ok, value):  # a pool task's end
        if ok:
            finish(rec, value)
        elif isinstance(value, CacheWriteError):
            raise value
        else:
            finish(rec, error=_describe(value))

    n_workers = min(default_workers(len(pending)) if workers is None else workers, len(pending))
    try:
        for rec in broken:
            finish(rec, error=rec.error)
        manifest.save(ids)
        if n_workers <= 1:
            for rec in pending:
                try:
                    meta = process_recording(rec, settings, cache)
                except CacheWriteError:
                    raise
                except Exception as err:  # one bad recording must not stop the others
                    finish(rec, error=_describe(err))
                else:
                    finish(rec, meta)
        else:
            from mmrphys.data._pool import run_pool

            args = (settings, str(cache))
            lost = run_pool(pending, n_workers, process_recording, args, done, worker_init)
            # a worker died holding these: retry each alone (the kernel's OOM killer may have picked
            # a neighbour of the recording that needed the memory); dying again names it
            for rec, _ in lost:
                for again, how in run_pool([rec], 1, process_recording, args, done, worker_init):
                    finish(
                        again,
                        error=f"worker process died while processing it ({how}; crashed or out of memory)",
                    )
    except CacheWriteError as err:
        n = len(report.processed) + len(report.skipped)
        raise CacheWriteError(f"{err}; {n} finished recording(s) kept, rerun to resume") from None
    finally:
        if bar is not None:
            bar.close()
        _remove_stale(cache)  # partial output of workers that died
    for rec_id, entry in manifest.data["recordings"].items():
        if entry["status"] == "done" and rec_id in set(ids):
            report.n_chunks += entry["n_chunks"]
            report.n_frames += entry["n_frames"]
    report.elapsed_s = time.perf_counter() - t0
    return report


def _remove_stale(cache: Path) -> None:
    for stale in cache.glob(".*.tmp-*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def _progress_bar(total: int, progress: bool | None, initial: int = 0):
    if progress is False or (progress is None and not sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="rec", desc="preprocess", file=sys.stderr)
