"""Many files: the main job over a list of videos and folders, with a summary table, resumable.

:func:`estimate_many` runs :func:`mmrphys.vitals.estimate` on every input (folders are searched
recursively for videos by suffix), in ``workers`` processes, and with ``out_dir``:

* writes each input's result set (``<stem>.json``, ``<stem>_waveforms.csv``, ``<stem>_report.png``)
  as soon as it is done, under a stem unique in the batch (:func:`unique_stems`);
* keeps ``out_dir/summary.csv`` (one row per input, :data:`SUMMARY_COLUMNS`) up to date: rewritten
  atomically (temporary file + ``os.replace``) when the batch starts and after every input, so it is
  always a complete table; rows not yet run say ``pending``, and after Ctrl-C ``interrupted``;
* skips inputs whose results are already complete there (all three files, the JSON naming the same
  source file, method and weights), unless ``force``; a half-written set is redone.

A broken input fails alone: its row says ``failed`` with the one-line reason and the others go on.
A worker process that dies (killed, out of memory) is replaced; its input is tried once more, then
marked failed. Workers are ``spawn``-ed processes; the library leaves their settings alone, so pass
``worker_init`` (a picklable callable run once in each worker, e.g. the CLI's one-thread setting).

CPU per input: each process (this one with ``workers=1``, else each worker) builds the method's
estimator (the model loaded and prepared) once and gives every input a clone of it. With several
workers, the workers fill the cores, so each decodes in its own thread (``decode_thread=False``:
no hand-over to a decoding thread), and this process never loads the model: the first worker
that builds the estimator checks the method and weights (a bad one stops the batch before any input,
with the same one-line error). The numbers are the same with any number of workers (tested).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mmrphys.errors import ConfigError, InputError, MmrphysError
from mmrphys.video.images import is_image_folder, natural_key

__all__ = ["BatchItem", "SUMMARY_COLUMNS", "SUMMARY_NAME", "VIDEO_SUFFIXES", "estimate_many", "find_inputs",
           "result_complete", "unique_stems"]

#: File suffixes a folder is searched for (lower case). A file named on the command line is taken
#: whatever its suffix.
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".y4m", ".mpg", ".mpeg", ".ts", ".mts",
                  ".m2ts", ".wmv", ".flv", ".3gp", ".ogv", ".h264", ".264", ".h265", ".hevc", ".mjpeg",
                  ".mjpg")
SUMMARY_NAME = "summary.csv"
#: Columns of ``summary.csv``.
SUMMARY_COLUMNS = ("input", "stem", "status", "heart_rate_bpm", "respiratory_rate_bpm", "hr_confidence",
                   "rr_confidence", "method", "weights", "duration_s", "elapsed_s", "error")
#: A worker that dies this many times while holding the same input gives that input up.
MAX_CRASHES = 2
#: After Ctrl-C: seconds the workers get to stop on their own (they had the terminal's SIGINT too),
#: then, once sent SIGINT, to undo their half-written files before they are killed.
INTERRUPT_SELF_S = 1.0
INTERRUPT_GRACE_S = 5.0


@dataclass
class BatchItem:
    """One input of :func:`estimate_many`: ``status`` is ``ok``, ``failed``, ``skipped`` (results
    already complete in ``out_dir``), ``pending`` or ``interrupted``; ``result`` is the
    :class:`~mmrphys.vitals.Result` when ``ok`` (with ``out_dir``, its report image is dropped once
    written), ``error`` the one-line reason when ``failed``; ``row`` is its ``summary.csv`` row."""

    path: Path
    stem: str
    status: str = "pending"
    result: object | None = None
    error: str | None = None
    row: dict = field(default_factory=dict)
    elapsed_s: float = float("nan")


# ----------------------------------------------------------------------------- inputs and names
def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def find_inputs(paths: Iterable) -> list[Path]:
    """The input files: files as given (whatever their suffix; a missing one stays in the list and
    fails with its own reason), a folder of image frames given by name as one input (it holds image
    files and no video directly: :func:`mmrphys.video.is_image_folder`), other folders searched
    recursively for :data:`VIDEO_SUFFIXES` (hidden files and folders skipped), in natural order per
    folder; the same file twice is kept once.

    :class:`InputError` when a folder holds no video, or when nothing is given.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    seen: set = set()
    for given in paths:
        p = Path(given)
        if str(given) == "":
            raise InputError("empty input path")
        if is_image_folder(p, VIDEO_SUFFIXES):
            found = [p]  # a folder of image frames given by name is one recording
        elif p.is_dir():
            found = [f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES and f.is_file()
                     and not _hidden(f.relative_to(p))]
            if not found:
                raise InputError(f"{p}: no video files in this folder or below "
                                 f"({', '.join(VIDEO_SUFFIXES[:6])}, ...); a folder of image frames is "
                                 "one input when named itself (with --fps)")
            found.sort(key=lambda f: natural_key(f.relative_to(p).as_posix()))
        else:
            found = [p]
        for f in found:
            key = _identity(f)
            if key not in seen:
                seen.add(key)
                out.append(f)
    if not out:
        raise InputError("no input videos given")
    return out


