"""From config dataset entries to training chunks and test videos, through the shared preprocessing cache.

Every entry of ``data.train`` / ``data.test`` goes the same way as ``mmrphys preprocess``:

1. recordings listed by the dataset's loader (:mod:`mmrphys.data`), selected subject-wise
   (:mod:`mmrphys.data.splits`); ``name: synth`` first renders a synthetic set with
   :func:`mmrphys.synth.dataset.make_dataset` (once per option set, kept under the cache root)
   and reads it back with the ``generic`` loader;
2. :func:`mmrphys.data.cache.preprocess` crops, resizes and chunks them into the cache
   (``data.cache``, default ``~/.cache/mmrphys/preprocess``, see :func:`default_cache`): resumable, parallel,
   finished recordings skipped, failures named;
3. training items come from :class:`mmrphys.data.torch_dataset.CacheDataset`, test videos from the
   same cache folders (their chunks concatenated).

The data manifest hash stored in checkpoints is computed from the cache manifests (settings hash and
every selected recording's folder, which encodes its files' fingerprint and the settings).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mmrphys.errors import ConfigError, InputError
from mmrphys.training.evaluate import TestVideo


def default_cache() -> Path:
    """``$MMRPHYS_CACHE`` or ``$XDG_CACHE_HOME/mmrphys`` (default ``~/.cache/mmrphys``), plus ``/preprocess``
    (the same root as the web app's cache)."""
    root = os.environ.get("MMRPHYS_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "mmrphys"
    )
    return Path(root) / "preprocess"


MODALITIES = {"rgb": ("rgb",), "t": ("thermal",), "rgbt": ("rgb", "thermal")}

# ``name: synth`` options (``data.*[i].options``) and their defaults. ``hr_range``/``rr_range`` are
# kept as keys for old configs but the generator draws its own ranges (HR 48-132, RR 6-28 /min).
SYNTH_DEFAULTS = {
    "n_clips": 16,
    "duration_s": 12.0,
    "fps": 30.0,
    "seed": 0,
    "render_size": 144,  # int (square) or [width, height]
    "per_subject": 1,
    "thermal": False,
    "hr_range": None,
    "rr_range": None,
}


@dataclass
class Entry:
    """One config entry after preprocessing: its cache folder and selected recordings."""

    name: str
    cache_dir: Path
    recordings: list[str]  # recording ids, manifest order
    subjects: list[str]
    labels: list[str]  # label names every selected recording has
    modalities: tuple[str, ...]
    manifest_hash: str
    windows: int | None = None  # augmented windows per epoch (None: the cached chunks as they are)
    augment: dict | None = None
    derive_rsp: bool = False


@dataclass
class RenderedEntry:
    """A config entry rendered on the fly (``name: reanimated``): a ready dataset, no cache folder."""

    name: str
    dataset: torch.utils.data.Dataset
    subjects: list[str]
    manifest_hash: str


# ------------------------------------------------------------------------------------ selection
def select_recordings(recs: list, spec: dict) -> list:
    """Apply ``subjects`` / ``exclude_subjects`` / ``fold`` (subject list CSV) / ``split`` ([begin, end])."""
    from mmrphys.data import splits

    try:
        if spec.get("subjects"):
            recs = splits.select_subjects(recs, spec["subjects"])
        if spec.get("exclude_subjects"):
            drop = {str(s) for s in spec["exclude_subjects"]}
            recs = [r for r in recs if str(r.subject_id) not in drop]
        if spec.get("fold"):
            keep = set(splits.read_subject_list(spec["fold"]))
            recs = [r for r in recs if str(r.subject_id) in keep]
        if spec.get("split") and recs:
            recs = splits.by_fraction(recs, *spec["split"])
    except ConfigError as err:
        raise ConfigError(f"data {spec['name']}: {err}") from None
    if not recs:
        raise ConfigError(f"data {spec['name']}: no recordings left after subject selection")
    return recs


# ----------------------------------------------------------------------------- synthetic data
def synth_options(options: dict) -> dict:
    """``options`` of a ``synth`` entry completed with defaults; unknown or unsupported ones raise."""
    unknown = set(options) - set(SYNTH_DEFAULTS)
    if unknown:
        raise ConfigError(
            f"data synth.options: unknown option(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(SYNTH_DEFAULTS)}"
        )
    for key in ("hr_range", "rr_range"):
        if options.get(key) is not None:
            raise ConfigError(
                f"data synth.options.{key}: no longer supported (mmrphys.synth.dataset draws HR 48-132 "
                "bpm and RR 6-28 /min); remove it"
            )
    return SYNTH_DEFAULTS | options


def synth_root(options: dict, cache_root: Path, render: bool = True) -> tuple[Path, str]:
    """Folder of the rendered synthetic set for ``options`` (rendered once, atomically) and its name."""
    from mmrphys.synth.dataset import make_dataset

    o = synth_options(options)
    key = hashlib.sha1(json.dumps(o, sort_keys=True).encode()).hexdigest()[:8]
    name = f"synth-{key}"
    root = Path(cache_root) / "synth-videos" / name
    if (root / "dataset.json").is_file() or not render:
        return root, name
    size = o["render_size"]
    size = (int(size), int(size)) if isinstance(size, (int, float)) else tuple(int(v) for v in size)
    tmp = root.with_name(f".{name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    make_dataset(
        tmp,
        n=int(o["n_clips"]),
        per_subject=int(o["per_subject"]),
        duration_s=float(o["duration_s"]),
        fps=float(o["fps"]),
        size=size,
        thermal=bool(o["thermal"]),
        seed=int(o["seed"]),
    )
    try:
        os.replace(tmp, root)
    except OSError:  # another run rendered it first: keep theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return root, name


# ------------------------------------------------------------------------------------ entries
def _recordings(spec: dict, cache_root: Path, prepare: bool) -> tuple[list, str]:
    from mmrphys.data import get_loader

    if spec["name"] == "synth":
        root, dataset = synth_root(dict(spec.get("options") or {}), cache_root, render=prepare)
        if not (root / "dataset.json").is_file():
            raise InputError(f"synthetic set {root} not rendered (rank 0 prepares the data)")
        return get_loader("generic").recordings(root), dataset
    loader = get_loader(spec["name"], **(spec.get("options") or {}))
    return loader.recordings(spec["path"]), spec["name"]


def prepare_entry(
    spec: dict, size: int, chunk: int, cache_root=None, workers=None, prepare: bool = True, log=print
) -> Entry:
    """Preprocess one config entry into the cache (``prepare=False``: only check that it is there)."""
    from mmrphys.data.cache import (
        Settings,
        cache_dir_for,
        preprocess,
        read_manifest,
        recording_key,
        resolve_crop,
    )

    cache_root = Path(cache_root or default_cache())
    recs, dataset = _recordings(spec, cache_root, prepare)
    recs = select_recordings(recs, spec)
    settings = Settings(size=size, chunk=chunk, crop=spec.get("crop") or "auto").validate()
    settings = resolve_crop(settings, recs)
    cache_dir = cache_dir_for(cache_root, dataset, settings)
    if prepare:
        log(f"[data] {spec['name']}: {len(recs)} recordings -> {cache_dir} (crop {settings.crop})")
        report = preprocess(recs, cache_root, settings, workers=workers, progress=False, dataset=dataset)
        if report.failed:
            rid, err = next(iter(report.failed.items()))
            raise InputError(
                f"data {spec['name']}: {len(report.failed)} recording(s) failed preprocessing "
                f"(first: {rid}: {err}); see {cache_dir / 'manifest.json'}"
            )
        log(
            f"[data] {spec['name']}: {len(report.processed)} processed, {len(report.skipped)} cached, "
            f"{report.n_chunks} chunks ({report.elapsed_s:.0f} s)"
        )
    manifest = read_manifest(cache_dir)
    entries = []
    for rec in recs:
        e = manifest["recordings"].get(rec.recording_id)
        if e is None or e["status"] != "done" or e["dir"] != recording_key(rec, settings):
            raise InputError(f"{cache_dir}: {rec.recording_id} is not (or no longer) preprocessed there")
        entries.append((rec.recording_id, e))
    labels = [k for k in entries[0][1]["labels"] if all(k in e["labels"] for _, e in entries)]
    mods = MODALITIES[spec.get("modality") or "rgb"]
    blob = json.dumps(
        [manifest["settings_hash"], [(rid, e["dir"], e["n_chunks"], e["labels"]) for rid, e in entries]]
    )
    return Entry(
        name=spec["name"],
        cache_dir=cache_dir,
        recordings=[rid for rid, _ in entries],
        subjects=sorted({str(e["subject_id"]) for _, e in entries}),
        labels=labels,
        modalities=mods,
        manifest_hash=hashlib.sha256(blob.encode()).hexdigest()[:16],
        windows=spec.get("windows"),
        augment=spec.get("augment"),
        derive_rsp=bool(spec.get("derive_rsp")),
    )


class TrainChunks(torch.utils.data.Dataset):
    """The training items of several cache entries: ``{"frames" (C, T, H, W), task: (T,), "id"}``.

    An entry without ``windows`` supplies its cached chunks as they are (frames from
    :class:`CacheDataset`; the extra frame is dropped here because the trainer appends the last frame
    itself). An entry with ``windows: N`` supplies N augmented windows per epoch drawn from its whole
    recordings (:class:`RecordingWindows`). Each entry supplies the tasks all its recordings have.
    """

    def __init__(self, entries: list[Entry], tasks, chunk: int | None = None, seed: int = 0):
        from mmrphys.data.torch_dataset import CacheDataset

        self.entries = entries
        self.parts = []
        self.index: list[tuple[int, int]] = []
        self.ids: list[str] = []
        for p, e in enumerate(entries):
            if isinstance(e, RenderedEntry):
                ds = e.dataset
                self.ids += list(ds.ids)
                self.parts.append(ds)
                self.index += [(p, i) for i in range(len(ds))]
                continue
            have = tuple(t for t in tasks if t in e.labels or (t == "rsp" and e.derive_rsp))
            if e.windows:
                ds = RecordingWindows(e, have, e.windows, chunk, AugmentSpecFor(e), seed=seed + p)
                self.ids += [f"{e.name}/w{k}" for k in range(len(ds))]
            else:
                ds = CacheDataset(e.cache_dir, tasks=have, modalities=e.modalities, recordings=e.recordings)
                self.ids += [f"{e.name}/{d.name}#{k}" for d, k, _ in ds.items]
            self.parts.append(ds)
            self.index += [(p, i) for i in range(len(ds))]
        self.subjects = sorted({s for e in entries for s in e.subjects})

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Augmented entries draw new windows every epoch (a pure function of seed, epoch and index)."""
        for ds in self.parts:
            if hasattr(ds, "set_epoch"):
                ds.set_epoch(epoch)

    def __getitem__(self, i: int) -> dict:
        p, j = self.index[i]
        item = self.parts[p][j]
        if isinstance(item, dict):
            return item | {"id": self.ids[i]}
        frames, labels = item
        return {"frames": frames[:, :-1], **labels, "id": self.ids[i]}

    def manifest_hash(self) -> str:
        """Hash of the cache manifests' entries for the selected recordings (checkpoint guard)."""
        return hashlib.sha256("|".join(e.manifest_hash for e in self.entries).encode()).hexdigest()[:16]


def AugmentSpecFor(entry: Entry):  # noqa: N802 - reads like the class it builds
    from mmrphys.training.augment import AugmentSpec

    return AugmentSpec.from_config(entry.augment)


class RecordingWindows(torch.utils.data.Dataset):
    """``n`` augmented windows of ``chunk`` frames per epoch from an entry's whole cached recordings.

    Recordings are held in memory as uint8 crops (a 1-minute 72×72 recording is 28 MB). Window k of
    epoch e is drawn with ``numpy.random.default_rng([seed, e, k])`` from a recording chosen in
    proportion to its length (:func:`mmrphys.training.augment.draw_window`). ``derive_rsp``: an RSP
    label derived from the contact PPG by amplitude/frequency/baseline modulation
    (:func:`mmrphys.signals.respiration_from_bvp`): a weak label for real data without a breathing
    reference.
    """

    def __init__(self, entry: Entry, tasks, n: int, chunk: int, spec, seed: int = 0):
        from mmrphys.signals import heart_rate, respiration_from_bvp

        self.entry, self.tasks, self.n, self.chunk = entry, tuple(tasks), n, chunk
        self.spec, self.seed = spec, seed
        self.epoch = 0
        self.videos = [read_video(entry, rid) for rid in entry.recordings]
        self.hr = []
        for v in self.videos:
            if len(v.frames) < chunk + 2:
                raise InputError(f"{entry.name}/{v.id}: {len(v.frames)} frames, shorter than one window")
            bvp = v.labels.get("bvp")
            self.hr.append(heart_rate(bvp, v.fs, preset="mmrphys") if bvp is not None else float("nan"))
            if "rsp" in self.tasks and "rsp" not in v.labels:
                v.labels["rsp"] = respiration_from_bvp(v.labels["bvp"], v.fs).astype(np.float32)
        lengths = np.array([len(v.frames) for v in self.videos], dtype=float)
        self.p = lengths / lengths.sum()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int) -> dict:
        from mmrphys.training.augment import draw_window

        rng = np.random.default_rng([self.seed, self.epoch, int(k)])
        r = int(rng.choice(len(self.videos), p=self.p))
        v = self.videos[r]
        labels = {t: v.labels[t] for t in self.tasks}
        x, labs, _ = draw_window(v.frames, labels, self.hr[r], self.chunk, v.fs, self.spec, rng)
        frames = torch.from_numpy(np.ascontiguousarray(x.transpose(3, 0, 1, 2)))  # (C, T, S, S)
        return {"frames": frames, **{t: torch.from_numpy(y) for t, y in labs.items()}}


