"""The main job as an incremental object: frames in one at a time, a :class:`Result` per face at the end.

:func:`mmrphys.vitals.estimate` is "open a source, :meth:`Pipeline.push` every frame,
:meth:`Pipeline.finish`"; :class:`mmrphys.vitals.stream.Stream` is the same object fed by the
caller, with :meth:`Pipeline.reading` asked once a second. Per frame::

    frame, t ──► MultiFaceTracker ──► {face id: crop box | None}
                                          │ each face: its own Estimator (push crop | gap)
    finish(): per face: valid frames → uniform grid → Estimator.finish → signals → Result
              the faces ranked (longest present, then largest); the first is the main face

A source is anything yielding ``(frame, t_s)`` with ``frame`` an RGB uint8 (H, W, 3) array or a lazy
frame of :mod:`mmrphys.video` (``.gray()``, ``.crop_rgb(xyxy, size)``, ``.rgb()``, ``.shape``).

Memory: per frame its timestamp; per face one flag per frame since it appeared, its box once a
second, one report thumbnail and what its estimator keeps (3 floats per frame, or one window of
model-sized crops).
"""

from __future__ import annotations

import math
import warnings as _warnings
from array import array
from dataclasses import dataclass, field

import numpy as np

from mmrphys.errors import ConfigError, InputError
from mmrphys.faces import FaceDetector
from mmrphys.faces.track import MultiFaceTracker
from mmrphys.tensors.deflicker import GopDeflicker, GopPhase
from mmrphys.video import as_lazy_frame, uniform_grid
from mmrphys.vitals.estimators import Estimator
from mmrphys.vitals.result import Result

__all__ = ["FaceReading", "Pipeline", "Reading", "check_max_faces"]

#: ``Result.rsp_source`` of an RGB model's breathing (see ``estimators.RR_SOURCES``).
RSP_FROM_CROP_PULSE = "pulse modulation (POS on the model's face crops)"
#: ``Result.rsp_source`` of a method's own BVP modulation, and of a model's RSP output.
RSP_FROM_BVP = "BVP modulation (AM/FM/baseline)"
RSP_FROM_MODEL = "model RSP output"
#: Shortest usable face segment (and clip): one 180-frame model window at 30 fps.
MIN_DURATION_S = 6.0
#: Shortest segment a respiratory rate is reported for (3+ breaths at the slowest rate in band).
RR_MIN_DURATION_S = 15.0
#: Face detection interval and the longest gap bridged with the last box (also the time a face may
#: be lost and keep its box).
DETECT_EVERY_S = 1.0
MAX_GAP_S = 1.5
#: A heart rate this close (bpm) to a fixed key-frame rate or its multiple gets a warning.
KEYFRAME_LINE_BPM = 1.5
#: How often the whole frame is searched for new faces while faces are followed.
DISCOVER_EVERY_S = 2.0
#: Windows of the rolling rates (and of a stream's readings).
ROLLING_HR_WINDOW_S = 10.0
ROLLING_RR_WINDOW_S = 20.0
ROLLING_STEP_S = 1.0
#: A face's box is kept once per this many seconds for the JSON's box track.
BOX_TRACK_STEP_S = 1.0


@dataclass(frozen=True)
class FaceReading:
    """One face's latest rates in a stream: from the last ``ROLLING_HR_WINDOW_S`` (HR) and
    ``ROLLING_RR_WINDOW_S`` (RR, once ``RR_MIN_DURATION_S`` of face are seen) seconds of its waveform
    up to ``t_s``; NaN where not yet estimable. ``box`` is (x, y, w, h) in frame pixels."""

    id: int
    t_s: float
    heart_rate_bpm: float
    respiratory_rate_bpm: float
    confidence: dict
    box: tuple
    seen_s: float


@dataclass(frozen=True)
class Reading:
    """What a stream knows at video time ``t_s``: one :class:`FaceReading` per face followed now with
    enough face (≥ ``MIN_DURATION_S``); ``heart_rate_bpm`` / ``respiratory_rate_bpm`` / ``confidence``
    are the main face's (followed longest so far), NaN / {} without one."""

    t_s: float
    faces: tuple
    main_face_id: int | None = None

    def face(self, face_id: int) -> FaceReading | None:
        return next((f for f in self.faces if f.id == face_id), None)

    @property
    def heart_rate_bpm(self) -> float:
        f = self.face(self.main_face_id) if self.main_face_id is not None else None
        return f.heart_rate_bpm if f else float("nan")

    @property
    def respiratory_rate_bpm(self) -> float:
        f = self.face(self.main_face_id) if self.main_face_id is not None else None
        return f.respiratory_rate_bpm if f else float("nan")

    @property
    def confidence(self) -> dict:
        f = self.face(self.main_face_id) if self.main_face_id is not None else None
        return dict(f.confidence) if f else {}


