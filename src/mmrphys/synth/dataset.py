"""Synthetic multimodal training sets in the spirit of SCAMPS, written in the ``generic`` dataset layout.

Each recording is rendered with :mod:`mmrphys.synth.clip` (``random_look``, ``physiology``,
``draw_face``, ``render_frames``, ``write_video``) with its own random draw of:

- identity: skin tone light to dark, hair, face size and position, background colour/gradient,
  texture (one look per subject; a subject's recordings share it, so subject-wise splits hold);
- physiology: mean HR 48–132 bpm, breathing 6–28 /min, heart-rate variability from respiratory
  sinus arrhythmia (0.5–5 bpm) and slow drift (0–6 bpm), PPG-shaped pulse with a dicrotic wave;
- motion: breathing-locked vertical head motion, slow random sway, and a slow in-plane rotation and
  zoom of the view (camera/head);
- light: slow illumination drift and one lighting step of random size/sign/time;
- camera: sensor noise (1–5 levels) and H.264 compression (CRF 12–30);
- thermal (optional): a face warmer than the background whose nostrils cool on inhale and warm on
  exhale, stored as ``<name>.thermal.npy`` in °C (float16), moving with the head.

Not modelled: facial expressions and talking, out-of-plane head rotation, occlusion (hands, glasses),
multiple people, real skin optics (subsurface scattering, specular highlights, spatially varying
pulse transit), camera auto-exposure/white balance, motion blur, and thermal physics beyond the
nostril region (no skin temperature pulse, no emissivity or distance effects).

Layout (read back with ``load_dataset("generic", OUT)``)::

    OUT/dataset.json                    generator settings and every recording's truth summary
    OUT/s000/r0.mp4                     RGB video (recording id s000_r0, subject s000)
    OUT/s000/r0.csv                     t_s, bvp, rsp, hr_bpm, rr_bpm per frame
    OUT/s000/r0.thermal.npy             (N, H, W) float16 °C  (with thermal=True)
    OUT/s000/r0.boxes.csv               frame, x, y, w, h: the face box of every frame, as a face
                                        detector reports it (``mmrphys preprocess`` crops with it)
    OUT/s000/r0.json                    truth and the drawn parameters

``mmrphys synth dataset --out DIR --n 20`` or ``python -m mmrphys.synth.dataset --out DIR --n 20``
(options ``--per-subject 2 --duration 20 --size 160x120 --no-thermal --seed 0``).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import cv2
import numpy as np

from mmrphys.errors import ConfigError
from mmrphys.synth.clip import (
    THERMAL_OFFSET_C,
    THERMAL_SPAN_C,
    Effects,
    draw_face,
    face_boxes,
    physiology,
    random_look,
    render_frames,
    write_video,
)


def random_recording_params(rng: np.random.Generator) -> dict:
    """Random physiology, motion, light and camera settings of one recording (``make_recording``'s
    ``params``)."""
    effects = Effects(
        pulse_amplitude=float(rng.uniform(0.006, 0.02)),
        riav=float(rng.uniform(0.0, 0.4)),
        riiv=float(rng.uniform(0.0, 0.004)),
        breath_motion=float(rng.uniform(0.003, 0.02)),
        sway=float(rng.uniform(0.0, 0.03)),
        drift=float(rng.uniform(0.0, 0.06)),
        light_change=float(rng.choice([-1, 1]) * rng.uniform(0.0, 0.15)),
        light_change_at=float(rng.uniform(0.2, 0.8)),
        noise=float(rng.uniform(1.0, 5.0)),
        thermal_amplitude=float(rng.uniform(0.04, 0.12)),
    )
    return {
        "hr_bpm": float(rng.uniform(48, 132)),
        "rr_bpm": float(rng.uniform(6, 28)),
        "rsa_bpm": float(rng.uniform(0.5, 5.0)),
        "hr_drift_bpm": float(rng.uniform(0.0, 6.0)),
        "crf": int(rng.integers(12, 31)),
        "rotate_deg": float(rng.uniform(0, 4)),
        "zoom": float(rng.uniform(0, 0.05)),
        "effects": effects,
    }


def _view_motion(n: int, fps: float, rotate_deg: float, zoom: float, rng) -> list[np.ndarray | None]:
    """Slow in-plane rotation and zoom of the whole view (one 2x3 affine per frame)."""
    if rotate_deg == 0 and zoom == 0:
        return [None] * n
    t = np.arange(n) / fps
    f1, f2 = rng.uniform(0.03, 0.12, 2)
    p1, p2 = rng.uniform(0, 2 * np.pi, 2)
    ang = rotate_deg * np.sin(2 * np.pi * f1 * t + p1)
    scl = 1 + zoom * np.sin(2 * np.pi * f2 * t + p2)
    return [(a, s) for a, s in zip(ang, scl)]


def write_boxes_csv(path, boxes) -> None:
    """Write per-frame face boxes ``(N, 4)`` (x, y, w, h in pixels) as the generic layout's ``.boxes.csv``."""
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "x", "y", "w", "h"])
        for k, box in enumerate(np.asarray(boxes, dtype=float)):
            w.writerow([k] + [f"{v:.2f}" for v in box])