def read_video(entry: Entry, recording_id: str) -> TestVideo:
    """One cached recording as a test video: its chunks concatenated (tail < T already dropped)."""
    manifest = json.loads((entry.cache_dir / "manifest.json").read_text())
    d = entry.cache_dir / manifest["recordings"][recording_id]["dir"]
    meta = json.loads((d / "meta.json").read_text())
    parts = []
    for m in entry.modalities:
        x = np.concatenate([np.load(d / f"{m}_{k:03d}.npy") for k in range(meta["n_chunks"])])
        parts.append(x)
    frames = parts[0] if len(parts) == 1 else np.concatenate([p.astype(np.float32) for p in parts], axis=-1)
    table = np.concatenate([np.load(d / f"labels_{k:03d}.npy") for k in range(meta["n_chunks"])])
    labels = {name: table[:, i].astype(np.float32) for i, name in enumerate(meta["labels"])}
    fs = float(meta["fps"] or meta["measured_fps"])
    return TestVideo(id=recording_id, frames=frames, fs=fs, labels=labels, subject=str(meta["subject_id"]))


#: ``name: reanimated`` options (``data.train[i].options``) and their defaults; ``params`` are
#: :class:`mmrphys.training.reanimate.RenderParams` fields.
REANIMATED_DEFAULTS = {"n": 400, "seed": 0, "per_video": 4, "params": {}, "per_subject": False,
                       "cache_items": False}