def check_max_faces(max_faces) -> int | None:
    """``max_faces`` as None (all) or an int >= 1; :class:`ConfigError` naming it else."""
    if max_faces is None:
        return None
    if isinstance(max_faces, bool) or not isinstance(max_faces, (int, np.integer)) or max_faces < 1:
        raise ConfigError(f"max_faces must be a whole number >= 1 (or None for all), got {max_faces!r}")
    return int(max_faces)


@dataclass
class _Face:
    """What the pipeline keeps for one tracked face."""

    id: int
    estimator: Estimator
    first_index: int
    flags: bytearray = field(default_factory=bytearray)  # per frame since first_index: crop pushed
    in_gap: bool = False
    box_t: list = field(default_factory=list)
    box_xywh: list = field(default_factory=list)
    next_box_t: float = -math.inf
    report_frame: np.ndarray | None = None
    report_box: tuple | None = None
    deflicker: GopDeflicker = field(default_factory=GopDeflicker)


class Pipeline:
    """Frames in, one :class:`Result` per face out (see the module docstring).

    ``estimator``: a prototype from :func:`~mmrphys.vitals.estimators.make_estimator` (each face gets
    a clone); ``src_fps``: the source's nominal frame rate (sets the detection schedule and the
    estimators' grid); ``warnings``: what is already known about the source (the results carry it);
    ``max_faces``: faces followed at a time and reported (None: all); ``n_frames``: the expected
    length, if known (only picks the report's frame).
    """

    def __init__(self, estimator: Estimator, src_fps: float, warnings: list[str] | None = None, *,
                 max_faces: int | None = None, detect_every_s: float = DETECT_EVERY_S, name: str = "frames",
                 n_frames: int | None = None, detector: FaceDetector | None = None, keyframe_times=None):
        self.proto = estimator
        # the source's key-frame times, filled as it decodes (a list shared with the reader): a fixed
        # short GOP's flicker is removed from every face crop (mmrphys.tensors.deflicker)
        self._keyframes = keyframe_times if keyframe_times is not None else []
        self._kf_next = 0
        self._gop = GopPhase()
        self._phase: tuple[int, int | None] = (0, None)
        self.gop_frames: int | None = None  # the fixed GOP the crops were corrected for
        self.src_fps = float(src_fps)
        self.warnings = list(warnings or [])
        self._keyframe_hz: list[float] = []  # key-frame rate and harmonics in the HR band, set by finish()
        self.fs = estimator.start(self.src_fps, self.warnings)
        self.max_faces = check_max_faces(max_faces)
        self.name = name
        self.detect_every = max(1, int(round(detect_every_s * self.src_fps)))
        self.max_gap = int(round(MAX_GAP_S * self.src_fps))
        self.tracker = MultiFaceTracker(detector or FaceDetector(), every_n=self.detect_every,
                                        max_gap=self.max_gap,
                                        discover_every=int(round(DISCOVER_EVERY_S * self.src_fps)),
                                        max_faces=self.max_faces)
        self.times = array("d")
        self.faces: dict[int, _Face] = {}
        self.frame_shape: tuple | None = None
        self._report_at = int(0.3 * (n_frames or 0))  # a frame from inside the clip for the report

    @property
    def n_frames(self) -> int:
        return len(self.times)

    # ------------------------------------------------------------------------------------- frames
    def push(self, frame, t: float) -> None:
        """Track faces on one frame at time ``t`` (seconds, increasing) and feed each face's estimator."""
        frame = as_lazy_frame(frame)
        index = len(self.times)
        if self.frame_shape is None:
            self.frame_shape = tuple(frame.shape[:2])
        boxes = self.tracker.update(frame, index)
        self.times.append(float(t))
        self._phase = self._gop.push(self._is_keyframe(float(t)))
        if self._phase[1] is not None:
            self.gop_frames = self._phase[1]
        for tid, box in boxes.items():
            face = self.faces.get(tid)
            if face is None:
                face = self.faces[tid] = _Face(tid, self.proto.clone(), index)
                face.estimator.start(self.src_fps, [])  # its warnings are the prototype's
            self._feed(face, frame, box, t, index)

    def _is_keyframe(self, t: float) -> bool:
        kf = self._keyframes
        while self._kf_next < len(kf) and kf[self._kf_next] < t - 1e-9:
            self._kf_next += 1
        if self._kf_next < len(kf) and abs(kf[self._kf_next] - t) <= 1e-9:
            self._kf_next += 1
            return True
        return False

    def _feed(self, face: _Face, frame, box, t: float, index: int) -> None:
        if box is None:
            face.flags.append(0)
            if not face.in_gap:  # once per run without a face: the estimator needs no more
                face.estimator.gap(t)
                face.in_gap = True
            return
        face.flags.append(1)
        face.in_gap = False
        face.estimator.push(face.deflicker(frame.crop_rgb(box, face.estimator.crop_size), *self._phase), t)
        if face.report_frame is None or index == self._report_at:
            face.report_frame, face.report_box = _thumbnail(frame, box)
        if t >= face.next_box_t:
            face.box_t.append(float(t))
            face.box_xywh.append(tuple(float(v) for v in self.tracker.tracks[face.id].box))
            face.next_box_t = t + BOX_TRACK_STEP_S - 0.5 / self.src_fps

    # ----------------------------------------------------------------------------------- readings
    def reading(self, preset: str = "mmrphys") -> Reading:
        """Rates of every face followed now, from its estimator's recent waveform (see :class:`Reading`)."""
        t_now = self.times[-1] if self.times else 0.0
        faces = []
        for face in self.faces.values():
            track = self.tracker.tracks[face.id]
            if track.box is None:
                continue
            r = _face_reading(face, self.fs, preset, tuple(float(v) for v in track.box))
            if r is not None:
                faces.append(r)
        main = max(faces, key=lambda f: (self.tracker.tracks[f.id].frames_with_face, f.box[2] * f.box[3]),
                   default=None)
        return Reading(float(t_now), tuple(faces), None if main is None else main.id)

    # ------------------------------------------------------------------------------------- finish
    def finish(self, preset: str = "mmrphys", source: str | None = None) -> Result:
        """Rates, waveforms and quality per face; the main face's :class:`Result` with ``faces``.

        When the source gave its key-frame times (``keyframe_times`` of the constructor: a compressed
        file) and they recur at a fixed interval, a heart rate at the key-frame rate or a multiple of
        it (:func:`mmrphys.signals.filters.keyframe_frequencies_hz`) gets a warning: compression
        flicker could look like that. (The flicker's spatial pattern was already taken out of the
        crops, :mod:`mmrphys.tensors.deflicker`; nothing is notched out of the pulse, which would hide
        a true rate there.)

        Raises :class:`InputError` when the clip is shorter than ``MIN_DURATION_S`` or no face was
        seen for ``MIN_DURATION_S`` at a time.
        """
        n = len(self.times)
        t_src = np.asarray(self.times)
        duration = float(t_src[-1] + 1.0 / self.src_fps) if n else 0.0
        if duration < MIN_DURATION_S:
            raise InputError(f"{self.name}: clip is {duration:.1f} s long ({n} frames); the minimum is "
                             f"{MIN_DURATION_S:.0f} s")
        gaps = self.tracker.finish(n)
        grid = uniform_grid(0.0, t_src[-1], self.fs)
        self._keyframe_hz = _keyframe_lines(self._keyframes, preset, self.fs)
        if self.gop_frames is not None:
            self.warnings.append(f"a key frame every {self.gop_frames} frames (a fixed GOP): its flicker "
                                 "was removed from the face crops")
        candidates = []
        for face in self.faces.values():
            valid_src = np.zeros(n, dtype=bool)
            valid_src[face.first_index:] = np.frombuffer(bytes(face.flags), dtype=np.uint8).astype(bool)
            face_warnings = []
            if face.first_index > self.max_gap:  # not seen from the start
                face_warnings.append(f"no face from {_fmt_t(t_src[0])} to "
                                     f"{_fmt_t(t_src[face.first_index - 1])}")
            for start, end, bridged in gaps[face.id]:
                if not bridged:
                    valid_src[start:end] = False  # a long gap starts at the first failed detection
                    face_warnings.append(f"no face from {_fmt_t(t_src[start])} to "
                                         f"{_fmt_t(t_src[min(end, n) - 1])}")
            if valid_src.any():
                valid = np.interp(grid, t_src, valid_src.astype(float)) > 0.999
                candidates.append((face, valid_src, valid, face_warnings))
        if not candidates:
            raise InputError(f"{self.name}: no face found in {n} frames "
                             f"({self.tracker.n_detections} detection attempts)")
        candidates.sort(key=lambda c: (-int(c[1].sum()), -_median_area(c[0])))
        results, longest = [], 0
        for face, valid_src, valid, face_warnings in candidates:
            segs = _segments(valid, _min_len(self.fs))
            longest = max(longest, _longest_run(valid))
            if not segs:
                continue
            waves = face.estimator.finish(grid, segs)
            res = self._face_result(face, waves, grid, valid_src, segs, preset, source, duration,
                                    self.warnings + face_warnings)
            if res is not None:
                results.append(res)
            if self.max_faces is not None and len(results) >= self.max_faces:
                break
        if not results:
            raise InputError(f"{self.name}: the face is visible for at most {longest / self.fs:.1f} s at a "
                             f"time; the minimum is {MIN_DURATION_S:.0f} s")
        main = results[0]
        main.faces = sorted(results, key=lambda r: r.face_id)
        for r in results:
            r.main_face = r is main
        return main

    def _face_result(self, face: _Face, waves, grid, valid_src, segs, preset, source, duration,
                     warnings) -> Result | None:
        bvp = waves["bvp"]
        segs = _segments(np.isfinite(bvp), _min_len(self.fs))
        if not segs:
            return None
        main = max(segs, key=lambda se: se[1] - se[0])
        face_fraction = float(valid_src.mean())
        if face_fraction < 0.999:
            warnings.append(f"face found in {100 * face_fraction:.0f}% of frames; rates use the longest face "
                            f"segment ({_fmt_t(grid[main[0]])} onwards)")
        rsp_from_model = "rsp" in waves and "pulse" not in waves
        if rsp_from_model:
            rsp, rsp_source = waves["rsp"], RSP_FROM_MODEL
        elif "pulse" in waves:
            rsp, rsp_source = _rsp_from_bvp(waves["pulse"], segs, self.fs), RSP_FROM_CROP_PULSE
        else:
            rsp, rsp_source = _rsp_from_bvp(bvp, segs, self.fs), RSP_FROM_BVP
        hr, rr, hrv, quality, rolling, confidence = _rates(bvp, rsp, self.fs, main, segs, grid, preset,
                                                           warnings, rsp_from_model)
        kf_warning = _keyframe_warning(hr, self._keyframe_hz)
        if kf_warning:
            warnings.append(kf_warning)
        quality["face_detected_fraction"] = face_fraction
        quality["warnings"] = warnings
        track = self.tracker.tracks[face.id]
        extra = {"n_frames": len(self.times), "source_fps": self.src_fps,
                 "keyframe_lines_bpm": [round(60.0 * f, 2) for f in self._keyframe_hz],
                 "gop_deflicker_frames": self.gop_frames,
                 "face": {"detector": self.tracker.detector.backend, "detect_every_frames": self.detect_every,
                          "detections": track.n_detections, "found": track.n_found,
                          "segments_s": [[float(grid[s]), float(grid[e - 1])] for s, e in segs]}}
        return Result(
            heart_rate_bpm=hr, respiratory_rate_bpm=rr, fps=self.fs, duration_s=duration, timestamps_s=grid,
            bvp=bvp, rsp=rsp if np.isfinite(rsp).any() else None, rolling=rolling, hrv=hrv, quality=quality,
            method=self.proto.method, model=face.estimator.describe(), source=source, extra=extra,
            report_frame=face.report_frame, report_box=face.report_box, analysis_span=main,
            rsp_source=rsp_source,
            confidence=confidence, face_id=face.id, face_box=_median_box(face),
            box_track={"t_s": list(face.box_t), "xywh": [list(b) for b in face.box_xywh]},
            present_s=float(valid_src.sum()) / self.src_fps, frame_size=self.frame_shape,
        )