def _identity(path: Path):
    try:
        st = path.stat()
        return (st.st_dev, st.st_ino)
    except OSError:
        return str(path.absolute())


def unique_stems(paths: list[Path]) -> list[str]:
    """A result name per input, unique in the batch (case-insensitively, for case-insensitive file
    systems) and the same for the same list of inputs.

    An input keeps its file stem (``clip``) unless another input has the same one; those get the
    path from the inputs' common folder, joined with ``_`` (``a/clip.mp4``, ``b/clip.mp4`` ->
    ``a_clip``, ``b_clip``), with the suffix when only that differs (``clip_mp4``, ``clip_avi``);
    any name still taken gets ``-2``, ``-3`` ... in input order.
    """
    paths = [Path(p) for p in paths]
    stems = [p.stem or p.name for p in paths]
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(stems):
        groups.setdefault(s.lower(), []).append(i)
    for members in groups.values():
        if len(members) < 2:
            continue
        absolute = [paths[i].absolute() for i in members]
        base = Path(os.path.commonpath([str(a.parent) for a in absolute]))
        rels = [a.relative_to(base) for a in absolute]
        names = ["_".join(r.with_suffix("").parts) for r in rels]
        if len({n.lower() for n in names}) < len(names):
            names = ["_".join(r.parts).replace(".", "_") for r in rels]
        for i, name in zip(members, names):
            stems[i] = name
    taken: dict[str, int] = {}
    out = []
    for s in stems:
        name, k = s, 1
        while name.lower() in taken:
            k += 1
            name = f"{s}-{k}"
        taken[name.lower()] = 1
        out.append(name)
    return out


# ----------------------------------------------------------------------------- one input
def _requested(method: str | None, weights) -> tuple[str, str | None]:
    from mmrphys.vitals.estimate import DEFAULT_METHOD, UNSUPERVISED_METHODS

    m = (method or DEFAULT_METHOD).lower()
    if m in UNSUPERVISED_METHODS:
        return m, None
    return m, str("default" if weights is None else weights)


def _same_file(a, b: Path) -> bool:
    try:
        return a is not None and os.path.samefile(a, b)
    except OSError:
        return False


def result_complete(out_dir, stem: str, path, method: str | None = None, weights=None) -> dict | None:
    """The JSON of ``stem``'s results in ``out_dir`` when all three files are there and the JSON says
    they come from ``path`` with ``method``/``weights`` (as :func:`estimate_many` would ask); else None."""
    from mmrphys.vitals.result import SAVE_NAMES

    out_dir = Path(out_dir)
    files = {k: out_dir / v.format(stem=stem) for k, v in SAVE_NAMES.items()}
    if not all(f.is_file() and f.stat().st_size > 0 for f in files.values()):
        return None
    try:
        data = json.loads(files["json"].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not _same_file(data.get("source"), Path(path)):
        return None
    want_method, want_weights = _requested(method, weights)
    model = data.get("model")
    if want_weights is None:
        ok = data.get("method") == want_method and model is None
    else:
        ok = isinstance(model, dict) and model.get("weights") == want_weights
    return data if ok else None


def _fmt(x, digits: int) -> str:
    try:
        x = float(x)
    except (TypeError, ValueError):
        return ""
    return f"{x:.{digits}f}" if math.isfinite(x) else ""


def _row_from_json(data: dict) -> dict:
    conf = data.get("confidence") or {}
    model = data.get("model") or {}
    return {"heart_rate_bpm": _fmt(data.get("heart_rate_bpm"), 2),
            "respiratory_rate_bpm": _fmt(data.get("respiratory_rate_bpm"), 2),
            "hr_confidence": _fmt(conf.get("heart_rate"), 3),
            "rr_confidence": _fmt(conf.get("respiratory_rate"), 3),
            "method": str(data.get("method") or ""), "weights": str(model.get("weights") or ""),
            "duration_s": _fmt(data.get("duration_s"), 2)}


def _one_line(err: BaseException) -> str:
    msg = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, MmrphysError):
        return msg or type(err).__name__
    return f"{type(err).__name__}: {msg}" if msg else type(err).__name__  # a bug: name the exception