class CachedItems(torch.utils.data.Dataset):
    """Items of a deterministic rendered dataset kept on disk after their first rendering.

    ``root/<manifest hash>/<index>.npz``, each written to a temporary name and renamed, so a killed
    run leaves whole items or none; an unreadable one is rendered again. Rendering a re-animated item
    costs about 0.6 s of CPU, far more than a training step of MMRPhys-S or -M, so epochs after the
    first and other runs on the same stills (leave-subjects-out folds) read them instead.
    """

    def __init__(self, dataset, root: Path):
        self.dataset = dataset
        self.folder = Path(root) / dataset.manifest_hash()

    def __len__(self) -> int:
        return len(self.dataset)

    def manifest_hash(self) -> str:
        return self.dataset.manifest_hash()

    @property
    def ids(self) -> list[str]:
        return list(self.dataset.ids)

    def __getitem__(self, index: int) -> dict:
        path = self.folder / f"{int(index):06d}.npz"
        if path.is_file():
            try:
                with np.load(path, allow_pickle=False) as z:
                    return {k: (str(z[k]) if k == "id" else z[k]) for k in z.files}
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
                pass  # damaged: render it again below
        item = self.dataset[index]
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **{k: (np.asarray(str(v)) if k == "id" else np.asarray(v)) for k, v in item.items()})
        os.replace(tmp, path)
        return item