# ----------------------------------------------------------------------------- helpers
def _thumbnail(lazy_frame, box) -> tuple[np.ndarray, tuple]:
    """A copy of the frame at most 480 px on its long side, with ``box`` scaled to it."""
    import cv2

    frame = lazy_frame.rgb()
    to_rgb = frame.shape[1] / lazy_frame.shape[1]  # the RGB image may be downscaled (max_side)
    s = min(1.0, 480 / max(frame.shape[:2]))
    if s < 1.0:
        frame = cv2.resize(frame, (round(frame.shape[1] * s), round(frame.shape[0] * s)),
                           interpolation=cv2.INTER_AREA)
    return frame.copy(), tuple(float(v) * s * to_rgb for v in box)


def _median_box(face: _Face) -> tuple | None:
    if not face.box_xywh:
        return None
    return tuple(float(v) for v in np.median(np.asarray(face.box_xywh), axis=0))


def _median_area(face: _Face) -> float:
    box = _median_box(face)
    return 0.0 if box is None else box[2] * box[3]


def _min_len(fs: float) -> int:
    return int(math.ceil(MIN_DURATION_S * fs))


def _segments(mask: np.ndarray, min_len: int) -> list[tuple[int, int]]:
    """[start, end) runs of True in ``mask`` at least ``min_len`` long."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(np.diff(m.astype(np.int8)))
    return [(int(s), int(e)) for s, e in zip(edges[::2], edges[1::2]) if e - s >= min_len]


def _longest_run(mask: np.ndarray) -> int:
    return max((e - s for s, e in _segments(mask, 1)), default=0)


def _fmt_t(t: float) -> str:
    return f"{t:.1f} s"


def _face_reading(face: _Face, fs: float, preset: str, box: tuple) -> FaceReading | None:
    """The face's rates from the last seconds of its estimator's waveform (None: under MIN_DURATION_S)."""
    from mmrphys.signals import heart_rate, respiration_from_bvp, respiratory_rate
    from mmrphys.signals.quality import confidence

    recent = face.estimator.recent(max(ROLLING_HR_WINDOW_S, ROLLING_RR_WINDOW_S), MIN_DURATION_S)
    if recent is None:
        return None
    t_end, waves = recent
    bvp = waves["bvp"]
    if not np.isfinite(bvp).all():
        return None
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        seg = bvp[-int(round(ROLLING_HR_WINDOW_S * fs)):]
        hr = float(heart_rate(seg, fs, preset=preset))
        trust = {"heart_rate": confidence(seg, fs, hr, "hr", preset) if math.isfinite(hr) else 0.0,
                 "respiratory_rate": None}
        rr = float("nan")
        if bvp.size >= int(RR_MIN_DURATION_S * fs):
            from_model = "rsp" in waves and "pulse" not in waves
            rsp = waves["rsp"] if from_model else None
            pulse = waves.get("pulse", bvp)
            try:
                rsp = respiration_from_bvp(pulse, fs) if rsp is None else rsp
                rr = float(respiratory_rate(rsp, fs, preset=preset))
            except InputError:  # too few clear beats for the modulation
                rr = float("nan")
            if math.isfinite(rr):
                c = confidence(rsp, fs, rr, "rr", preset)
                trust["respiratory_rate"] = c if from_model else min(c, trust["heart_rate"])
    return FaceReading(face.id, float(t_end), hr, rr, trust, box, bvp.size / fs)


def _keyframe_lines(keyframe_times, preset: str, fs: float) -> list[float]:
    """The fixed key-frame rate and its harmonics in the HR band (Hz), or [] (see ``Pipeline.finish``)."""
    if len(keyframe_times) < 4:
        return []
    from mmrphys.signals.filters import keyframe_frequencies_hz
    from mmrphys.signals.presets import get_preset

    return [f for f in keyframe_frequencies_hz(keyframe_times, get_preset(preset).band("hr")) if f < fs / 2]


def _keyframe_warning(hr_bpm: float | None, lines_hz: list[float]) -> str | None:
    """A warning when ``hr_bpm`` is within :data:`KEYFRAME_LINE_BPM` of a key-frame line."""
    if hr_bpm is None or not np.isfinite(hr_bpm):
        return None
    near = [60.0 * f for f in lines_hz if abs(60.0 * f - hr_bpm) <= KEYFRAME_LINE_BPM]
    if not near:
        return None
    return (f"the heart rate ({hr_bpm:.1f} bpm) is at the key-frame rate or a multiple of it "
            f"({near[0]:.1f} bpm, a fixed-GOP compressed video): compression flicker could look like this")


def _rsp_from_bvp(bvp: np.ndarray, segs, fs: float) -> np.ndarray:
    """Respiration from the pulse's modulation on each segment long enough for a breathing rate."""
    from mmrphys.signals import respiration_from_bvp

    rsp = np.full(bvp.size, np.nan)
    for s, e in segs:
        if e - s >= int(RR_MIN_DURATION_S * fs):
            try:
                rsp[s:e] = respiration_from_bvp(bvp[s:e], fs)
            except InputError:
                pass  # too few clear beats: this segment has no respiration (warned by _rates)
    return rsp