def make_recording(
    path, look, params: dict, duration_s: float, fps: float, size, thermal: bool, seed: int
) -> dict:
    """Render one recording to ``path`` (.mp4) with its signals CSV, face boxes (``.boxes.csv``), JSON
    and optional thermal .npy; ``params`` as drawn by :func:`random_recording_params`."""
    path = Path(path)
    width, height = size
    phys = physiology(
        params["hr_bpm"],
        params["rr_bpm"],
        duration_s,
        fps,
        seed=seed,
        rsa_bpm=params["rsa_bpm"],
        hr_drift_bpm=params["hr_drift_bpm"],
    )
    scene = draw_face(width, height, look, seed=seed)
    n = len(phys["t"])
    rng = np.random.default_rng(seed + 104729)
    view = _view_motion(n, fps, params["rotate_deg"], params["zoom"], rng)
    cx, cy = scene["box"][0] + scene["box"][2] / 2, scene["box"][1] + scene["box"][3] / 2
    therm = None
    if thermal:
        therm = np.lib.format.open_memmap(
            path.with_name(path.stem + ".thermal.npy"), mode="w+", dtype=np.float16, shape=(n, height, width)
        )

    boxes = face_boxes(scene, phys, params["effects"], seed=seed)

    def frames():
        for k, (rgb, th) in enumerate(
            render_frames(scene, phys, params["effects"], seed=seed, thermal=thermal)
        ):
            m = None if view[k] is None else cv2.getRotationMatrix2D((cx, cy), view[k][0], view[k][1])
            if m is not None:  # the view's rotation/zoom moves and scales the face box too
                x, y, w, h = boxes[k]
                bx, by = m @ (x + w / 2, y + h / 2, 1.0)
                side = w * view[k][1]
                boxes[k] = (bx - side / 2, by - side / 2, side, side)
            if m is not None:
                rgb = cv2.warpAffine(
                    rgb, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
                )
            if therm is not None:
                t = th.astype(np.float32) / 255.0
                if m is not None:
                    t = cv2.warpAffine(
                        t, m, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
                    )
                therm[k] = THERMAL_OFFSET_C + THERMAL_SPAN_C * t
            yield rgb

    written = write_video(path, frames(), fps, crf=params["crf"])
    if therm is not None:
        therm.flush()
        del therm
    with open(path.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t_s", "bvp", "rsp", "hr_bpm", "rr_bpm"])
        for row in zip(phys["t"][:written], phys["bvp"], phys["rsp"], phys["hr_inst"], phys["rr_inst"]):
            w.writerow([f"{row[0]:.5f}"] + [f"{v:.5f}" for v in row[1:]])
    write_boxes_csv(path.with_name(path.stem + ".boxes.csv"), boxes[:written])
    truth = {
        "hr_bpm": phys["hr_bpm"],
        "rr_bpm": phys["rr_bpm"],
        "n_frames": written,
        "fps": fps,
        "seed": seed,
        "look": look.to_dict(),
        "thermal": thermal,
        **{k: v for k, v in params.items() if k != "effects"},
        "effects": asdict(params["effects"]),
    }
    path.with_suffix(".json").write_text(json.dumps(truth, indent=1, default=float))
    return truth


def make_dataset(
    out,
    n: int = 20,
    per_subject: int = 2,
    duration_s: float = 20.0,
    fps: float = 30.0,
    size=(160, 120),
    thermal: bool = True,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Render ``n`` recordings (``per_subject`` per synthetic identity) under ``out``; returns the index.

    Deterministic for a given ``seed``. Read it back with ``mmrphys.data.load_dataset("generic", out)``.
    """
    if n < 1 or per_subject < 1 or duration_s <= 0 or fps <= 0:
        raise ConfigError(
            f"need n >= 1, per_subject >= 1, duration_s > 0 and fps > 0 (got {n}, {per_subject}, "
            f"{duration_s}, {fps})"
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    index = {
        "generator": "mmrphys.synth.dataset",
        "n": n,
        "per_subject": per_subject,
        "duration_s": duration_s,
        "fps": fps,
        "size": list(size),
        "thermal": thermal,
        "face_boxes": True,  # every recording has NAME.boxes.csv (detector-equivalent boxes)
        "seed": seed,
        "recordings": {},
    }
    looks: dict[int, object] = {}
    for i in range(n):
        subj = i // per_subject
        if subj not in looks:
            looks[subj] = random_look(np.random.default_rng([seed, subj, 1]))
        rng = np.random.default_rng([seed, i, 2])
        params = random_recording_params(rng)
        look = replace(looks[subj])
        name = f"s{subj:03d}_r{i % per_subject}"  # = the generic loader's recording id
        path = out / f"s{subj:03d}" / f"r{i % per_subject}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        truth = make_recording(path, look, params, duration_s, fps, size, thermal, seed=seed * 100003 + i)
        index["recordings"][name] = {
            "subject": f"s{subj:03d}",
            "hr_bpm": round(truth["hr_bpm"], 3),
            "rr_bpm": round(truth["rr_bpm"], 3),
            "n_frames": truth["n_frames"],
            "crf": truth["crf"],
        }
        if progress:
            print(f"{i + 1}/{n} {name}: HR {truth['hr_bpm']:.1f} RR {truth['rr_bpm']:.1f}", file=sys.stderr)
    (out / "dataset.json").write_text(json.dumps(index, indent=1))
    return index


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be WIDTHxHEIGHT, got {text!r}") from None
    if w < 64 or h < 64:
        raise argparse.ArgumentTypeError("size must be at least 64x64")
    return w, h


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mmrphys.synth.dataset", description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=20, help="recordings (default 20)")
    ap.add_argument("--per-subject", type=int, default=2, help="recordings per synthetic identity")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per recording")
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--size", type=_size, default=(160, 120), help="WIDTHxHEIGHT (default 160x120)")
    ap.add_argument("--no-thermal", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    idx = make_dataset(
        args.out,
        n=args.n,
        per_subject=args.per_subject,
        duration_s=args.duration,
        fps=args.fps,
        size=args.size,
        thermal=not args.no_thermal,
        seed=args.seed,
        progress=True,
    )
    print(f"{len(idx['recordings'])} recordings in {args.out} (read with dataset 'generic')")
    return 0


if __name__ == "__main__":
    sys.exit(main())