class _Joined(torch.utils.data.ConcatDataset):
    """Concatenated rendered datasets, one per name, that still name their data and items."""

    def __init__(self, datasets, names):
        super().__init__(datasets)
        self.names = list(names)

    @property
    def ids(self) -> list[str]:
        return [f"{n}:{i}" for n, d in zip(self.names, self.datasets) for i in d.ids]

    def manifest_hash(self) -> str:
        blob = "".join(d.manifest_hash() for d in self.datasets)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def reanimated_entry(spec: dict, size: int, chunk: int, cache_root=None, log=print) -> RenderedEntry:
    """Re-animated synthetic clips (:mod:`mmrphys.training.reanimate`) from the face stills of the
    ``key`` dataset's selected subjects (its ``path``/``subjects``: the training fold's only)."""
    from mmrphys.data import get_loader
    from mmrphys.training.reanimate import ReanimatedDataset, RenderParams
    from mmrphys.training.stills import StillBank

    opts = dict(spec.get("options") or {})
    unknown = set(opts) - set(REANIMATED_DEFAULTS)
    if unknown:
        raise ConfigError(f"data reanimated.options: unknown option(s) {', '.join(sorted(unknown))}; "
                          f"known: {', '.join(REANIMATED_DEFAULTS)}")
    o = REANIMATED_DEFAULTS | opts
    source = spec.get("key")
    if not source or source == "reanimated" or not spec.get("path"):
        raise ConfigError(
            "data reanimated: set key: <dataset the stills come from> and its path (--data KEY=PATH)"
        )
    recs = select_recordings(get_loader(source).recordings(spec["path"]), spec | {"name": source})
    for r in recs:
        if getattr(r, "error", None):
            raise InputError(f"data reanimated: {r.recording_id}: {r.error}")
    videos = [str(r.files["video"]) for r in recs]
    stamp = [(v, os.path.getsize(v), int(os.path.getmtime(v))) for v in videos]
    key = hashlib.sha256(json.dumps([stamp, [str(r.subject_id) for r in recs], o["per_video"]]).encode())
    bank_file = Path(cache_root or default_cache()) / "stills" / f"{source}-{key.hexdigest()[:12]}.npz"
    if bank_file.is_file():
        bank = StillBank.load(bank_file)
    else:
        log(f"[data] reanimated: face stills from {len(recs)} {source} recordings -> {bank_file}")
        bank = StillBank.from_recordings(recs, per_video=int(o["per_video"]))
        bank_file.parent.mkdir(parents=True, exist_ok=True)
        bank.save(bank_file)
    try:
        params = RenderParams(**o["params"])
    except TypeError as err:
        raise ConfigError(f"data reanimated.options.params: {err}") from None
    def make(b):
        d = ReanimatedDataset(b, n=int(o["n"]), seed=int(o["seed"]), chunk=chunk, size=size, params=params)
        return CachedItems(d, bank_file.parent.parent / "reanimated-items") if o["cache_items"] else d

    # per_subject: n clips from each subject's own stills, the same items whichever fold trains on them
    subs = bank.subjects
    ds = _Joined([make(bank.select([s])) for s in subs], subs) if o["per_subject"] else make(bank)
    log(f"[data] reanimated: {len(ds)} clips from {len(bank)} stills of {len(bank.subjects)} subjects")
    return RenderedEntry("reanimated", ds, list(bank.subjects), ds.manifest_hash())


