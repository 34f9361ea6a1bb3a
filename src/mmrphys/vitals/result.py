"""The main job's result: JSON (the contract), CSV of the waveforms, and the PNG report.

Every file is written to a temporary file beside its target and renamed over it at the end
(``os.replace``), so an error leaves no half-written file; :meth:`Result.save` renames its three
files only once all three are written. :func:`check_output_dir` / :func:`check_output_file` tell
before a run whether its results can be written there (the CLI calls them before decoding).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.vitals import report as _report
from mmrphys.vitals.report import LOW_CONFIDENCE

__all__ = ["LOW_CONFIDENCE", "Result", "SAVE_NAMES", "check_output_dir", "check_output_file"]
#: Names of the files :meth:`Result.save` writes, by kind.
SAVE_NAMES = {"json": "{stem}.json", "csv": "{stem}_waveforms.csv", "report": "{stem}_report.png"}


def _existing_ancestor(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _check_writable_folder(folder: Path, what: str, target: Path | None = None) -> None:
    """``folder`` (which may not exist yet) can be created and written to; ConfigError naming ``target``
    (default: ``folder``) else."""
    base = _existing_ancestor(folder)
    name = target if target is not None else folder
    if not base.is_dir():
        raise ConfigError(f"{what} {name}: {base} is a file, not a folder")
    try:  # permissions alone do not tell (root, read-only mounts, /proc): try it
        with tempfile.NamedTemporaryFile(dir=base, prefix=".mmrphys-write-test-"):
            pass
    except OSError as err:
        raise ConfigError(f"{what} {name}: cannot write in {base} ({type(err).__name__}: "
                          f"{err.strerror or err})") from None


def check_output_file(path, what: str = "output") -> Path:
    """Raise :class:`ConfigError` (one line naming ``path``) unless a file can be written at ``path``."""
    if str(path) in ("", "."):
        raise ConfigError(f"{what}: empty file name")
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder, not a file name")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{what} {path} is not a regular file (a device or pipe)")
    _check_writable_folder(path.parent, what, path)
    return path


def check_output_dir(folder, stem: str, what: str = "output folder") -> dict[str, Path]:
    """Raise :class:`ConfigError` unless :meth:`Result.save` can write into ``folder``; returns its paths."""
    if str(folder) == "":
        raise ConfigError(f"{what}: empty folder name")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {folder} is a file, not a folder")
    _check_writable_folder(folder, what)
    paths = {k: folder / v.format(stem=stem) for k, v in SAVE_NAMES.items()}
    for p in paths.values():
        if p.exists() and not p.is_file():
            raise ConfigError(f"{what} {folder}: {p.name} is taken by a folder or device, not a file")
    return paths


def _make_dirs(folder: Path) -> list[Path]:
    """``mkdir -p folder``; returns the folders it created (deepest last)."""
    created = []
    p = folder
    while not p.exists() and p != p.parent:
        created.append(p)
        p = p.parent
    folder.mkdir(parents=True, exist_ok=True)
    return created[::-1]


def _remove_dirs(created: list[Path]) -> None:
    for d in reversed(created):
        try:
            d.rmdir()
        except OSError:
            pass


def _file_mode(path: Path) -> int:
    """Permission bits for a new file at ``path``: the old file's, else 0o666 less the umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        pass
    umask = 0o022
    try:  # reading the umask through os.umask would change it, briefly, for the whole process
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o666 & ~umask


