"""Named weights: a catalogue of our shipped weights and the authors' released checkpoints.

The catalogue is data, ``src/mmrphys/weights/catalogue.json`` (as torchvision's weights enums and
timm's pretrained configs): one entry per file with its name and aliases, where it comes from
(shipped in the package, or a repository, a full commit and a path), its SHA-256 and size, the
architecture it builds (registry name and kwargs), its input, tasks, training data, the licences of
the weights and of the training data, and the accuracy we measured through our pipeline
(``measured``, never on data the weights were trained on). This module reads the catalogue and finds
or fetches files; :mod:`mmrphys.models.checkpoints` turns a file into a model.

Network. Nothing is ever downloaded unless asked: ``resolve_weights(name, download=True)`` (what
``--weights NAME`` does for a remote entry) or :func:`download_weights` (``mmrphys weights
download``). A download goes from ``https://raw.githubusercontent.com/<repository>/<commit>/<path>``
(the base address is the user setting ``MMRPHYS_WEIGHTS_URL``, e.g. a mirror or ``file:///dir``)
into :func:`cache_dir`, through a temporary file that replaces the final name only after its size
and SHA-256 match the catalogue, so a partial or wrong file never sits under the final name. A
cached file is used without network; a local file path always works without network.
"""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from mmrphys.errors import WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"
CATALOGUE_FILE = "catalogue.json"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
KINDS = ("ours", "official", "onnx")
TIMEOUT_S = 60.0
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Weights:
    """One catalogue entry (see the module docstring); ``path`` is where its file is or will be."""

    name: str
    kind: str
    file: str
    folder: Path
    sha256: str | None = None
    bytes: int | None = None
    aliases: tuple[str, ...] = ()
    repository: str | None = None
    commit: str | None = None
    source_path: str | None = None
    architecture: dict = field(default_factory=dict)
    input: dict = field(default_factory=dict)
    tasks: tuple[str, ...] = ()
    trained_on: dict = field(default_factory=dict)
    licence: dict = field(default_factory=dict)
    measured: dict | None = None
    notes: str = ""
    card: dict = field(default_factory=dict)
    runtime: dict = field(default_factory=dict)

    @property
    def remote(self) -> bool:
        """True for files fetched on request (the authors' releases), False for shipped ones."""
        return self.repository is not None

    @property
    def path(self) -> Path:
        """The shipped file, or the file in :func:`cache_dir` (which exists only once downloaded)."""
        return cache_dir() / self.file if self.remote else self.folder / self.file

    @property
    def runtime_path(self) -> Path | None:
        """The shipped runtime twin (``runtime.file``: the same weights as an ONNX file for
        onnxruntime, see :mod:`mmrphys.models.runtime`), or None where there is none."""
        name = self.runtime.get("file")
        if self.remote or not name or not (self.folder / name).is_file():
            return None
        return self.folder / name

    @property
    def model(self) -> str | None:
        """Registry name of the architecture (None for a bare ``*.pt`` without a card)."""
        return self.architecture.get("model") or self.card.get("model")

    def url(self, base_url: str | None = None) -> str | None:
        """Download address: ``<base>/<repository>/<commit>/<path>``; None for shipped weights."""
        if not self.remote:
            return None
        base = (base_url or os.environ.get("MMRPHYS_WEIGHTS_URL") or DEFAULT_BASE_URL).rstrip("/")
        return f"{base}/{self.repository}/{self.commit}/{urllib.parse.quote(self.source_path or self.file)}"

    def to_dict(self) -> dict:
        """The entry as plain data (what ``mmrphys weights info --json`` prints)."""
        out = {
            "name": self.name,
            "aliases": list(self.aliases),
            "kind": self.kind,
            "file": self.file,
            "source": "shipped" if not self.remote else f"{self.repository}@{self.commit}:{self.source_path}",
            "url": self.url(),
            "path": str(self.path),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "architecture": self.architecture,
            "input": self.input,
            "tasks": list(self.tasks),
            "trained_on": self.trained_on,
            "licence": self.licence,
            "measured": self.measured,
            "notes": self.notes,
        }
        out |= {"card": self.card} if self.card else {}
        return out | ({"runtime": self.runtime} if self.runtime else {})


