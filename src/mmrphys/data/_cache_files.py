"""Files of a cached recording: written with their size and SHA-256, verified before they are trusted.

SHA-256 (hashlib) rather than a faster non-cryptographic digest: it is in every Python, it is what
``sha256sum`` prints (a user can check a file by hand), and with the SHA extensions of current x86
and ARM CPUs it runs at ~0.5-2 GB/s, faster than hashlib's BLAKE2 on the machine it was measured on
(0.49 vs 0.19 GB/s, one loaded core): a whole 72 px cache of 8 UBFC-rPPG subjects (223 MB) is read
and hashed in about half a second.

Verification levels (:func:`verify_recording`), each including the ones before:

``sizes``   every file listed in ``meta.json`` exists with the size written (stat only)
``labels``  plus the SHA-256 of the label and time files (tiny): what :class:`CacheDataset` checks
``full``    plus the SHA-256 of every frame chunk: what a rerun of ``preprocess`` checks
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path

import numpy as np

from mmrphys.errors import InputError

FORMAT = "mmrphys-cache/2"  # /2: meta.json lists each file's size and SHA-256
OLD_FORMATS = ("mmrphys-cache/1",)  # no digests: structure checked only (see verify_recording)
META = "meta.json"
LEVELS = ("sizes", "labels", "full")


class CacheWriteError(InputError):
    """The cache cannot be written (read-only, disk full, file size limit): the run stops, the
    recordings finished so far are kept."""


class DamagedRecording(InputError):
    """A cached recording's files differ from what was written (missing, truncated, changed)."""


def write_bytes(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as err:
        raise CacheWriteError(f"cannot write {path}: {err.strerror or err}") from None


def save_npy(path: Path, array: np.ndarray) -> dict:
    """Write ``array`` as ``.npy``; returns ``{"size", "sha256"}`` of the bytes written."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    data = buf.getvalue()
    write_bytes(path, data)
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def expected_files(meta: dict) -> list[str]:
    """Every file a recording with this ``meta`` holds: frame chunks, label chunks, times."""
    n = int(meta["n_chunks"])
    names = [f"{m}_{k:03d}.npy" for k in range(n) for m in meta["modalities"]]
    return names + [f"labels_{k:03d}.npy" for k in range(n)] + ["times.npy"]


def _hashed(name: str, level: str) -> bool:
    return level == "full" or (level == "labels" and not any(name.startswith(m) for m in ("rgb", "thermal")))


def read_meta(d: Path, meta_sha256: str | None = None) -> dict:
    """``d/meta.json`` parsed and sanity-checked; :class:`DamagedRecording` naming it otherwise."""
    p = d / META
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DamagedRecording(f"{p} is missing") from None
    except OSError as err:
        raise DamagedRecording(f"cannot read {p}: {err.strerror or err}") from None
    if meta_sha256 and hashlib.sha256(raw).hexdigest() != meta_sha256:
        raise DamagedRecording(f"{p} differs from the one written (its SHA-256 in manifest.json)")
    try:
        meta = json.loads(raw)
        expected_files(meta)
        _ = meta["n_frames"], meta["fps"], meta["subject_id"]
        if meta["n_chunks"] < 1 or not isinstance(meta["labels"], list) or not meta["labels"]:
            raise ValueError("no chunks or no labels")
        files = meta.get("files", {})
        if not isinstance(files, dict) or not all(_file_entry(v) for v in files.values()):
            raise ValueError("bad 'files' entries")
    except (ValueError, KeyError, TypeError) as err:
        raise DamagedRecording(f"{p} is not a valid meta.json ({type(err).__name__}: {err})") from None
    if meta.get("format") != FORMAT and meta.get("format") not in OLD_FORMATS:
        raise DamagedRecording(f"{p}: unknown cache format {meta.get('format')!r}")
    return meta


def _file_entry(v) -> bool:
    return isinstance(v, dict) and isinstance(v.get("size"), int) and isinstance(v.get("sha256"), str)


def verify_recording(d, level: str = "full", meta_sha256: str | None = None) -> dict:
    """Check the cached recording in folder ``d`` at ``level`` (``sizes``, ``labels``, ``full``; see
    the module doc) and return its meta dict; raises :class:`DamagedRecording` naming the first bad
    file. A recording of an older cache without digests (``meta["format"]`` in ``OLD_FORMATS``) gets
    a structural check instead: every file is a ``.npy`` whose size matches its header."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    d = Path(d)
    meta = read_meta(d, meta_sha256)
    names = expected_files(meta)
    if meta["format"] in OLD_FORMATS:
        for name in names:
            _check_npy_structure(d / name)
        return meta
    files = meta.get("files")
    if not isinstance(files, dict) or sorted(files) != sorted(names):
        raise DamagedRecording(f"{d / META}: its file list does not match its chunk count")
    for name in names:
        p = d / name
        try:
            size = p.stat().st_size
        except FileNotFoundError:
            raise DamagedRecording(f"{p} is missing") from None
        want = files[name]
        if size != want["size"]:
            raise DamagedRecording(f"{p} has {size} bytes, {want['size']} were written (cut or changed)")
        if _hashed(name, level) and sha256_file(p) != want["sha256"]:
            raise DamagedRecording(f"{p} differs from the file written (SHA-256 mismatch)")
    return meta


def _check_npy_structure(p: Path) -> None:
    try:
        with open(p, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
            if version not in read:
                raise ValueError(f"npy version {version}")
            shape, _, dtype = read[version](fh)
            header = fh.tell()
        size = p.stat().st_size
    except FileNotFoundError:
        raise DamagedRecording(f"{p} is missing") from None
    except (OSError, ValueError) as err:
        raise DamagedRecording(f"{p} is not a readable .npy ({err})") from None
    want = header + int(np.prod(shape)) * dtype.itemsize
    if size != want:
        raise DamagedRecording(f"{p} has {size} bytes, its header says {want} (truncated or changed)")


def discard(folder: Path) -> None:
    """Remove ``folder``: renamed first to a hidden stale name (removed by a later run if this one
    dies midway), so it never looks like a finished recording while it goes."""
    if not folder.exists():
        return
    aside = folder.with_name(f".{folder.name}.tmp-discard-{os.getpid()}")
    try:
        os.replace(folder, aside)
    except OSError as err:
        raise CacheWriteError(f"cannot remove the damaged {folder}: {err.strerror or err}") from None
    shutil.rmtree(aside, ignore_errors=True)
