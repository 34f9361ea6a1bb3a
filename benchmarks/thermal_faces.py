"""Face boxes on thermal frames: Haar on contrast-normalised thermal vs the warm-region detector.

Synthetic thermal faces (``mmrphys.synth``: random looks, sizes and positions; the thermal view as
``mmrphys synth --thermal`` renders it, in °C as the training-set generator stores it) against the
box a face detector reports for the same face in the RGB view (``synth.clip.detector_box``).
A detection counts when its IoU with that box is at least 0.5.

    python benchmarks/thermal_faces.py [--n 60]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mmrphys.faces import FaceDetector
from mmrphys.faces.thermal import WarmFaceDetector, normalised_u8
from mmrphys.faces.track import _iou as iou  # (x, y, w, h) boxes
from mmrphys.synth.clip import (
    detector_box,
    draw_face,
    physiology,
    random_look,
    render_frames,
    thermal_celsius,
)

SIZES = ((160, 128), (320, 240), (640, 512))


def thermal_frames(n: int, seed: int = 0):
    """(thermal °C frame, truth box) for ``n`` random synthetic subjects."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        scene = draw_face(w, h, random_look(rng), seed=int(rng.integers(1 << 30)))
        phys = physiology(70, 14, 1 / 30, 30)
        _, th = next(iter(render_frames(scene, phys, thermal=True, seed=i)))
        yield thermal_celsius(th), detector_box(scene["box"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=60)
    args = ap.parse_args()
    detectors = {"haar on normalised thermal": (FaceDetector(), normalised_u8),
                 "warm region": (WarmFaceDetector(), lambda img: img)}
    found = {k: [] for k in detectors}
    cost = dict.fromkeys(detectors, 0.0)
    for img, truth in thermal_frames(args.n):
        for name, (det, prep) in detectors.items():
            t0 = time.perf_counter()
            boxes = det.detect(prep(img))
            cost[name] += time.perf_counter() - t0
            found[name].append(max((iou(b, truth) for b in boxes), default=0.0))
    print(f"{args.n} synthetic thermal faces ({', '.join(f'{w}x{h}' for w, h in SIZES)}):")
    for name, ious in found.items():
        ious = np.asarray(ious)
        print(f"  {name:28s} found (IoU >= 0.5) {np.mean(ious >= 0.5) * 100:5.1f}%   median IoU "
              f"{np.median(ious):.2f}   {cost[name] / args.n * 1e3:.1f} ms/frame")


if __name__ == "__main__":
    main()