def _prototype(options: dict):
    """The estimator ``options`` ask for (weights loaded, model prepared): built once per process."""
    from mmrphys.vitals.estimate import DEFAULT_METHOD
    from mmrphys.vitals.estimators import make_estimator, method_name

    return make_estimator(method_name(options["method"], DEFAULT_METHOD), options["weights"],
                          options["backend"], threads=options["threads"])


def _with_estimator(options: dict, proto, decode_thread: bool = True) -> dict:
    """``options`` for :func:`_run_one` in a process that built ``proto``: each input's pipeline gives
    each face a clone of it (the model shared, not copied); the prototype itself is never fed."""
    return dict(options, estimator=proto, decode_thread=decode_thread)


def _run_one(path: Path, stem: str, out_dir: Path | None, options: dict) -> dict:
    """Estimate one input (and save its results); an outcome dict, never an exception but Ctrl-C."""
    from mmrphys.vitals.estimate import estimate

    t0 = time.perf_counter()
    try:
        result = estimate(path, progress=False, **options)
        if out_dir is not None:
            result.save(out_dir, stem=stem)
            result.report_frame = None  # written; not carried back through the pipe nor kept
    except Exception as err:  # one input's failure, whatever it is, must not stop the batch
        return {"status": "failed", "error": _one_line(err), "elapsed_s": time.perf_counter() - t0}
    return {"status": "ok", "result": result, "elapsed_s": time.perf_counter() - t0}


# ----------------------------------------------------------------------------- worker processes
def _worker_main(conn, worker_init, out_dir, options) -> None:
    """A worker: runs ``worker_init`` once, builds the estimator (then sends None; or the error that
    stops the batch, and ends), then runs one input per message until ``None``."""
    try:
        if worker_init is not None:
            worker_init()
        try:
            proto = _prototype(options)
        except Exception as err:  # a bad method or weights: the parent raises it
            conn.send(_picklable(err))
            return
        conn.send(None)
        options = _with_estimator(options, proto, decode_thread=False)  # the workers fill the cores
        while True:
            task = conn.recv()
            if task is None:
                return
            index, path, stem = task
            conn.send((index, _run_one(path, stem, out_dir, options)))
    except (KeyboardInterrupt, EOFError, BrokenPipeError):
        return  # interrupted (Ctrl-C reaches the whole process group) or the parent went away


def _picklable(err: Exception) -> Exception:
    """``err`` as an exception the parent can unpickle: same class and message for our errors."""
    if isinstance(err, MmrphysError):
        return type(err)(_one_line(err))
    return RuntimeError(f"a worker process could not start: {_one_line(err)}")


class _Worker:
    def __init__(self, ctx, worker_init, out_dir, options):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, worker_init, out_dir, options),
                                name="mmrphys-batch", daemon=True)
        self.proc.start()
        child.close()
        self.index: int | None = None

    def wait_ready(self) -> None:
        """Wait until the worker has built its estimator; raise its error if it could not."""
        try:
            err = self.conn.recv()
        except (EOFError, OSError):
            self.proc.join(5.0)
            raise MmrphysError(f"a worker process died while starting (exit code {self.proc.exitcode})") \
                from None
        if err is not None:
            raise err

    def give(self, index: int, path: Path, stem: str) -> None:
        self.index = index
        self.conn.send((index, path, stem))

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass

    def interrupt(self) -> None:
        if self.proc.is_alive() and self.proc.pid:
            try:
                os.kill(self.proc.pid, getattr(signal, "SIGINT", signal.SIGTERM))
            except OSError:
                pass


def _start_pool(ctx, workers: int, worker_init, out_dir, options) -> list[_Worker]:
    """``workers`` started workers, each with its estimator built (they start together); the first
    error a worker meets while building it is raised, after every worker is stopped."""
    pool: list[_Worker] = []
    try:
        for _ in range(workers):
            pool.append(_Worker(ctx, worker_init, out_dir, options))
        for w in pool:
            w.wait_ready()
    except BaseException as err:
        _stop_workers(pool, interrupted=not isinstance(err, Exception))
        raise
    return pool