def _entries(cfg: dict, part: str, prepare: bool, log) -> list:
    d = cfg["data"]
    out = []
    for spec in d[part]:
        if spec["name"] == "reanimated":
            out.append(reanimated_entry(spec, d["size"], d["chunk"], d["cache"], log))
        else:
            out.append(prepare_entry(spec, d["size"], d["chunk"], d["cache"], d["workers"], prepare, log))
    return out


def build_train_set(cfg: dict, log=print, prepare: bool = True) -> TrainChunks:
    """The training chunks of every ``data.train`` entry (preprocessed into the cache first)."""
    return TrainChunks(_entries(cfg, "train", prepare, log), cfg["model"]["tasks"], cfg["data"]["chunk"],
                       seed=cfg["seed"])


def build_test_sets(cfg: dict, log=print, prepare: bool = True) -> dict[str, list[TestVideo]]:
    """Test videos per ``data.test`` entry, keyed ``<name>`` (or ``<name>_<k>`` for repeats)."""
    out = {}
    for k, entry in enumerate(_entries(cfg, "test", prepare, log)):
        key = entry.name if entry.name not in out else f"{entry.name}_{k}"
        out[key] = [read_video(entry, rid) for rid in entry.recordings]
    return out


def test_videos(spec: dict, size: int = 72, chunk: int = 180, cache_root=None, log=print) -> list[TestVideo]:
    """Test videos of one entry ``{name, path, subjects, ...}`` (for scripts: compare, analysis)."""
    full = {"subjects": None, "exclude_subjects": None, "fold": None, "split": None, "options": {}} | spec
    entry = prepare_entry(full, size, chunk, cache_root, None, True, log)
    return [read_video(entry, rid) for rid in entry.recordings]


test_videos.__test__ = False  # not a pytest test despite the name
