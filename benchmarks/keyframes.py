"""Key-frame handling of the main job: the default against the previous one, on fixed-GOP video.

    python benchmarks/keyframes.py --loso runs/loso_sef_b [--data ../shared/data/ubfc-rppg-mini]
                                   [--workdir /tmp/mmrphys_keyframes] [--conditions ...]

Video with a key frame every few frames (a fixed GOP) carries a flicker that repeats with the GOP.
Two ways of handling it, each run through ``mmrphys.estimate`` (default model, or the leave-subjects-out
fold model for the UBFC subjects):

* ``default``: ``tensors.deflicker`` removes only the part of the GOP-synchronous mean crop that varies
  across the crop; the crop's mean colour is kept, and nothing is notched out of the pulse;
* ``previous`` (until 2026-12-06): the whole GOP-synchronous mean crop was removed, and the key-frame
  rate and its harmonics were notched out of the pulse before its rate was read.

Conditions:

* ``synth``: synthetic faces (``mmrphys.synth``, 30 s, 320x240, 30 fps, seed 7) at 60, 61.5, 75 and
  120 bpm, coded once as H.264 CRF 23 with a key frame every 30 frames (1 s: the usual GOP of
  cameras, phones and screen recorders), read by the shipped default model. 60 and 120 bpm are
  multiples of the key-frame rate.
* ``cohface20``, ``cohface20b``: the UBFC subjects re-coded as COHFACE stores video (20 fps MPEG-4
  Part 2, a key frame every 12 frames; see ``inference_options.py``), leave-subjects-out.
* ``h264gop30``: the UBFC subjects re-coded as H.264 CRF 28 with a key frame every 30 frames.

The UBFC files as shared have a key frame every 250 frames: neither handling applies to them, so the
leave-subjects-out table of clean video is the same under both.

Prints HR error (bpm, estimate - truth) per clip and the MAE per condition and handling. Cost: about
6 minutes on one core (the re-coded copies are written once to ``--workdir``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from battery.cases_estimate import encode as battery_encode  # noqa: E402
from inference_options import (  # noqa: E402
    DEFAULT_DATA,
    RECODED,
    cohface_copy,
    run_estimate,
    subjects_and_folds,
)

SYNTH_HR = (60.0, 61.5, 75.0, 120.0)
CONDITIONS = ("synth", "cohface20", "cohface20b", "h264gop30")


def encode(path: Path, frames, fps: float, codec: str, **options) -> Path:
    """``frames`` coded to ``path`` once (the fault battery's PyAV writer), written atomically."""
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("part_" + path.name)
    battery_encode(tmp, frames, fps, codec, options={k: str(v) for k, v in options.items()})
    os.replace(tmp, path)
    return path


def h264_gop30(src: Path, dst: Path) -> Path:
    import av

    if dst.is_file():
        return dst
    with av.open(str(src)) as inp:
        frames = [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]
        fps = float(inp.streams.video[0].average_rate)
    return encode(dst, frames, round(fps), "libx264", crf=28, g=30, keyint_min=30, sc_threshold=0)


def synth_clip(workdir: Path, hr: float) -> Path:
    from mmrphys.synth import FaceLook, draw_face, physiology, render_frames

    path = workdir / "synth" / f"hr{hr:g}_gop30.mp4"
    if not path.is_file():
        scene = draw_face(320, 240, FaceLook(), seed=7)
        phys = physiology(hr, 14.0, 30.0, 30.0, seed=7)
        frames = [rgb for rgb, _ in render_frames(scene, phys, seed=7)]
        encode(path, frames, 30, "libx264", crf=23, g=30, keyint_min=30, sc_threshold=0)
    return path


@contextlib.contextmanager
def previous_handling():
    """The main job as before 2026-12-06: whole-crop deflicker and key-frame notch (benchmark only)."""
    import mmrphys.vitals.pipeline as pipeline
    from mmrphys.signals.filters import notch

    saved = (pipeline.GopDeflicker.__call__, pipeline._keyframe_lines, pipeline._rates)
    lines: list[float] = []

    def whole_crop(self, crop, phase, period):
        out = saved[0](self, crop, phase, period)
        if out is crop or self.profile is None:
            return out
        flicker = self.profile[phase] - self.profile.mean(axis=0)  # the spatial mean not kept
        return np.clip(np.rint(crop.astype(np.float32) - flicker), 0, 255).astype(np.uint8)

    def remember(*args):
        lines[:] = saved[1](*args)
        return list(lines)

    def notched_rates(bvp, rsp, fs, main, segs, *rest):
        if lines:
            bvp = bvp.copy()
            for s, e in segs:
                bvp[s:e] = notch(bvp[s:e], fs, lines)
        return saved[2](bvp, rsp, fs, main, segs, *rest)

    pipeline.GopDeflicker.__call__, pipeline._keyframe_lines, pipeline._rates = (whole_crop, remember,
                                                                                  notched_rates)
    try:
        yield
    finally:
        pipeline.GopDeflicker.__call__, pipeline._keyframe_lines, pipeline._rates = saved


def clips(cond: str, args):
    """(name, video, weights or None for the default model, true HR) of a condition."""
    from mmrphys.signals import heart_rate

    if cond == "synth":
        return [(f"{hr:g} bpm", synth_clip(args.workdir, hr), None, hr) for hr in SYNTH_HR]
    recs, fold_of = subjects_and_folds(args.loso, args.data)
    out = []
    for r in recs:
        subj, src = r.subject_id, Path(r.files["video"])
        if cond in RECODED:
            skip, bit_rate = RECODED[cond]
            video = cohface_copy(src, args.workdir / cond / f"{subj}.avi", bit_rate=bit_rate, skip=skip)
        else:
            video = h264_gop30(src, args.workdir / cond / f"{subj}.mp4")
        truth = heart_rate(np.asarray(r.labels()["bvp"].values, dtype=float), r.fps, preset="mmrphys")
        out.append((subj, video, str(args.loso / f"fold{fold_of[subj]}" / "weights.pt"), truth))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loso", type=Path, required=True, help="output folder of mmrphys.training.loso")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mmrphys_keyframes"))
    ap.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=CONDITIONS)
    args = ap.parse_args(argv)
    import mmrphys

    print(f"threads: 1 (torch and onnxruntime), load {os.getloadavg()[0]:.2f}")
    for cond in args.conditions:
        for handling in ("default", "previous"):
            errors = []
            with previous_handling() if handling == "previous" else contextlib.nullcontext():
                for name, video, weights, truth in clips(cond, args):
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        if weights is None:
                            res = mmrphys.estimate(video, progress=False, threads=1)
                        else:
                            res = run_estimate(video, weights)
                    errors.append((name, res.heart_rate_bpm - truth))
            mae = float(np.mean([abs(e) for _, e in errors]))
            per = ", ".join(f"{n} {e:+.1f}" for n, e in errors)
            print(f"{cond:10s} {handling:8s} MAE {mae:5.2f}  ({per})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
