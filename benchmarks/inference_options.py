"""Inference options of the main job, scored leave-subjects-out on the shared UBFC subjects (issue #11).

    python benchmarks/inference_options.py --loso runs/loso [--data ../shared/data/ubfc-rppg-mini]
                                           [--workdir /tmp/mmrphys_options] [--conditions clean cohface20]

``--loso`` is the output folder of ``python -m mmrphys.training.loso`` (its ``loso.json`` names the
folds and ``fold<k>/weights.pt`` holds each fold's model): every subject is scored only by the model
that never saw it. Ground truth as in the LOSO table: the contact PPG sampled on the video frames,
HR at its whole-clip periodogram peak, RR from its breathing modulation.

Conditions: ``clean`` (the shared files), ``cohface20`` (each clip re-encoded as COHFACE stores
its videos: 20 fps, MPEG-4 Part 2 at 400 kbit/s, 640x480, a key frame every 12 frames; written once to
``--workdir``) and ``cohface20b`` (the same from the 6th frame on at 350 kbit/s: other frames fall on
the key frames; a second draw of the same compression, to tell a real gain from luck).

Options measured (every row through ``mmrphys.estimate`` or on its waveforms):

* face detector: OpenCV's Haar cascade (ours) and MediaPipe's BlazeFace short-range detector (its
  model ships inside the ``mediapipe`` package, <= 0.10.14). MediaPipe is optional: rows are skipped
  when it is not importable. Its boxes are tighter than Haar's, so they are scaled by the median
  Haar/MediaPipe width ratio measured on the same frames (the crop then covers the same part of the
  face). Box statistics per detector: frames with a face, centre jitter between consecutive
  detections (median, % of the box width), width spread (robust CV, %), milliseconds per call.
* detection interval: every 1 s (default), every 0.5 s, 1.5 s and 2 s.
* frame loop (``LOOP_OPTIONS``): the box's glide between detections (linear over one interval, the
  default, or a Hann speed profile over 1 or 2 intervals), the box deadband, and the GOP deflicker
  switched off or the deflicker's memory shortened.
* window overlap of the model: 50 % (default), 75 %, 0 %.
* whole-clip rate: periodogram peak of the stitched waveform (default), the same without the
  harmonic check, and the median of 10 s window rates.
* fusion with POS: the normalised HR-band spectra of the model's and POS's waveforms, each weighted by
  its signal quality, summed; the rate at the fused peak.
* RR: the breathing modulation of a POS pulse from the central 7/9 of the model's own crops (the
  default), the model's RSP output, the modulation of the model's BVP, the modulation of the POS
  method's BVP (skin-masked 72 px crops), and the quality-weighted fusion of RSP and crop pulse.

Cost: about 7 minutes per condition on one core (8 subjects x 9 runs of the main job), plus the
re-encoding (~1 min) and box statistics (~2 min with MediaPipe).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ubfc-rppg-mini"


# ----------------------------------------------------------------------------- MediaPipe adapter
class MediaPipeDetector:
    """MediaPipe's BlazeFace (short range) behind the ``FaceDetector.detect`` interface.

    ``scale`` enlarges each box about its centre (1.0: MediaPipe's own box)."""

    backend = "mediapipe"

    def __init__(self, scale: float = 1.0, min_confidence: float = 0.5):
        import mediapipe as mp

        self._fd = mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                             min_detection_confidence=min_confidence)
        self.scale = float(scale)

    def detect(self, frame, min_face_px=None, max_face_px=None):
        from mmrphys.faces.detect import Box

        rgb = frame.rgb() if callable(getattr(frame, "rgb", None)) else np.asarray(frame)
        full_w = frame.shape[1] if hasattr(frame, "shape") else rgb.shape[1]
        to_frame = full_w / rgb.shape[1]  # a lazy frame's RGB image may be downscaled
        h, w = rgb.shape[:2]
        res = self._fd.process(np.ascontiguousarray(rgb))
        boxes = []
        for det in res.detections or []:
            b = det.location_data.relative_bounding_box
            cx, cy = (b.xmin + b.width / 2) * w, (b.ymin + b.height / 2) * h
            bw, bh = b.width * w * self.scale, b.height * h * self.scale
            side = max(bw, bh)  # square, like the cascade's boxes
            box = Box((cx - side / 2) * to_frame, (cy - side / 2) * to_frame, side * to_frame,
                      side * to_frame, float(det.score[0]))
            if min_face_px and box.w < 0.8 * min_face_px:
                continue
            if max_face_px and box.w > 1.25 * max_face_px:
                continue
            boxes.append(box)
        return sorted(boxes, key=lambda b: -b.area)


def have_mediapipe() -> bool:
    try:
        import mediapipe as mp

        return hasattr(mp, "solutions") and hasattr(mp.solutions, "face_detection")
    except ImportError:
        return False