def _stop_workers(pool: list[_Worker], interrupted: bool) -> None:
    """Stop every worker: politely after a normal end. After Ctrl-C: a terminal's Ctrl-C has reached
    the workers too (one process group), so they get a moment to unwind on their own (a second
    SIGINT would interrupt their clean-up); those still running then get SIGINT (so a half-written
    result is undone) and, past :data:`INTERRUPT_GRACE_S`, are terminated."""
    if interrupted:
        deadline = time.monotonic() + INTERRUPT_SELF_S
        for w in pool:
            w.proc.join(max(0.0, deadline - time.monotonic()))
    for w in pool:
        if interrupted:
            w.interrupt()
        else:
            w.stop()
    deadline = time.monotonic() + (INTERRUPT_GRACE_S if interrupted else 30.0)
    for w in pool:
        w.proc.join(max(0.0, deadline - time.monotonic()))
        if w.proc.is_alive():
            w.proc.terminate()
            w.proc.join(2.0)
        if w.proc.is_alive():  # pragma: no cover - ignores SIGTERM
            w.proc.kill()
            w.proc.join(1.0)
        w.conn.close()


def _run_pool(pool: list[_Worker], ctx, todo: list[int], items: list[BatchItem], out_dir, options,
              worker_init, finish: Callable[[int, dict], None]) -> None:
    """Run ``todo`` on the started ``pool`` (a worker that dies is replaced in the list)."""
    from multiprocessing.connection import wait

    queue = deque(todo)
    crashes: dict[int, int] = {}
    while queue or any(w.index is not None for w in pool):
        for w in pool:
            if w.index is None and queue:
                i = queue.popleft()
                w.give(i, items[i].path, items[i].stem)
        busy = [w for w in pool if w.index is not None]
        ready = set(wait([w.conn for w in busy] + [w.proc.sentinel for w in busy]))
        for k, w in enumerate(pool):
            if w.index is None or (w.conn not in ready and w.proc.sentinel not in ready):
                continue
            index, outcome = w.index, None
            try:
                if w.conn.poll():
                    _, outcome = w.conn.recv()
            except (EOFError, OSError):
                outcome = None
            if outcome is not None:
                w.index = None
                finish(index, outcome)
                continue
            if w.proc.is_alive():
                continue
            # the worker died holding this input: replace it; the input gets one more try
            code = w.proc.exitcode
            w.conn.close()
            pool[k] = _Worker(ctx, worker_init, out_dir, options)
            pool[k].wait_ready()
            crashes[index] = crashes.get(index, 0) + 1
            if crashes[index] >= MAX_CRASHES:
                finish(index, {"status": "failed", "elapsed_s": float("nan"),
                               "error": f"the worker process died (exit code {code}) on this input "
                                        f"{crashes[index]} times"})
            else:
                queue.appendleft(index)


# ----------------------------------------------------------------------------- summary
def _summary_row(item: BatchItem) -> dict:
    row = dict.fromkeys(SUMMARY_COLUMNS, "")
    row.update(item.row)
    row.update({"input": str(item.path), "stem": item.stem, "status": item.status,
                "elapsed_s": _fmt(item.elapsed_s, 1), "error": (item.error or "").replace("\n", " ")})
    return row


def _write_summary(out_dir: Path, items: list[BatchItem]) -> Path:
    from mmrphys.vitals.result import _write_all

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    w.writeheader()
    for item in items:
        w.writerow(_summary_row(item))
    text = buf.getvalue()
    path = out_dir / SUMMARY_NAME
    return _write_all({"summary": (path, lambda fh: fh.write(text), False)})["summary"]


def _remove_stale_temps(out_dir: Path, stems: list[str]) -> None:
    """Temporary files a killed earlier run left behind for these results (``.NAME.*.tmp|.old``)."""
    from mmrphys.vitals.result import SAVE_NAMES

    if not out_dir.is_dir():
        return
    names = {v.format(stem=s) for s in stems for v in SAVE_NAMES.values()} | {SUMMARY_NAME}
    for f in out_dir.iterdir():
        if f.name.startswith(".") and f.suffix in (".tmp", ".old") and f.is_file():
            rest = f.name[1:]
            if any(rest.startswith(n + ".") for n in names):
                f.unlink(missing_ok=True)


