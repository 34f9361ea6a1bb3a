"""Our weights vs POS vs the authors' SCAMPS-trained MMRPhys on the same held-out subjects.

    python -m mmrphys.training.compare --data ubfc-rppg=../shared/data/ubfc-rppg-mini \
        --subjects subject12 subject14 subject17 subject22 \
        --ours runs/default/weights.pt \
        --official $OFFICIAL/SCAMPS_MMRPhysLEF_BVP_RSP_RGBx180x72_SFSAM_Label_Epoch0.pth \
        --out runs/compare [--estimate]      # OFFICIAL=../shared/reference/mmrphys-official

Two views, both on whole clips, HR by the ``mmrphys`` preset:

1. the test protocol (same 72×72 face crops for all; neural models on 180-frame chunks; POS on
   the crops' mean RGB), written like ``mmrphys evaluate`` into ``<out>/protocol/<method>/`` and
   one table ``<out>/protocol/table.md``;
2. with ``--estimate``: the main job ``mmrphys.estimate(video, method=...)`` end to end (its own
   face tracking, windows and overlap-add), HR against the contact-PPG HR of the whole clip,
   into ``<out>/estimate.md``.
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path

import numpy as np

from mmrphys.training.evaluate import combine_tables, predict_video, score_video, write_results


def _pos_prediction(frames: np.ndarray, fs: float, n: int) -> dict[str, np.ndarray]:
    from mmrphys.signals.unsupervised import pos

    rgb = frames[:n].reshape(n, -1, frames.shape[-1]).astype(np.float64).mean(axis=1)
    return {"bvp": np.asarray(pos(rgb, fs), dtype=np.float64)}


def protocol(videos, methods: dict, out: Path, chunk: int = 180, preset: str = "mmrphys") -> dict:
    """``methods``: name -> a loaded model or the string ``"pos"``. Returns ``{name: result}``."""
    results = {}
    for name, m in methods.items():
        preds, rows = {}, []
        for v in videos:
            n = (len(v.frames) // chunk) * chunk
            p = (
                _pos_prediction(v.frames, v.fs, n)
                if isinstance(m, str)
                else predict_video(m, v.frames, chunk)
            )
            preds[v.id] = {f"{t}_pred": x for t, x in p.items()}
            rows += score_video(v.id, p, v.labels, v.fs, chunk, preset)
        slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
        results[name] = write_results(out / slug, preds, rows, title=name) | {"rows": rows}
    combine_tables(results, out)
    return results


def ppg_respiratory_rate(ppg: np.ndarray, fs: float, preset: str = "mmrphys") -> float:
    """Breathing rate of a contact PPG from its amplitude/frequency/baseline modulation: the reference
    RR of datasets without a breathing belt (weak: the modulation may be faint)."""
    from mmrphys.errors import InputError
    from mmrphys.signals import respiration_from_bvp, respiratory_rate

    try:
        return float(respiratory_rate(respiration_from_bvp(ppg, fs, preset=preset), fs, preset=preset))
    except InputError:
        return float("nan")


def via_estimate(recs, methods: dict, preset: str = "mmrphys", save_dir=None) -> list[dict]:
    """HR (and RR) of each method through ``mmrphys.estimate`` vs the contact PPG's over the whole clip.

    The reference RR is the PPG's breathing modulation (:func:`ppg_respiratory_rate`). ``save_dir``:
    each result's JSON is kept there as ``<method>__<video>.json`` (waveforms for later analysis)."""
    import mmrphys
    from mmrphys.signals.rates import heart_rate

    rows = []
    for r in recs:
        lab = r.labels()["bvp"]
        fs = r.fps
        ppg = np.asarray(lab.values, dtype=float)
        gt = heart_rate(ppg, fs, preset=preset)
        gt_rr = ppg_respiratory_rate(ppg, fs, preset)
        for name, (method, weights) in methods.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = mmrphys.estimate(
                    r.files["video"], method=method, weights=weights, preset=preset, progress=False
                )
            d = res.to_dict()
            hr, rr = d.get("heart_rate_bpm"), d.get("respiratory_rate_bpm")
            if save_dir is not None:
                slug = "".join(c if c.isalnum() else "_" for c in name.lower()).strip("_")
                Path(save_dir).mkdir(parents=True, exist_ok=True)
                (Path(save_dir) / f"{slug}__{r.recording_id}.json").write_text(json.dumps(d))
            rows.append(
                {
                    "video": r.recording_id,
                    "method": name,
                    "gt_hr": gt,
                    "hr": hr,
                    "abs_err": abs(hr - gt) if hr is not None else float("nan"),
                    "gt_rr": gt_rr,
                    "rr": rr,
                }
            )
    return rows


def estimate_table(rows: list[dict]) -> str:
    from mmrphys.signals.metrics import mae, rmse

    lines = ["| Method | HR MAE ± SE (bpm) | RMSE ± SE | per video |", "|---|---|---|---|"]
    for name in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == name and r["hr"] is not None]
        m = mae([r["hr"] for r in rs], [r["gt_hr"] for r in rs])
        e = rmse([r["hr"] for r in rs], [r["gt_hr"] for r in rs])
        per = ", ".join(f"{r['video']}: {r['hr']:.1f}/{r['gt_hr']:.1f}" for r in rs)
        lines.append(f"| {name} | {m.value:.2f} ± {m.se:.2f} | {e.value:.2f} ± {e.se:.2f} | {per} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    import torch

    from mmrphys.data import get_loader
    from mmrphys.models.checkpoints import load_model
    from mmrphys.training.config import parse_data_args
    from mmrphys.training.data import select_recordings, test_videos

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", action="append", required=True, metavar="NAME=PATH")
    p.add_argument("--subjects", nargs="+", required=True)
    p.add_argument("--ours", default=None)
    p.add_argument("--official", default=None)
    p.add_argument("--out", default="runs/compare")
    p.add_argument("--no-pos", action="store_true", help="leave POS out (e.g. already measured)")
    p.add_argument("--estimate", action="store_true", help="also compare through mmrphys.estimate")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(a.out)
    name, path = next(iter(parse_data_args(a.data).items()))
    spec = {"name": name, "path": path, "subjects": a.subjects}
    recs = select_recordings(get_loader(name).recordings(path), spec)
    videos = test_videos(spec, size=72, chunk=180)
    methods = {"ours (MMRPhys-LEF, UBFC-4 + synth)": load_model(a.ours)} if a.ours else {}
    if not a.no_pos:
        methods["POS"] = "pos"
    if a.official:
        methods["authors' MMRPhys-LEF (SCAMPS)"] = load_model(a.official)
    res = protocol(videos, methods, out / "protocol")
    print((out / "protocol" / "table.md").read_text())
    summary = {k: v["metrics"] for k, v in res.items()}
    if a.estimate:
        est = {"ours": ("mmrphys", a.ours)} if a.ours else {}
        if not a.no_pos:
            est["POS"] = ("pos", None)
        if a.official:
            est["authors (SCAMPS)"] = ("mmrphys", a.official)
        rows = via_estimate(recs, est)
        (out / "estimate.md").write_text(estimate_table(rows))
        (out / "estimate.json").write_text(json.dumps(rows, indent=1))
        print(estimate_table(rows))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