# ----------------------------------------------------------------------------- inputs
#: Re-encoded conditions: (frames of the source skipped, bit rate); both 20 fps MPEG-4 Part 2, whose
#: encoder puts a key frame every 12 frames. ``cohface20b`` puts other frames at the key frames.
RECODED = {"cohface20": (0, 400_000), "cohface20b": (5, 350_000)}


def cohface_copy(src: Path, dst: Path, fps_out: float = 20.0, bit_rate: int = 400_000, skip: int = 0) -> Path:
    """``src`` from frame ``skip`` on, decimated to ``fps_out`` (nearest frame) and re-encoded as
    MPEG-4 Part 2 (COHFACE's)."""
    import av

    if dst.is_file():
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".part.avi")
    with av.open(str(src)) as inp, av.open(str(tmp), "w") as out:
        vin = inp.streams.video[0]
        fps_in = float(vin.average_rate)
        stream = out.add_stream("mpeg4", rate=int(fps_out))
        stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
        stream.bit_rate = bit_rate
        k_out = 0
        for k, frame in enumerate(inp.decode(vin)):
            if k < skip or k - skip + 0.5 < k_out * fps_in / fps_out:
                continue
            img = frame.to_ndarray(format="rgb24")
            nf = av.VideoFrame.from_ndarray(img, format="rgb24")
            nf.pts = k_out
            for pkt in stream.encode(nf):
                out.mux(pkt)
            k_out += 1
        for pkt in stream.encode():
            out.mux(pkt)
    os.replace(tmp, dst)
    return dst


def subjects_and_folds(loso: Path, data: Path):
    from mmrphys.data.registry import get_loader

    folds = json.loads((loso / "loso.json").read_text())["folds"]
    fold_of = {s: k for k, f in enumerate(folds) for s in f}
    recs = [r for r in get_loader("ubfc-rppg").recordings(data) if r.subject_id in fold_of]
    return recs, fold_of


# ----------------------------------------------------------------------------- rates from waveforms
def _band_spectrum(x, fs, kind, band):
    """Unit-sum PSD of the preset-filtered waveform in ``band`` (Hz), on a 0.1 bpm grid."""
    from scipy.signal import periodogram

    from mmrphys.signals.rates import preprocess

    y = preprocess(x, fs, "mmrphys", kind)
    f, p = periodogram(y, fs=fs, nfft=max(len(y), int(round(fs * 600))), detrend=False)
    grid = np.arange(band[0], band[1], 0.1 / 60.0)
    q = np.interp(grid, f, p)
    return grid, q / max(q.sum(), 1e-30)


def fused_rate(waves, fs, kind) -> float:
    """Rate at the peak of the quality-weighted sum of each waveform's unit-sum band spectrum."""
    from mmrphys.signals.presets import get_preset
    from mmrphys.signals.quality import signal_quality

    band = get_preset("mmrphys").band(kind)
    total = None
    for x in waves:
        grid, q = _band_spectrum(x, fs, kind, band)
        wq = max(signal_quality(x, fs, kind=kind), 1e-3)
        total = wq * q if total is None else total + wq * q
    return float(60.0 * grid[int(np.argmax(total))])


def median_window_rate(x, fs, window_s=10.0) -> float:
    from mmrphys.signals.rates import rolling_rates

    _, r = rolling_rates(x, fs, window_s=window_s, step_s=window_s / 2, kind="hr")
    r = r[np.isfinite(r)]
    return float(np.median(r)) if r.size else float("nan")


def span(res):
    """The waveform samples the result's rates use (its longest face segment)."""
    s, e = res.analysis_span
    return slice(s, e)


# ----------------------------------------------------------------------------- runs
def run_estimate(video, weights, *, detector=None, detect_every_s=1.0, overlap=None, method="mmrphys",
                 rr_from="pulse"):
    import mmrphys
    from mmrphys.vitals.estimators import make_estimator

    est = None
    if method == "mmrphys":
        est = make_estimator("mmrphys", weights, "eager", 6.0, rr_from=rr_from)
        if overlap is not None:
            est = type(est)(est.predictor, est.name, est.weights, est.min_duration_s, est.batch, est.method,
                            overlap=overlap, rr_from=rr_from)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mmrphys.estimate(video, method=None if est else method, estimator=est, progress=False,
                                detect_every_s=detect_every_s, detector=detector)