def read_summary(path) -> list[dict]:
    """The rows of a ``summary.csv`` (dicts keyed by :data:`SUMMARY_COLUMNS`)."""
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# ----------------------------------------------------------------------------- the batch
def estimate_many(paths, out_dir=None, workers: int = 1, method: str | None = None, weights=None,
                  force: bool = False, progress: bool | None = None, *, fps: float | None = None,
                  backend: str = "auto", preset: str = "mmrphys", max_faces: int | None = None,
                  threads: int = 1,
                  worker_init: Callable[[], None] | None = None,
                  on_item: Callable[[BatchItem], None] | None = None) -> list[BatchItem]:
    """Run the main job on every input; a :class:`BatchItem` per input, in input order.

    ``paths``: video files and folders (searched recursively, :func:`find_inputs`). ``out_dir``:
    where each input's results and ``summary.csv`` go (None: nothing is written, nothing skipped).
    ``workers``: processes (1: one after the other in this process; more: that many worker
    processes, at most one per input to run, and this process only hands out the inputs).
    ``method``/``weights``/``fps``/``backend``/``preset``/``max_faces``/``threads``: as
    :func:`mmrphys.estimate`, for every input. ``force``:
    redo inputs whose results are already complete in ``out_dir``. ``progress``: a bar over files on
    stderr (default: when stderr is a terminal). ``worker_init``: run once in each worker process
    (picklable; e.g. to set torch threads: the library does not). ``on_item(item)`` is called in this
    process as each input ends (ok, failed or skipped). Options are checked (and the method's weights
    loaded, here or with several workers in the workers) before any input is run; Ctrl-C stops the
    workers, marks the unfinished rows ``interrupted`` in the summary and re-raises
    :class:`KeyboardInterrupt`.
    """
    import multiprocessing as mp

    from mmrphys.vitals.pipeline import check_max_faces
    from mmrphys.vitals.result import check_output_dir

    workers = int(workers)
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    files = find_inputs(paths)
    stems = unique_stems(files)
    items = [BatchItem(path=f, stem=s) for f, s in zip(files, stems)]
    options = {"method": method, "weights": weights, "fps": fps, "backend": backend, "preset": preset,
               "max_faces": check_max_faces(max_faces), "threads": int(threads)}
    if fps is not None:
        from mmrphys.video.rate import check_fps

        check_fps(fps, "fps")
    # a bad method or unreadable weights stop the batch before any input, with the one error; with
    # several workers they are checked there (this process need not load the model at all)
    pooled = workers > 1
    proto = None if pooled else _prototype(options)
    if out_dir is not None:
        out_dir = Path(out_dir)
        for s in stems:
            check_output_dir(out_dir, s, "output folder")
        _remove_stale_temps(out_dir, stems)
    done_count = [0]

    def report(item: BatchItem) -> None:
        done_count[0] += 1
        bar.update(1)
        if on_item is not None:
            on_item(item)

    def finish(index: int, outcome: dict) -> None:
        item = items[index]
        item.status = outcome["status"]
        item.elapsed_s = float(outcome.get("elapsed_s", float("nan")))
        if item.status == "ok":
            item.result = outcome["result"]
            item.row = _row_from_json(item.result.to_dict(waveforms=False))
        else:
            item.error = outcome.get("error") or "failed"
        if out_dir is not None:
            _write_summary(out_dir, items)
        report(item)

    todo = []
    for i, item in enumerate(items):
        data = None if (out_dir is None or force) else result_complete(out_dir, item.stem, item.path,
                                                                      method, weights)
        if data is not None:
            item.status = "skipped"
            item.row = _row_from_json(data)
        else:
            todo.append(i)
    ctx = mp.get_context("spawn")
    pool = None
    if pooled and todo:
        pool = _start_pool(ctx, min(workers, len(todo)), worker_init, out_dir, options)
    elif proto is None:  # nothing to run: the options are still checked
        proto = _prototype(options)
    bar = _bar(len(items), progress)
    try:
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            _write_summary(out_dir, items)
        for item in items:
            if item.status == "skipped":
                report(item)
        if pool is None:
            one = _with_estimator(options, proto)
            for i in todo:
                finish(i, _run_one(items[i].path, items[i].stem, out_dir, one))
        else:
            _run_pool(pool, ctx, todo, items, out_dir, options, worker_init, finish)
    except BaseException:
        if pool is not None:  # stopped first: after Ctrl-C they undo their half-written files
            _stop_workers(pool, interrupted=True)
            pool = None
        for item in items:
            if item.status == "pending":
                item.status = "interrupted"
        if out_dir is not None:
            try:
                _write_summary(out_dir, items)
            except (MmrphysError, OSError):  # pragma: no cover - the folder went away meanwhile
                pass
        raise
    finally:
        if pool is not None:
            _stop_workers(pool, interrupted=False)
        bar.close()
    return items


def _bar(total: int, enabled: bool | None):
    from tqdm import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, unit="file", disable=not enabled, dynamic_ncols=True, file=sys.stderr,
                desc="videos")
