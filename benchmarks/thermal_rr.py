"""Breathing rate from RGB alone vs RGB + thermal vs thermal alone, on held-out synthetic paired clips.

    python benchmarks/thermal_rr.py [--n 5] [--duration 30] [--ours runs/thermal_lnf_rgbt/weights.pt]
                                    [--official ../shared/reference/mmrphys-official] [--rgb-breathing weak]

Clips: ``mmrphys.synth.make_clip(..., thermal=True)`` with random looks, HR 55-110 bpm, RR 8-24 /min,
nostril temperature swing 0.04-0.12 of the thermal scale (0.7-2 °C), RGB 320x240 H.264 and the thermal
view at 160x120 as a °C ``.npy`` with timestamps (seeds 1000+: none of them was seen in training).
Methods: POS (RGB; RR from the pulse's modulation), our shipped RGB MMRPhys (RSP branch on RGB),
RGB + thermal with our synthetic-trained weights (``--ours``, when the file exists) and the authors'
BP4D+ LEF / LNF RGBT checkpoints, thermal alone with the BP4D+ LEF T checkpoint. Prints per-clip RR
and the mean absolute error of RR and HR per method (1 torch thread; state the load average).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BP4D = {"BP4D+ LEF RGBT": "BP4D_MMRPhysLEF_BVP_RSP_RGBTx180x72_SFSAM_Label_Fold1_Epoch4.pth",
        "BP4D+ LNF RGBT": "BP4D_MMRPhysLNF_BVP_RSP_RGBTx180x72_SFSAM_Label_Fold1_Epoch4.pth",
        "BP4D+ LEF T (thermal alone)": "BP4D_MMRPhysLEF_BVP_RSP_Tx180x72_SFSAM_Label_Fold1_Epoch4.pth"}


#: ``--rgb-breathing weak``: little breathing in the colour video (hardly any head motion, no
#: intensity change, weak pulse-amplitude modulation) and more sway, as for a still subject; the
#: thermal view is unchanged.
WEAK_RGB_BREATHING = {"breath_motion": 0.002, "riiv": 0.0, "riav": 0.05, "sway": 0.02}


def make_clips(folder: Path, n: int, duration: float, weak: bool = False) -> list[dict]:
    from mmrphys.synth import Effects, make_clip, random_look

    rng = np.random.default_rng(1000)
    clips = []
    for k in range(n):
        fx = Effects(thermal_amplitude=float(rng.uniform(0.04, 0.12)),
                     **(WEAK_RGB_BREATHING if weak else {}))
        clips.append(make_clip(folder / f"c{k}.mp4", hr_bpm=float(rng.uniform(55, 110)),
                               rr_bpm=float(rng.uniform(8, 24)), duration_s=duration, size=(320, 240),
                               thermal=True, thermal_suffix=".npy", thermal_size=(160, 120), seed=1000 + k,
                               look=random_look(rng), effects=fx))
    return clips


def main() -> None:
    import torch

    import mmrphys

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5)
    ap.add_argument("--duration", type=float, default=30.0)
    ap.add_argument("--ours", default=str(ROOT / "runs" / "thermal_lnf_rgbt" / "weights.pt"))
    ap.add_argument("--official", default=str(ROOT.parent / "shared" / "reference" / "mmrphys-official"))
    ap.add_argument("--rgb-breathing", choices=("default", "weak"), default="default",
                    help="breathing cues in the colour video: make_clip defaults, or weak (still subject)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    methods: dict[str, dict] = {"POS (RGB)": {"method": "pos"}, "our MMRPhys (RGB)": {"method": "mmrphys"}}
    if Path(args.ours).is_file():
        methods["ours RGBT (synthetic-trained LNF)"] = {"weights": args.ours, "thermal": True}
    for name, file in BP4D.items():
        path = Path(args.official) / file
        if path.is_file():
            methods[name] = {"weights": str(path), "thermal": True, "alone": "T (" in name}
    with tempfile.TemporaryDirectory() as tmp:
        clips = make_clips(Path(tmp), args.n, args.duration, weak=args.rgb_breathing == "weak")
        print(f"{args.n} held-out synthetic paired clips of {args.duration:g} s, RGB breathing cues "
              f"{args.rgb_breathing}; load average "
              f"{os.getloadavg()[0]:.1f}; 1 torch thread")
        truth = " ".join(f"{c['rr_bpm']:5.1f}" for c in clips)
        print(f"{'truth RR':34s} {truth}")
        for name, m in methods.items():
            rr_err, hr_err, rrs, t0 = [], [], [], time.perf_counter()
            for c in clips:
                kw = {"progress": False}
                if m.get("thermal"):
                    kw.update(thermal=c["thermal_video"], weights=m["weights"])
                    src = None if m.get("alone") else c["video"]
                else:
                    kw["method"] = m["method"]
                    src = c["video"]
                try:
                    with warnings.catch_warnings():  # the BP4D+ files' dropped blood-pressure head
                        warnings.simplefilter("ignore")
                        res = mmrphys.estimate(src, **kw)
                    rr, hr = res.respiratory_rate_bpm, res.heart_rate_bpm
                except mmrphys.MmrphysError as err:
                    print(f"  {name}: {c['video']}: {err}")
                    rr = hr = float("nan")
                rrs.append(rr)
                rr_err.append(abs(rr - c["rr_bpm"]))
                hr_err.append(abs(hr - c["hr_bpm"]))
            cells = " ".join(f"{v:5.1f}" for v in rrs)
            print(f"{name:34s} {cells}   RR MAE {np.nanmean(rr_err):5.2f}  (max {np.nanmax(rr_err):5.2f})  "
                  f"HR MAE {np.nanmean(hr_err):5.1f}   {time.perf_counter() - t0:5.0f} s")


if __name__ == "__main__":
    main()