#: Options of the frame loop measured by patching the main job's modules (benchmark only): name ->
#: ``{"glide": ...}`` (the tracker's box glide, ``mmrphys.faces.track.GLIDES``, with
#: ``"glide_intervals"``), ``"deflicker": False``, ``"memory"`` (GOPs the
#: deflicker averages), ``"deadband"`` (box moves ignored, fraction of the side).
LOOP_OPTIONS = {
    "box glide smooth over 1 interval (Hann speed)": {"glide": "smooth", "glide_intervals": 1.0},
    "box glide smooth over 2 intervals (Hann speed)": {"glide": "smooth", "glide_intervals": 2.0},
    "box deadband 2 %": {"deadband": 0.02},
    "box deadband 15 %": {"deadband": 0.15},
    "no GOP deflicker": {"deflicker": False},
    "deflicker memory 4 GOPs": {"memory": 4},
}


@contextlib.contextmanager
def patched_loop(glide="linear", glide_intervals=None, deflicker=True, memory=None, deadband=None):
    """The main job with one frame-loop option changed (see ``LOOP_OPTIONS``); restored on exit."""
    import functools

    import mmrphys.faces.track as track
    import mmrphys.vitals.pipeline as pipeline

    saved = []

    def put(obj, name, value):
        saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    tracker_kw = {"glide": glide} if glide != "linear" else {}
    if deadband is not None:
        tracker_kw["deadband"] = deadband
    if tracker_kw:
        put(pipeline, "MultiFaceTracker", functools.partial(track.MultiFaceTracker, **tracker_kw))
    if glide_intervals is not None:
        put(track, "SMOOTH_GLIDE_INTERVALS", glide_intervals)
    if not deflicker:
        put(pipeline.GopDeflicker, "__call__", lambda self, crop, phase, period: crop)
    if memory is not None:  # _Face builds its GopDeflicker with the defaults
        put(pipeline.GopDeflicker.__init__, "__defaults__", (memory, 2))
    try:
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def box_stats(video, detector, every: int = 2) -> dict:
    """Detection rate, centre jitter and width spread of ``detector`` on every ``every``-th frame."""
    from mmrphys.video import open_video

    reader = open_video(video)
    found, centres, widths, dt = 0, [], [], 0.0
    n = 0
    for k, (frame, _t) in enumerate(reader.frames()):
        if k % every:
            continue
        n += 1
        t0 = time.perf_counter()
        boxes = detector.detect(frame)
        dt += time.perf_counter() - t0
        if boxes:
            b = boxes[0]
            found += 1
            centres.append((b.x + b.w / 2, b.y + b.h / 2))
            widths.append(b.w)
        else:
            centres.append((np.nan, np.nan))
            widths.append(np.nan)
    c, w = np.asarray(centres), np.asarray(widths)
    step = np.hypot(*np.diff(c, axis=0).T) / w[1:]
    med_w = np.nanmedian(w)
    mad = np.nanmedian(np.abs(w - med_w)) * 1.4826
    return {"found": found / max(n, 1), "jitter_pct": 100 * float(np.nanmedian(step)),
            "width_cv_pct": 100 * float(mad / med_w), "median_width": float(med_w),
            "ms": 1000 * dt / max(n, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loso", type=Path, required=True, help="output folder of mmrphys.training.loso")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mmrphys_options"))
    ap.add_argument("--conditions", nargs="+", default=["clean", "cohface20"],
                    choices=["clean", *RECODED])
    ap.add_argument("--out", type=Path, default=None,
                    help="JSON of every number (default: LOSO/options.json)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    from mmrphys.faces import FaceDetector
    from mmrphys.signals import heart_rate, respiration_from_bvp, respiratory_rate
    from mmrphys.training.compare import ppg_respiratory_rate

    if not args.data.is_dir():
        print(f"data folder absent: {args.data}", file=sys.stderr)
        return 1
    recs, fold_of = subjects_and_folds(args.loso, args.data)
    mp_ok = have_mediapipe()
    print(f"threads: 1 (torch), load {os.getloadavg()[0]:.2f}; mediapipe: {'yes' if mp_ok else 'absent'}")
    report: dict = {"box_stats": {}, "hr": {}, "rr": {}}

    # 1. box statistics (clean clips) and the Haar/MediaPipe width ratio
    mp_scale = 1.0
    if mp_ok:
        ratios = []
        for name, det in (("haar", FaceDetector()), ("mediapipe", MediaPipeDetector())):
            rows = [box_stats(r.files["video"], det) for r in recs]
            report["box_stats"][name] = {k: float(np.mean([x[k] for x in rows])) for k in rows[0]}
            ratios.append([x["median_width"] for x in rows])
        mp_scale = float(np.median(np.asarray(ratios[0]) / np.asarray(ratios[1])))
        report["mediapipe_scale"] = mp_scale
        print("box statistics (mean over subjects):", json.dumps(report["box_stats"], indent=1))
        print(f"MediaPipe boxes scaled by {mp_scale:.3f} (median Haar/MediaPipe width)")

    for cond in args.conditions:
        hr_err: dict[str, dict[str, float]] = {}
        rr_err: dict[str, dict[str, float]] = {}

        def put(table, row, subj, value, truth):
            table.setdefault(row, {})[subj] = float(value - truth) if np.isfinite(value) else float("nan")

        for r in recs:
            subj = r.subject_id
            weights = str(args.loso / f"fold{fold_of[subj]}" / "weights.pt")
            video = r.files["video"]
            if cond in RECODED:
                skip, bit_rate = RECODED[cond]
                video = cohface_copy(Path(video), args.workdir / cond / f"{subj}.avi", bit_rate=bit_rate,
                                     skip=skip)
            ppg = np.asarray(r.labels()["bvp"].values, dtype=float)
            gt_hr = heart_rate(ppg, r.fps, preset="mmrphys")
            gt_rr = ppg_respiratory_rate(ppg, r.fps)
            t0 = time.perf_counter()
            base = run_estimate(video, weights)
            by_model = run_estimate(video, weights, rr_from="model")
            pos = run_estimate(video, None, method="pos")
            fs = base.fps
            bvp, rsp, pbvp = base.bvp[span(base)], by_model.rsp[span(base)], pos.bvp[span(pos)]
            put(hr_err, "default (Haar, 1 s, 50 % overlap, stitched peak)", subj, base.heart_rate_bpm, gt_hr)
            put(hr_err, "no harmonic check", subj, heart_rate(bvp, fs, harmonic_check=False), gt_hr)
            put(hr_err, "median of 10 s windows", subj, median_window_rate(bvp, fs), gt_hr)
            put(hr_err, "POS alone", subj, pos.heart_rate_bpm, gt_hr)
            put(hr_err, "fusion model + POS (quality-weighted spectra)", subj,
                fused_rate([bvp, pbvp], fs, "hr"), gt_hr)
            for row, kw in (("detection every 0.5 s", {"detect_every_s": 0.5}),
                            ("detection every 1.5 s", {"detect_every_s": 1.5}),
                            ("detection every 2 s", {"detect_every_s": 2.0}),
                            ("overlap 75 %", {"overlap": 0.75}), ("overlap 0 %", {"overlap": 0.0})):
                put(hr_err, row, subj, run_estimate(video, weights, **kw).heart_rate_bpm, gt_hr)
            for row, kw in LOOP_OPTIONS.items():
                with patched_loop(**kw):
                    put(hr_err, row, subj, run_estimate(video, weights).heart_rate_bpm, gt_hr)
            if mp_ok:
                res = run_estimate(video, weights, detector=MediaPipeDetector(scale=mp_scale))
                put(hr_err, "MediaPipe detector (scaled boxes)", subj, res.heart_rate_bpm, gt_hr)
            if np.isfinite(gt_rr):
                m_rr = respiration_from_bvp(bvp, fs)
                p_rr = respiration_from_bvp(pbvp, fs)
                c_rr = base.rsp[span(base)]  # the crop pulse's modulation (the default)
                put(rr_err, "crop pulse modulation (default)", subj, base.respiratory_rate_bpm, gt_rr)
                put(rr_err, "model RSP output", subj, by_model.respiratory_rate_bpm, gt_rr)
                put(rr_err, "model BVP modulation", subj, respiratory_rate(m_rr, fs), gt_rr)
                put(rr_err, "POS (skin mask, 72 px) BVP modulation", subj, respiratory_rate(p_rr, fs), gt_rr)
                put(rr_err, "fusion RSP + crop pulse modulation", subj, fused_rate([rsp, c_rr], fs, "rr"),
                    gt_rr)
            print(f"[{cond}] {subj}: GT HR {gt_hr:.1f} RR {gt_rr:.1f}; model {base.heart_rate_bpm:.1f} / "
                  f"{base.respiratory_rate_bpm:.1f} (RSP {by_model.respiratory_rate_bpm:.1f}); "
                  f"POS {pos.heart_rate_bpm:.1f}  "
                  f"({time.perf_counter() - t0:.0f} s)",
                  flush=True)
        report["hr"][cond], report["rr"][cond] = hr_err, rr_err
        for title, table in (("HR", hr_err), ("RR vs PPG-derived", rr_err)):
            print(f"\n### {title}, {cond} (MAE ± SE, bpm or /min; n = subjects)\n")
            print("| option | MAE ± SE | max | n |\n|---|---|---|---|")
            for row, errs in table.items():
                e = np.abs([v for v in errs.values() if np.isfinite(v)])
                se = e.std(ddof=1) / math.sqrt(e.size) if e.size > 1 else float("nan")
                print(f"| {row} | {e.mean():.2f} ± {se:.2f} | {e.max():.1f} | {e.size} |")
    out = args.out or args.loso / "options.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