def _write_temp(path: Path, write: Callable[[object], None], binary: bool) -> Path:
    """Run ``write(fh)`` on a new temporary file beside ``path``; returns the temporary path."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    text = {} if binary else {"newline": "", "encoding": "utf-8"}
    try:
        with os.fdopen(fd, "wb" if binary else "w", **text) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode(path))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _write_all(targets: dict[str, tuple[Path, Callable, bool]]) -> dict[str, Path]:
    """Write every target to a temporary file, then rename them all into place.

    All or nothing: files being replaced are first moved aside and put back if any step fails, so an
    error leaves the folder as it was (old results intact, no new file, no temporary file).
    """
    temps: dict[str, Path] = {}
    backups: dict[Path, Path] = {}
    created: list[Path] = []
    placed: list[Path] = []

    def undo() -> None:
        for tmp in temps.values():
            tmp.unlink(missing_ok=True)
        for path in placed:
            path.unlink(missing_ok=True)
        for path, old in backups.items():
            try:
                os.replace(old, path)
            except OSError:  # pragma: no cover - the folder became unwritable mid-way
                pass
        _remove_dirs(created)

    try:
        for path, _, _ in targets.values():
            created += _make_dirs(path.parent)
        for kind, (path, write, binary) in targets.items():
            temps[kind] = _write_temp(path, write, binary)
        for kind, (path, _, _) in targets.items():
            if path.is_file():
                fd, old = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".old")
                os.close(fd)
                os.replace(path, old)
                backups[path] = Path(old)
            os.replace(temps[kind], path)
            del temps[kind]
            placed.append(path)
    except OSError as err:
        undo()
        where = err.filename or next(iter(targets.values()))[0]
        raise ConfigError(f"cannot write {where} ({type(err).__name__}: {err.strerror or err})") from None
    except BaseException:
        undo()
        raise
    for old in backups.values():
        old.unlink(missing_ok=True)
    return {kind: path for kind, (path, _, _) in targets.items()}


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
    #: The face this result is about: its id (1, 2, ... in order of appearance), median box
    #: (x, y, w, h) and box track (``{"t_s": [...], "xywh": [[x, y, w, h], ...]}``, one box a second)
    #: in pixels of the processed frame (``frame_size`` = (height, width)), seconds with a face.
    face_id: int | None = None
    face_box: tuple | None = None
    box_track: dict | None = field(default=None, repr=False)
    present_s: float | None = None
    frame_size: tuple | None = None
    #: Every face reported (this main face included), ordered by id; empty on a face's own result.
    faces: list = field(default_factory=list, repr=False)
    main_face: bool = True

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
        if self.faces:
            d["main_face_id"] = self.face_id
            d["frame_size"] = None if self.frame_size is None else {"height": self.frame_size[0],
                                                                      "width": self.frame_size[1]}
            d["faces"] = [f.face_dict(waveforms) for f in self.faces]
        return _clean(d)

    def face_dict(self, waveforms: bool = True) -> dict:
        """This face's entry of the JSON's ``faces`` list (the grid ``timestamps_s`` is top-level)."""
        d = {
            "id": self.face_id,
            "main": self.main_face,
            "box": None if self.face_box is None else list(self.face_box),
            "boxes": self.box_track,
            "present_s": self.present_s,
            "heart_rate_bpm": self.heart_rate_bpm,
            "respiratory_rate_bpm": self.respiratory_rate_bpm,
            "confidence": self.confidence,
            "quality": self.quality,
            "hrv": self.hrv,
            "rolling": self.rolling,
            "respiration_source": self.rsp_source,
            "segments_s": (self.extra.get("face") or {}).get("segments_s"),
        }
        if waveforms:
            d["bvp"] = self.bvp
            d["rsp"] = self.rsp
        return _clean(d)

    def _json_writer(self):
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        return lambda fh: fh.write(text)

    def _csv_writer(self):
        def rsp_of(r):
            return r.rsp if r.rsp is not None else np.full_like(r.bvp, np.nan)

        columns = [self.bvp, rsp_of(self)]
        header = ["time_s", "bvp", "rsp"]
        if len(self.faces) > 1:  # every face's own columns, suffixed by its id
            for f in self.faces:
                columns += [f.bvp, rsp_of(f)]
                header += [f"bvp_{f.face_id}", f"rsp_{f.face_id}"]

        def cell(x):
            return "" if not math.isfinite(x) else f"{x:.5f}"

        def write(fh):
            w = csv.writer(fh)
            w.writerow(header)
            for i, t in enumerate(self.timestamps_s):
                w.writerow([f"{t:.4f}"] + [cell(c[i]) for c in columns])

        return write

    def _report_writer(self):
        buf = io.BytesIO()
        _report.render_report(self, buf)  # drawn before any file is touched
        data = buf.getvalue()
        return lambda fh: fh.write(data)

    def write_json(self, path) -> Path:
        """The JSON contract to ``path`` (atomically: a temporary file renamed at the end)."""
        path = check_output_file(path, "JSON")
        return _write_all({"json": (path, self._json_writer(), False)})["json"]

    def write_csv(self, path) -> Path:
        """Waveforms, one row per sample: ``time_s, bvp, rsp`` (the main face; empty cells where not
        estimated), then with several faces ``bvp_<id>, rsp_<id>`` for every face (main included)."""
        path = check_output_file(path, "CSV")
        return _write_all({"csv": (path, self._csv_writer(), False)})["csv"]

    def write_report(self, path) -> Path:
        """The PNG report to ``path`` (atomically)."""
        path = check_output_file(path, "report")
        return _write_all({"report": (path, self._report_writer(), True)})["report"]

    def save(self, out_dir, stem: str = "result", also: dict[str, str] | None = None) -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>_waveforms.csv`` and ``<stem>_report.png`` into ``out_dir``,
        and each ``{file name: text}`` of ``also`` beside them (keyed by file name in the returned dict).

        All are rendered to temporary files first and renamed only when all are done: an error
        (one-line :class:`ConfigError` naming the path) leaves none of them, and no temp file.
        """
        paths = check_output_dir(out_dir, stem)
        writers = {"json": self._json_writer(), "csv": self._csv_writer(), "report": self._report_writer()}
        targets = {k: (paths[k], writers[k], k == "report") for k in paths}
        for name, text in (also or {}).items():
            path = Path(out_dir) / name
            if path.exists() and not path.is_file():
                raise ConfigError(f"output folder {out_dir}: {name} is taken by a folder or device, "
                                  "not a file")
            targets[name] = (path, lambda fh, text=text: fh.write(text), False)
        return _write_all(targets)

    def confidence_of(self, vital: str) -> float | None:
        """Confidence (0-1) of ``"heart_rate"`` or ``"respiratory_rate"``, or None when not reported."""
        conf = getattr(self, "confidence", None) or self.quality.get("confidence") or {}
        value = conf.get(vital) if isinstance(conf, dict) else None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if math.isfinite(value) else None

    def trust_note(self, vital: str) -> str:
        """``""``, ``" (confidence 0.91)"`` or ``" (LOW CONFIDENCE 0.12)"`` for the summary and report."""
        c = self.confidence_of(vital)
        if c is None:
            return ""
        return f" (LOW CONFIDENCE {c:.2f})" if c < LOW_CONFIDENCE else f" (confidence {c:.2f})"

    def summary(self) -> str:
        """One line: HR, RR (each with its confidence, LOW CONFIDENCE when below :data:`LOW_CONFIDENCE`),
        signal quality and face coverage."""
        def fmt(x, unit):
            return "n/a" if x is None or not math.isfinite(x) else f"{x:.1f} {unit}"

        q = self.quality
        hr, rr = self.heart_rate_bpm, self.respiratory_rate_bpm
        hr_note = self.trust_note("heart_rate") if hr is not None and math.isfinite(hr) else ""
        rr_note = self.trust_note("respiratory_rate") if rr is not None and math.isfinite(rr) else ""
        return (f"HR {fmt(hr, 'bpm')}{hr_note}, RR {fmt(rr, '/min')}{rr_note}, "
                f"signal quality {q.get('signal_quality', float('nan')):.2f}, "
                f"face found in {100 * q.get('face_detected_fraction', 0):.0f}% of frames")
