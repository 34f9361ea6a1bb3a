"""``mmrphys live``: heart rate and breathing of every face, live, from a camera or a video file.

examples:
  mmrphys live --camera 0                    webcam 0 (OpenCV); readings once a second; Ctrl-C stops
  mmrphys live --camera 0 --out sessions/    + the session (like the web app's export) and the results
  mmrphys live clip.mp4                      a file played in real time (--speed 4: four times faster)
  mmrphys live clip.mp4 --fast --out out/    as fast as possible; out/clip.json equals `estimate`'s
  mmrphys live --camera clip.mp4             a file read through OpenCV as if it were the camera
  mmrphys live --camera 0 --method mmrphys --max-faces 2

Readings: HR from the last 10 s once a face has been seen for 6 s, RR from the last 20 s after 15 s,
each with its confidence (0-1), per face; shown with `rich` when it is installed and the output is a
terminal, else as one plain line per reading. On the end of the file, --duration or Ctrl-C the whole
stream is analysed as `mmrphys estimate` would and, with --out, written: <name>.json,
<name>_waveforms.csv, <name>_report.png and <name>_session.json (the main face; other faces
<name>_face<id>_session.json), which `mmrphys analyze session` re-analyses. Exit 0, or 130 after
Ctrl-C (the session is written first).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

SESSION_FORMAT = "mmrphys-web-session"  # mmrphys.web.session.FORMAT, read by `mmrphys analyze session`
#: Seconds of camera frames buffered while the stream is busy (a model window, several faces).
CAMERA_BUFFER_S = 2.0


def add_parser(sub) -> None:
    from mmrphys.vitals.estimate import DEFAULT_METHOD, UNSUPERVISED_METHODS

    p = sub.add_parser("live", help="live HR/RR per face from a camera or a file, session written at the end",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", nargs="?", default=None, metavar="FILE",
                   help="a video file, played in real time (decoded as `mmrphys estimate` decodes it)")
    p.add_argument("--camera", default=None, metavar="INDEX|PATH",
                   help="an OpenCV VideoCapture source: a camera index (0), a device or a file path")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="write the results and the session here at the end")
    p.add_argument("--method", default=None,
                   help=f"mmrphys or {', '.join(UNSUPERVISED_METHODS)} (default: {DEFAULT_METHOD})")
    p.add_argument("--weights", default=None, help="weights file or shipped name (with --method mmrphys)")
    p.add_argument("--max-faces", type=int, default=None, metavar="N",
                   help="follow at most N faces (default: all)")
    p.add_argument("--fps", type=float, default=None,
                   help="frame rate if the source does not tell (default: from the source or the timestamps)")
    p.add_argument("--duration", type=float, default=None, metavar="S", help="stop after S seconds of video")
    p.add_argument("--speed", type=float, default=1.0,
                   help="play a file at this multiple of real time (default 1)")
    p.add_argument("--fast", action="store_true", help="play a file as fast as it can be processed")
    p.add_argument("--threads", type=int, default=1, help="threads for a model (default 1)")
    p.add_argument("--plain", action="store_true", help="plain text lines even where rich is installed")
    p.add_argument("--quiet", action="store_true", help="no readings, only the final summary")
    p.set_defaults(func=run)


def _stem(args) -> str:
    if args.video is not None:
        return Path(args.video).stem
    if not str(args.camera).isdigit():
        return Path(str(args.camera)).stem or "camera"
    return "live-" + datetime.now().strftime("%Y%m%d-%H%M%S")


def check_args(args) -> None:
    from mmrphys.errors import ConfigError
    from mmrphys.video.rate import check_fps
    from mmrphys.vitals.result import check_output_dir

    if (args.video is None) == (args.camera is None):
        raise ConfigError("give a FILE or --camera INDEX|PATH (one of them)")
    if args.fps is not None:
        check_fps(args.fps, "--fps")
    for name, value in (("--duration", args.duration), ("--speed", args.speed)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} must be a positive number of seconds, got {value:g}")
    if args.max_faces is not None and args.max_faces < 1:
        raise ConfigError(f"--max-faces must be at least 1, got {args.max_faces}")
    if not 1 <= args.threads <= 256:
        raise ConfigError(f"--threads must be between 1 and 256, got {args.threads}")
    if args.out is not None:
        check_output_dir(args.out, args.stem, "--out")


# ----------------------------------------------------------------------------- sources
def _file_frames(args):
    """(fps, iterator of (lazy frame, t)) for FILE, decoded as `estimate` decodes it."""
    from mmrphys.video import open_video
    from mmrphys.vitals.estimate import PROCESS_MAX_SIDE

    reader = open_video(args.video, fps=args.fps, max_side=PROCESS_MAX_SIDE)
    return float(reader.fps), reader.frames()


def _camera_frames(args):
    """(fps or None, iterator of (RGB frame, t), whether it is a file, release) from OpenCV's
    VideoCapture (the iterator releases the capture when it ends or is closed)."""
    import cv2

    from mmrphys.cli.process import opencv_quiet
    from mmrphys.errors import InputError

    source = int(args.camera) if str(args.camera).isdigit() else str(args.camera)
    with opencv_quiet():
        cap = cv2.VideoCapture(source)
        opened = cap.isOpened()
    if not opened:
        raise InputError(f"camera {args.camera}: cannot be opened by OpenCV (no such device or file?)")
    is_file = isinstance(source, str) and Path(source).is_file()
    fps = args.fps or (cap.get(cv2.CAP_PROP_FPS) if is_file else None) or None
    if fps is not None and not 1 <= fps <= 1000:
        fps = None

    def frames():
        start = time.monotonic()
        try:
            while True:
                ok, bgr = cap.read()
                if not ok:
                    return
                # a file keeps its own clock; a camera's frames are timed as they arrive
                t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if is_file else time.monotonic() - start
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), t
        finally:
            cap.release()

    if is_file:
        return fps, frames(), is_file, cap.release
    # A camera is read (and its frames timed) in a background thread, CAMERA_BUFFER_S ahead: a model
    # window running inside one push (up to ~1 s of CPU with several faces) then delays frames without
    # dropping or mistiming them.
    from mmrphys.video import prefetch

    return fps, prefetch(frames(), depth=int(CAMERA_BUFFER_S * (fps or 30))), is_file, cap.release


# ----------------------------------------------------------------------------- display
class _PlainDisplay:
    def __init__(self, quiet: bool):
        self.quiet = quiet

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def show(self, reading) -> None:
        if self.quiet:
            return
        print(format_reading(reading), flush=True)


class _RichDisplay:
    def __init__(self):
        from rich.live import Live

        self._live = Live(auto_refresh=False)

    def __enter__(self):
        self._live.__enter__()
        return self

    def __exit__(self, *exc):
        return self._live.__exit__(*exc)

    def show(self, reading) -> None:
        from rich.table import Table

        table = Table(title=f"mmrphys live  t = {reading.t_s:.0f} s")
        for col in ("face", "HR (bpm)", "conf.", "RR (/min)", "conf."):
            table.add_column(col, justify="right")
        for f in reading.faces:
            main = " *" if f.id == reading.main_face_id else ""
            table.add_row(f"{f.id}{main}", _num(f.heart_rate_bpm), _num(f.confidence.get("heart_rate"), 2),
                          _num(f.respiratory_rate_bpm), _num(f.confidence.get("respiratory_rate"), 2))
        self._live.update(table, refresh=True)


def _num(x, digits: int = 1) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def format_reading(reading) -> str:
    """One line: ``12.0 s  face 1*: HR 72.4 bpm (0.91), RR 14.1 /min (0.80) | face 2: ...``."""
    parts = []
    for f in reading.faces:
        main = "*" if f.id == reading.main_face_id and len(reading.faces) > 1 else ""
        rr = "" if not math.isfinite(f.respiratory_rate_bpm) else \
            f", RR {f.respiratory_rate_bpm:.1f} /min ({_num(f.confidence.get('respiratory_rate'), 2)})"
        parts.append(f"face {f.id}{main}: HR {_num(f.heart_rate_bpm)} bpm "
                     f"({_num(f.confidence.get('heart_rate'), 2)}){rr}")
    return f"{reading.t_s:6.1f} s  " + (" | ".join(parts) if parts else "no face")


def _display(args):
    if not args.quiet and not args.plain and sys.stdout.isatty():
        try:
            return _RichDisplay()
        except ImportError:  # rich is optional
            pass
    return _PlainDisplay(args.quiet)


# ----------------------------------------------------------------------------- session files
def session_json(result, face, readings, meta: dict) -> str:
    """A web-app style session of one face: its analysis span's waveforms and the readings shown."""
    s, e = face.analysis_span
    t = face.timestamps_s[s:e]
    rsp = face.rsp[s:e] if face.rsp is not None and np.isfinite(face.rsp[s:e]).all() else None
    hist_hr, hist_rr = [], []
    for r in readings:
        f = r.face(face.face_id)
        if f is None:
            continue
        # t_s: when the reading was shown (as the page records it); data_t_s: the end of the waveform
        # it comes from (a model's output ends at its last window, up to a window stride earlier)
        hist_hr.append({"t_s": r.t_s, "data_t_s": f.t_s, "bpm": _finite(f.heart_rate_bpm),
                        "confidence": f.confidence.get("heart_rate")})
        if math.isfinite(f.respiratory_rate_bpm):
            hist_rr.append({"t_s": r.t_s, "data_t_s": f.t_s, "bpm": f.respiratory_rate_bpm,
                            "confidence": f.confidence.get("respiratory_rate")})
    obj = {
        "format": SESSION_FORMAT, "version": 1,
        "metadata": {**meta, "duration_s": float(t[-1] - t[0]) if t.size else 0.0,
                     "sampling_rate_hz": face.fps, "samples": int(t.size), "method": face.method,
                     "model": (face.model or {}).get("name"), "face_id": face.face_id,
                     "main_face": face.main_face,
                     "span_s": [float(t[0]), float(t[-1])] if t.size else None},
        "timestamps_s": [round(float(v), 6) for v in t],
        "bvp": [round(float(v), 6) for v in face.bvp[s:e]],
        "rsp": None if rsp is None else [round(float(v), 6) for v in rsp],
        "rates": {"heart_rate_bpm": hist_hr[-1]["bpm"] if hist_hr else _finite(face.heart_rate_bpm),
                  "respiratory_rate_bpm": (hist_rr[-1]["bpm"] if hist_rr
                                           else _finite(face.respiratory_rate_bpm)),
                  "heart": hist_hr, "respiratory": hist_rr,
                  "final": {"heart_rate_bpm": _finite(face.heart_rate_bpm),
                            "respiratory_rate_bpm": _finite(face.respiratory_rate_bpm),
                            "confidence": face.confidence}},
        "warnings": face.warnings,
    }
    return json.dumps(obj, indent=1, allow_nan=False)