def _rates(bvp, rsp, fs, main, segs, grid, preset, warnings, rsp_from_model):
    from mmrphys.signals import heart_rate, hrv_from_bvp, respiratory_rate, rolling_rates, signal_quality
    from mmrphys.signals.quality import confidence, confidence_warning

    s, e = main
    seg_bvp = bvp[s:e]
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        hr = heart_rate(seg_bvp, fs, preset=preset)
        quality = {"signal_quality": signal_quality(seg_bvp, fs, kind="hr", preset=preset)}
        rr = float("nan")
        seg_rsp = rsp[s:e]
        long_enough = (e - s) >= int(RR_MIN_DURATION_S * fs)
        if np.isfinite(seg_rsp).all() and long_enough:
            rr = respiratory_rate(seg_rsp, fs, preset=preset)
            quality["respiration_quality"] = signal_quality(seg_rsp, fs, kind="rr", preset=preset)
        elif not long_enough:
            warnings.append(f"respiratory rate needs at least {RR_MIN_DURATION_S:.0f} s of face video; "
                            f"the longest face segment is {(e - s) / fs:.1f} s")
        else:
            warnings.append("respiratory rate not estimable: too few clear beats for BVP modulation")
        try:
            hrv = hrv_from_bvp(seg_bvp, fs, preset=preset)
            # the mean of the beat intervals is not the headline (spectral) HR: named so in the JSON
            hrv["mean_hr_from_beats_bpm"] = hrv.pop("hr_bpm")
        except InputError as err:
            hrv = {"reason": str(err)}
        rolling = []
        for a, b in segs:
            th, rh = rolling_rates(bvp[a:b], fs, ROLLING_HR_WINDOW_S, ROLLING_STEP_S, kind="hr",
                                   preset=preset)
            rr_at = np.full(th.size, np.nan)
            if np.isfinite(rsp[a:b]).all() and b - a >= int(ROLLING_RR_WINDOW_S * fs):
                tr, rrr = rolling_rates(rsp[a:b], fs, ROLLING_RR_WINDOW_S, ROLLING_STEP_S, kind="rr",
                                        preset=preset)
                if tr.size:
                    rr_at = np.interp(th, tr, rrr, left=np.nan, right=np.nan)
            for ti, hi, ri in zip(th, rh, rr_at):
                rolling.append({"time_s": float(grid[a] + ti), "heart_rate_bpm": float(hi),
                                "respiratory_rate_bpm": float(ri)})
        trust = {"heart_rate": confidence(seg_bvp, fs, hr, "hr", preset) if math.isfinite(hr) else 0.0,
                 "respiratory_rate": confidence(seg_rsp, fs, rr, "rr", preset) if math.isfinite(rr) else None}
        if trust["respiratory_rate"] is not None and not rsp_from_model:
            # a breathing rate read from the pulse's modulation is no surer than the pulse itself
            trust["respiratory_rate"] = min(trust["respiratory_rate"], trust["heart_rate"])
    if not math.isfinite(hr):
        warnings.append("heart rate not estimable: the pulse signal is flat")
    for vital, kind in (("heart_rate", "hr"), ("respiratory_rate", "rr")):
        low = None if trust[vital] is None else confidence_warning(trust[vital], kind)
        if low:
            warnings.append(low)
    return float(hr), float(rr), hrv, quality, rolling, trust