# ----------------------------------------------------------------------------- the catalogue
def read_catalogue(folder: Path | None = None) -> dict:
    """The raw catalogue data of ``folder`` (default :data:`WEIGHTS_DIR`); ``{}`` when it has none."""
    f = Path(folder or WEIGHTS_DIR) / CATALOGUE_FILE
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsError(f"{f}: unreadable weights catalogue ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("weights", []), list):
        raise WeightsError(f"{f}: a weights catalogue is an object with a 'weights' list")
    return data


def _entry(raw: dict, folder: Path, where: Path) -> Weights:
    try:
        name, kind, file = raw["name"], raw["kind"], raw["file"]
    except (KeyError, TypeError):
        raise WeightsError(f"{where}: catalogue entry without name/kind/file: {str(raw)[:80]}") from None
    if kind not in KINDS:
        raise WeightsError(f"{where}: entry {name!r}: kind must be one of {', '.join(KINDS)}, got {kind!r}")
    source = raw.get("source") or {}
    if source and not all(source.get(k) for k in ("repository", "commit", "path")):
        raise WeightsError(f"{where}: entry {name!r}: a source needs repository, commit and path")
    if source and not (raw.get("sha256") and raw.get("bytes")):
        raise WeightsError(f"{where}: entry {name!r}: a remote entry needs sha256 and bytes")
    return Weights(
        name=name,
        kind=kind,
        file=file,
        folder=folder,
        sha256=raw.get("sha256"),
        bytes=raw.get("bytes"),
        aliases=tuple(raw.get("aliases", ())),
        repository=source.get("repository"),
        commit=source.get("commit"),
        source_path=source.get("path"),
        architecture=dict(raw.get("architecture", {})),
        input=dict(raw.get("input", {})),
        tasks=tuple(raw.get("tasks", ())),
        trained_on=dict(raw.get("trained_on", {})),
        licence=dict(raw.get("licence", {})),
        measured=raw.get("measured"),
        notes=raw.get("notes", ""),
        card=dict(raw.get("card", {})),
        runtime=dict(raw.get("runtime", {})),
    )


def catalogue(folder: Path | None = None) -> dict[str, Weights]:
    """Every named weights, by name: the catalogue's entries, then any other ``*.pt`` in ``folder``."""
    folder = Path(folder or WEIGHTS_DIR)
    where = folder / CATALOGUE_FILE
    found: dict[str, Weights] = {}
    for raw in read_catalogue(folder).get("weights", []):
        w = _entry(raw, folder, where)
        if w.name in found:
            raise WeightsError(f"{where}: weights {w.name!r} listed twice")
        found[w.name] = w
    if folder.is_dir():  # a file saved with checkpoints.save_weights and dropped in the folder
        listed = {w.file for w in found.values() if not w.remote}
        for f in sorted(folder.glob("*.pt")):
            if f.name not in listed and f.stem not in found:
                found[f.stem] = Weights(f.stem, "ours", f.name, folder)
    return found


def default_name(folder: Path | None = None) -> str | None:
    """Name of the default weights (the catalogue's ``"default"``, else the only shipped file), or None."""
    name = read_catalogue(folder).get("default")
    if name:
        return name
    shipped = list_weights(folder)
    return next(iter(shipped)) if len(shipped) == 1 else None


def _index(entries: dict[str, Weights]) -> dict[str, str]:
    index: dict[str, str] = {}
    for w in entries.values():
        for key in (w.name, *w.aliases, w.file):
            index.setdefault(key.lower(), w.name)
    return index


def find(name: str, folder: Path | None = None) -> Weights | None:
    """The entry named ``name`` (its name, an alias or its file name, any case; ``"default"``), or None."""
    entries = catalogue(folder)
    if name == "default":
        name = default_name(folder) or ""
    key = _index(entries).get(str(name).lower())
    return entries[key] if key else None


def get_entry(name: str, folder: Path | None = None) -> Weights:
    """The entry named ``name``; :class:`WeightsError` naming close matches when there is none."""
    w = find(name, folder)
    if w is not None:
        return w
    folder = Path(folder or WEIGHTS_DIR)
    entries = catalogue(folder)
    if name == "default":
        raise WeightsError(
            "no default weights are shipped with this installation "
            f"(nothing in {folder}); pass a weights file, e.g. --weights path/to/model.pt"
        )
    if not entries:
        raise WeightsError(f"unknown weights {name!r}; this installation has no named weights ({folder})")
    keys = [k for w in entries.values() for k in (w.name, *w.aliases)]
    close = difflib.get_close_matches(str(name), keys, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    many = len(entries) > 4
    known = f"'mmrphys weights list' shows all {len(entries)}" if many else f"known: {', '.join(entries)}"
    raise WeightsError(f"unknown weights {name!r}{hint}; {known}")


def licence_terms(w: Weights) -> dict:
    """``{"weights": {...}, "data": {dataset: {...}}, "research_only": bool}`` from the catalogue's
    ``licences`` and ``datasets`` tables: the licence of ``w``'s weights, the terms of its training
    data, and whether either limits use to research."""
    data = read_catalogue(w.folder)
    key = w.licence.get("weights")
    lic = {"key": key, **data.get("licences", {}).get(key, {})} if key else {}
    datasets = {d: data.get("datasets", {}).get(d, {}) for d in w.licence.get("data", ())}
    research_only = bool(lic.get("research_only")) or any(v.get("research_only") for v in datasets.values())
    return {"weights": lic, "data": datasets, "research_only": research_only}


def list_weights(folder: Path | None = None) -> dict[str, Weights]:
    """The weights whose files ship with the package (no download), by name."""
    return {n: w for n, w in catalogue(folder).items() if not w.remote}


def get_weights(name: str = "default", folder: Path | None = None) -> Weights:
    """A named entry whose file is here now (shipped, or remote and already downloaded)."""
    w = get_entry(name, folder)
    if not w.path.is_file():
        if w.remote:
            raise WeightsError(
                f"weights {w.name!r} are not downloaded: run 'mmrphys weights download {w.name}'"
            )
        raise WeightsError(f"weights {w.name!r}: file {w.path} is missing")
    return w


# ----------------------------------------------------------------------------- files and the cache
def cache_dir() -> Path:
    """Downloaded weights: ``$MMRPHYS_CACHE`` or ``$XDG_CACHE_HOME/mmrphys`` (``~/.cache/mmrphys``),
    plus ``/weights``."""
    root = os.environ.get("MMRPHYS_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "mmrphys"
    )
    return Path(root).expanduser() / "weights"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def is_cached(w: Weights) -> bool:
    """Whether a remote entry's file is in the cache with the catalogue's size and SHA-256."""
    p = cache_dir() / w.file
    try:
        return p.is_file() and p.stat().st_size == w.bytes and file_sha256(p) == w.sha256
    except OSError:
        return False


def resolve_weights(name_or_path, *, download: bool = False, progress: bool | None = None) -> Path:
    """The file for a weights path or name; downloads a remote entry only when ``download=True``.

    An existing file path is returned as is (no network). A name (see :func:`find`) gives the shipped
    file, the cached file (checked against the catalogue's SHA-256, without network), or, with
    ``download=True``, :func:`download_weights` (``progress``: a progress bar on stderr; None shows
    it on a terminal). Raises :class:`WeightsError` with one line saying what to do otherwise.
    """
    text = str(name_or_path)
    p = Path(text).expanduser()
    if p.is_file():
        return p
    w = find(text)
    if w is None:
        if p.is_dir():
            raise WeightsError(f"{text}: is a folder, not a weights file")
        if p.suffix or "/" in text or "\\" in text:
            raise WeightsError(f"{text}: no such weights file")
        get_entry(text)  # raises the "unknown weights" error
    if not w.remote:
        if not w.path.is_file():
            raise WeightsError(f"weights {w.name!r}: file {w.path} is missing")
        return w.path
    if is_cached(w):
        return w.path
    if not download:
        raise WeightsError(
            f"weights {w.name!r} are not downloaded: run 'mmrphys weights download {w.name}' "
            f"({_kb(w)} KB from {w.url()})"
        )
    return download_weights(w, progress=progress)


def _kb(w: Weights) -> int:
    return round((w.bytes or 0) / 1024)


class _CacheWriteError(Exception):
    pass


def _offline(w: Weights, url: str, reason: str) -> WeightsError:
    return WeightsError(
        f"cannot download {w.name} from {url}: {reason}; download it elsewhere and pass the file path, "
        "or set MMRPHYS_WEIGHTS_URL"
    )


def download_weights(
    name_or_entry, *, progress: bool | None = None, base_url: str | None = None, force: bool = False
) -> Path:
    """Download a remote entry into :func:`cache_dir` (a cached, verified file is kept unless ``force``).

    Prints one line ``downloading NAME (N KB) from URL`` to stderr, streams through a temporary file
    in the cache folder, checks the size and SHA-256, then renames it into place; on any failure
    the temporary file is deleted and :class:`WeightsError` says why in one line.
    """
    w = name_or_entry if isinstance(name_or_entry, Weights) else get_entry(str(name_or_entry))
    if not w.remote:
        return get_weights(w.name).path  # shipped: nothing to download
    if not force and is_cached(w):
        return w.path
    url = w.url(base_url)
    dest = cache_dir() / w.file
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{w.file}.", suffix=".part", dir=dest.parent)
    except OSError as err:
        raise _unwritable(dest.parent, err, url) from None
    print(f"downloading {w.name} ({_kb(w)} KB) from {url}", file=sys.stderr, flush=True)
    try:
        with os.fdopen(fd, "wb") as out:
            digest, n = _fetch(w, url, out, progress)
            try:
                out.flush()
                os.fsync(out.fileno())
            except OSError as err:
                raise _CacheWriteError(err) from None
        if n != w.bytes:
            raise _offline(w, url, f"the transfer ended after {n:,} of {w.bytes:,} bytes")
        if digest != w.sha256:
            raise WeightsError(
                f"{w.name}: the file from {url} has SHA-256 {digest[:16]}..., the catalogue expects "
                f"{w.sha256[:16]}...; deleted the download ({tmp}); nothing was saved as {dest}"
            )
        os.replace(tmp, dest)
    except _CacheWriteError as err:
        raise _unwritable(dest.parent, err.args[0], url) from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return dest


def _unwritable(folder: Path, err: OSError, url: str) -> WeightsError:
    return WeightsError(
        f"cannot write to the weights cache {folder} ({err.strerror or err}); set MMRPHYS_CACHE to a "
        f"writable folder, or download {url} elsewhere and pass the file path"
    )


def _fetch(w: Weights, url: str, out, progress: bool | None) -> tuple[str, int]:
    """Stream ``url`` into ``out``; returns ``(sha256, bytes)``; network failures raise :func:`_offline`."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else bool(progress)
    h, n = hashlib.sha256(), 0
    request = urllib.request.Request(url, headers={"User-Agent": "mmrphys"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as resp, tqdm(
            total=w.bytes, unit="B", unit_scale=True, unit_divisor=1024, desc=w.name, file=sys.stderr,
            disable=not show, leave=False,
        ) as bar:
            ended = False
            while not ended and n <= (w.bytes or 0):  # never read far past the expected size
                try:
                    chunk = resp.read(_CHUNK)
                except http.client.IncompleteRead as err:  # a body cut short (some Python versions)
                    chunk, ended = err.partial, True
                if not chunk:
                    break
                try:
                    out.write(chunk)
                except OSError as err:
                    raise _CacheWriteError(err) from None
                h.update(chunk)
                n += len(chunk)
                bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise _offline(w, url, f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _offline(w, url, str(err.reason)) from None
    except (http.client.HTTPException, OSError) as err:  # reset, timeout, truncated chunk
        raise _offline(w, url, f"{type(err).__name__}: {err}".rstrip(": ")) from None
    return h.hexdigest(), n