def _finite(x):
    return float(x) if x is not None and math.isfinite(x) else None


def session_files(result, readings, stem: str, meta: dict) -> dict[str, str]:
    """``{file name: JSON text}``: ``<stem>_session.json`` (main face), ``<stem>_face<id>_session.json``."""
    files = {}
    for face in result.faces or [result]:
        name = f"{stem}_session.json" if face.main_face else f"{stem}_face{face.face_id}_session.json"
        files[name] = session_json(result, face, readings, meta)
    return files


# ----------------------------------------------------------------------------- run
def run(args) -> int:
    from mmrphys.cli.process import configure_inference, interrupt_flag, runs_torch
    from mmrphys.errors import InputError
    from mmrphys.vitals.stream import Stream

    args.stem = _stem(args)
    check_args(args)
    if runs_torch(args):
        configure_inference(args.threads)
    release = None
    if args.video is not None:
        fps, frames = _file_frames(args)
        is_file, label = True, str(args.video)
    else:
        fps, frames, is_file, release = _camera_frames(args)
        label = f"camera {args.camera}"
    try:
        stream = Stream(fps=fps, method=args.method, weights=args.weights, max_faces=args.max_faces,
                        name=label, threads=args.threads)
    except BaseException:
        if release is not None:
            release()  # the frame loop never started: it would not release the camera itself
        raise
    pace = is_file and not args.fast
    started = datetime.now(timezone.utc)
    interrupted = False
    with interrupt_flag() as stop, _display(args) as display:
        if not args.quiet:  # once Ctrl-C is caught: from this line on it stops the stream cleanly
            how = "as fast as possible" if is_file and args.fast else (
                f"at {args.speed:g}x real time" if is_file else "live")
            print(f"live: {label} {how}, method {stream.method}; first reading after 6 s of face; "
                  "Ctrl-C stops", flush=True)
        wall0, shown = time.monotonic(), None
        try:
            for frame, t in frames:
                if stop.is_set():
                    interrupted = True
                    break
                if args.duration is not None and t >= args.duration:
                    break
                if pace:
                    ahead = t / args.speed - (time.monotonic() - wall0)
                    if ahead > 0 and stop.wait(ahead):
                        interrupted = True
                        break
                reading = stream.push(frame, t)
                if reading is not None and reading is not shown:
                    display.show(reading)
                    shown = reading
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()
        interrupted = interrupted or stop.is_set()
    seconds = stream.n_frames / stream.fps if stream.fps else 0.0
    try:
        result = stream.close()
    except InputError as err:
        if interrupted:
            print(f"mmrphys live: interrupted after {seconds:.1f} s of video: {err}; nothing written",
                  file=sys.stderr)
            return 130
        raise
    if args.out is not None:
        meta = {"start_time": started.isoformat(), "end_time": datetime.now(timezone.utc).isoformat(),
                "frames": stream.n_frames, "source": "file" if is_file else "camera", "source_label": label,
                "recorder": "mmrphys live", "backend": (result.model or {}).get("backend")}
        sessions = session_files(result, stream.readings(), args.stem, meta)
        written = result.save(args.out, stem=args.stem, also=sessions)
    else:
        written = {}
    print(f"{args.stem}: {result.summary()}")
    if len(result.faces) > 1:
        for face in result.faces:
            print(f"  face {face.face_id}{' (main)' if face.main_face else ''}: {face.summary()}")
    for kind, path in written.items():
        print(f"  {kind}: {path}")
    if interrupted:
        print("interrupted: the stream up to here was analysed and written", file=sys.stderr)
        return 130
    return 0
