"""Does the re-animated data look like real data to rPPG, and does training on it transfer?

Two checks, both from the command line (``python benchmarks/synth_validate.py ...``):

``realism``
    POS (through the crop-mean RGB trace, as ``mmrphys.training.compare`` does) and the plain green
    trace on 180-frame chunks of real clips (the shared UBFC-rPPG subjects, from the preprocessing
    cache) and of re-animated clips, both scored against their own labels with
    ``mmrphys.signals.rates.heart_rate``: HR error of POS, POS SNR, the green trace's pulse strength
    and its correlation with the label (the label's polarity). Synthetic data that is as hard for
    POS as real data, no easier and no harder, is the goal.

``transfer``
    Train a small MMRPhys (default MMRPhys-S, 9x9) on clips rendered from the training subjects'
    stills, and the same number of steps on the procedural generator (``mmrphys.synth.dataset``), then
    test both on held-out real subjects (whole-clip HR MAE by the test protocol).

    python benchmarks/synth_validate.py realism --data ../shared/data/ubfc-rppg-mini --bank stills.npz --n 60
    python benchmarks/synth_validate.py transfer --data ../shared/data/ubfc-rppg-mini \\
        --train-subjects subject3 subject4 subject8 subject10 \\
        --test-subjects subject12 subject14 subject17 subject22 --clips 300 --epochs 8 --out runs/transfer
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np

CHUNK = 180


# ---------------------------------------------------------------------------------------- realism
def trace_stats(frames: np.ndarray, bvp: np.ndarray, fs: float) -> dict:
    """POS and green-trace numbers of one chunk of crops ``frames`` (n, S, S, 3) against its label."""
    from mmrphys.signals.filters import bandpass
    from mmrphys.signals.metrics import snr
    from mmrphys.signals.rates import heart_rate
    from mmrphys.signals.unsupervised import pos

    n = len(frames)
    rgb = np.asarray(frames, np.float64).reshape(n, -1, 3).mean(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = pos(rgb, fs)
        hr_gt = heart_rate(bvp, fs)
        hr_pos = heart_rate(p, fs)
        snr_db = snr(p, hr_gt, fs, preset="mmrphys")
    g = bandpass(rgb[:, 1], fs, 0.7, 3.0)
    lab = bandpass(np.asarray(bvp, np.float64), fs, 0.7, 3.0)
    edge = int(fs)  # filter transients
    r = float(np.corrcoef(g[edge:-edge], lab[edge:-edge])[0, 1])
    return {
        "hr_gt": float(hr_gt),
        "hr_pos": float(hr_pos),
        "abs_err": float(abs(hr_pos - hr_gt)),
        "snr_db": float(snr_db),
        "green_pulse_pct": float(100 * g[edge:-edge].std() / rgb[:, 1].mean()),
        "green_label_r": r,
        "level": float(rgb.mean()),
    }


def real_chunks(root, subjects, size: int = 72, cache_root=None):
    """(id, frames, bvp, fs) of every 180-frame chunk of the real recordings (via the cache)."""
    from mmrphys.training.data import test_videos

    vids = test_videos(
        {"name": "ubfc-rppg", "path": str(root), "subjects": list(subjects)},
        size=size,
        chunk=CHUNK,
        cache_root=cache_root,
        log=lambda *a: None,
    )
    for v in vids:
        for k in range(len(v.frames) // CHUNK):
            sl = slice(k * CHUNK, (k + 1) * CHUNK)
            yield f"{v.id}#{k}", v.frames[sl], v.labels["bvp"][sl], v.fs


def summarize(rows: list[dict]) -> dict:
    """Medians and shares over chunk rows."""
    err = np.array([r["abs_err"] for r in rows])
    q = lambda key, p: float(np.nanpercentile([r[key] for r in rows], p))  # noqa: E731
    return {
        "n": len(rows),
        "pos_within_5bpm": float(np.mean(err <= 5)),
        "pos_mae": float(err.mean()),
        "pos_abs_err_median": float(np.median(err)),
        "pos_snr_db_median": q("snr_db", 50),
        "pos_snr_db_iqr": [q("snr_db", 25), q("snr_db", 75)],
        "green_pulse_pct_median": q("green_pulse_pct", 50),
        "green_pulse_pct_iqr": [q("green_pulse_pct", 25), q("green_pulse_pct", 75)],
        "green_label_r_median": q("green_label_r", 50),
        "green_label_r_iqr": [q("green_label_r", 25), q("green_label_r", 75)],
    }


def realism(args) -> dict:
    from mmrphys.training.reanimate import ReanimatedDataset
    from mmrphys.training.stills import StillBank

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    real = [
        trace_stats(f, b, fs) | {"id": i}
        for i, f, b, fs in real_chunks(args.data, args.subjects, 72, args.cache)
    ]
    bank = StillBank.load(args.bank)
    if args.bank_subjects:
        bank = bank.select(args.bank_subjects)
    ds = ReanimatedDataset(bank, n=args.n, seed=args.seed, size=72)
    synth = []
    t0 = time.process_time()
    for i in range(args.n):
        c = ds.clip(i)
        synth.append(
            trace_stats(c.frames, c.bvp, ds.fs)
            | {
                "id": i,
                "crf": c.truth["crf"],
                "motion": c.truth["motion_class"],
                "melanin": c.truth["tone"]["melanin"],
            }
        )
    cpu = (time.process_time() - t0) / args.n
    res = {
        "real": summarize(real),
        "reanimated": summarize(synth),
        "render_cpu_s_per_item": cpu,
        "real_rows": real,
        "reanimated_rows": synth,
    }
    (out / "realism.json").write_text(json.dumps(res, indent=1))
    for k in ("real", "reanimated"):
        print(k, json.dumps(res[k]))
    return res


# --------------------------------------------------------------------------------------- transfer
class ItemList:
    """Pre-rendered training items (a list of dicts) as a Dataset."""

    def __init__(self, items: list[dict], name: str):
        self.items, self.name = items, name

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]

    def manifest_hash(self) -> str:
        return self.name


def reanimated_items(bank, n: int, seed: int, sizes, log=print, params=None) -> dict[int, list[dict]]:
    """``n`` re-animated items at each of ``sizes`` (the same clips, cropped at every size)."""
    from mmrphys.training.reanimate import ReanimatedDataset

    sizes = list(sizes)
    ds = ReanimatedDataset(bank, n=n, seed=seed, size=sizes[0], params=params)
    out: dict[int, list[dict]] = {s: [] for s in sizes}
    t0 = time.time()
    for i in range(n):
        c = ds.clip(i, extra_sizes=sizes[1:])
        for s in sizes:
            out[s].append(c.item(f"reanimated/{{subject}}/{seed}-{i}", size=s))
        if (i + 1) % 25 == 0:
            log(f"[transfer] rendered {i + 1}/{n} ({(time.time() - t0) / (i + 1):.2f} s/item wall)")
    return out


def procedural_items(n_chunks: int, seed: int, size: int, cache_root: Path, log=print) -> list[dict]:
    """The same number of chunks from today's procedural generator, cropped by the project's cache."""
    from mmrphys.training.data import TrainChunks, prepare_entry

    spec = {
        "name": "synth",
        "path": None,
        "subjects": None,
        "exclude_subjects": None,
        "fold": None,
        "split": None,
        "crop": "auto",
        "modality": "rgb",
        "options": {"n_clips": (n_chunks + 1) // 2, "duration_s": 12.0, "seed": seed},
    }
    entry = prepare_entry(spec, size, CHUNK, cache_root, None, True, log)
    ds = TrainChunks([entry], ("bvp", "rsp"))
    return [ds[i] for i in range(min(n_chunks, len(ds)))]


def real_items(root, subjects, size: int, cache_root) -> list[dict]:
    from mmrphys.training.data import TrainChunks, prepare_entry

    spec = {
        "name": "ubfc-rppg",
        "path": str(root),
        "subjects": list(subjects),
        "exclude_subjects": None,
        "fold": None,
        "split": None,
        "crop": "auto",
        "modality": "rgb",
        "options": {},
    }
    entry = prepare_entry(spec, size, CHUNK, cache_root, None, True, lambda *a: None)
    ds = TrainChunks([entry], ("bvp", "rsp"))
    return [ds[i] for i in range(len(ds))]


def train_and_test(
    items: list[dict],
    name: str,
    model_name: str,
    size: int,
    steps: int,
    seed: int,
    tests,
    out: Path,
    log=print,
) -> dict:
    """Train ``model_name`` for ``steps`` steps (batch 4) on ``items``; HR MAE on the test videos."""

    from mmrphys import models
    from mmrphys.models.checkpoints import save_weights
    from mmrphys.training.config import validate
    from mmrphys.training.trainer import Trainer, seed_everything

    steps_per_epoch = max(1, len(items) // 4)
    epochs = max(1, round(steps / steps_per_epoch))
    cfg = validate(
        {
            "name": name,
            "seed": seed,
            "threads": 1,
            "model": {"name": model_name, "tasks": ["bvp", "rsp"], "attention": "tsfm"},
            "data": {"size": size, "chunk": CHUNK},
            "train": {
                "epochs": epochs,
                "batch_size": 4,
                "lr": 1e-3,
                "loss": "smoothl1",
                "max_steps_per_epoch": min(steps_per_epoch, max(1, steps // epochs)),
                "progress": False,
                "drop_last": True,
            },
        }
    )
    seed_everything(seed)
    model = models.create(model_name, tasks=("bvp", "rsp"), in_channels=3, attention="tsfm")
    t0 = time.time()
    trainer = Trainer(cfg, model, ItemList(items, name), out / name)
    trainer.fit()
    train_s = time.time() - t0
    save_weights(model, out / name / "weights.pt", meta={"config": cfg, "train_items": len(items)})
    res = {
        "name": name,
        "model": model_name,
        "size": size,
        "steps": trainer.global_step,
        "items": len(items),
        "train_s": round(train_s, 1),
    } | score_model(model, tests)
    log(f"[transfer] {json.dumps(res)}")
    return res


def score_model(model, tests, window_s: float = 10.0) -> dict:
    """HR MAE (whole clip and ``window_s`` windows), SNR and MACC of ``model`` on test videos."""
    import torch

    from mmrphys.training.evaluate import aggregate, predict_video, score_video

    whole, windows = [], []
    model.eval()
    with torch.no_grad():
        for v in tests:
            p = predict_video(model, v.frames, CHUNK)
            whole += score_video(v.id, p, v.labels, v.fs, CHUNK, "mmrphys")
            windows += score_video(v.id, p, v.labels, v.fs, CHUNK, "mmrphys", window_s=window_s)
    m, w = aggregate(whole)["bvp"], aggregate(windows)["bvp"]
    return {
        "hr_mae": m["MAE"][0],
        "hr_mae_se": m["MAE"][1],
        "snr_db": m["SNR"][0],
        "macc": m["MACC"][0],
        f"hr_mae_{window_s:g}s": w["MAE"][0],
        f"hr_mae_{window_s:g}s_se": w["MAE"][1],
        f"snr_db_{window_s:g}s": w["SNR"][0],
        "n_windows": int(w["n"]),
        "per_video": {
            r["video"]: [round(r["pred_rate"], 1), round(r["gt_rate"], 1)]
            for r in whole
            if r["task"] == "bvp"
        },
    }


def evaluate(args) -> dict:
    """Score saved weights on real subjects (``evaluate`` subcommand)."""
    import torch

    from mmrphys.models.checkpoints import load_model
    from mmrphys.training.data import test_videos

    torch.set_num_threads(1)
    out = {}
    for w in args.weights:
        model = load_model(w)
        size = int(getattr(model, "input_size", 72))
        tests = test_videos(
            {"name": "ubfc-rppg", "path": str(args.data), "subjects": args.subjects},
            size=size,
            chunk=CHUNK,
            cache_root=args.cache,
            log=lambda *a: None,
        )
        out[w] = score_model(model, tests) | {"subjects": args.subjects}
        print(w, json.dumps(out[w]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1))
    return out


def transfer(args) -> list[dict]:
    import torch

    from mmrphys.training.data import test_videos

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cache_root = Path(args.cache) if args.cache else out / "cache"
    size = args.size
    log = print
    tests = test_videos(
        {"name": "ubfc-rppg", "path": str(args.data), "subjects": args.test_subjects},
        size=size,
        chunk=CHUNK,
        cache_root=cache_root,
        log=lambda *a: None,
    )
    steps = args.steps
    results = []
    path = out / "transfer.json"
    prior = json.loads(path.read_text()) if path.is_file() else []
    done = {r["name"] for r in prior}
    results = list(prior)
    for kind in args.kinds:
        for seed in args.seeds:
            name = f"{kind}_{args.model}_s{seed}"
            if name in done:
                continue
            items = []
            for part in kind.split("+"):
                items += _items(part, args, size, out, cache_root, log)
            results.append(train_and_test(items, name, args.model, size, steps, seed, tests, out, log))
            path.write_text(json.dumps(results, indent=1))
    return results


MILD = {"motion": 0.5, "light": 0.5, "expression": 0.5, "pulse_od": (0.02, 0.08)}


def _items(kind: str, args, size: int, out: Path, cache_root: Path, log) -> list[dict]:
    """Training items of one kind: reanimated[-mild] (stills of the training subjects only), procedural,
    real (the training subjects' own chunks)."""
    from mmrphys.training.reanimate import RenderParams
    from mmrphys.training.stills import StillBank

    if kind.startswith("reanimated"):
        bank_path = out / "stills.npz"
        if args.bank:
            bank = StillBank.load(args.bank).select(args.train_subjects)
        elif bank_path.is_file():
            bank = StillBank.load(bank_path)
        else:
            vids = [str(Path(args.data) / s / "vid.mp4") for s in args.train_subjects]
            bank = StillBank.from_videos(vids, log=log)
            bank.save(bank_path)
        if set(bank.subjects) - set(args.train_subjects):
            raise SystemExit(f"still bank holds subjects outside the training fold: {bank.subjects}")
        params = RenderParams(**MILD) if kind == "reanimated-mild" else RenderParams()
        sizes = sorted({size, *args.render_sizes})
        tag = "-".join(bank.subjects)
        return _cached_items(
            out / f"items_{kind}_{tag}_{'-'.join(map(str, sizes))}_{args.clips}.pt",
            lambda: reanimated_items(bank, args.clips, 0, sizes, log, params),
        )[size]
    if kind == "procedural":
        return _cached_items(
            out / f"items_procedural_{size}_{args.clips}.pt",
            lambda: procedural_items(args.clips, 0, size, cache_root, log),
        )
    if kind == "real":
        return real_items(args.data, args.train_subjects, size, cache_root)
    raise SystemExit(f"unknown kind {kind}")


def _cached_items(path: Path, make):
    import torch

    if path.is_file():
        return torch.load(path, weights_only=False)
    items = make()
    torch.save(items, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)
    return items


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(
        prog="python benchmarks/synth_validate.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("realism")
    r.add_argument("--data", required=True, help="UBFC-rPPG root (DATASET_2 layout)")
    r.add_argument(
        "--subjects",
        nargs="+",
        default=[
            "subject3",
            "subject4",
            "subject8",
            "subject10",
            "subject12",
            "subject14",
            "subject17",
            "subject22",
        ],
    )
    r.add_argument("--bank", required=True, help="still bank (.npz) to render from")
    r.add_argument("--bank-subjects", nargs="*", default=None)
    r.add_argument("--n", type=int, default=60)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--cache", default=None, help="preprocessing cache root (default: mmrphys's)")
    r.add_argument("--out", default="runs/synth-realism")
    t = sub.add_parser("transfer")
    t.add_argument("--data", required=True)
    t.add_argument("--train-subjects", nargs="+", default=["subject3", "subject4", "subject8", "subject10"])
    t.add_argument("--test-subjects", nargs="+", default=["subject12", "subject14", "subject17", "subject22"])
    t.add_argument("--bank", default=None, help="still bank to select the training subjects from")
    t.add_argument("--kinds", nargs="+", default=["reanimated", "procedural"])
    t.add_argument("--model", default="mmrphys_sef")
    t.add_argument("--size", type=int, default=9)
    t.add_argument("--clips", type=int, default=300)
    t.add_argument(
        "--render-sizes", nargs="*", type=int, default=[], help="also crop the clips at these sizes"
    )
    t.add_argument("--steps", type=int, default=600)
    t.add_argument("--seeds", nargs="+", type=int, default=[0])
    t.add_argument("--cache", default=None)
    t.add_argument("--out", default="runs/synth-transfer")
    e = sub.add_parser("evaluate")
    e.add_argument("--data", required=True)
    e.add_argument("--weights", nargs="+", required=True)
    e.add_argument("--subjects", nargs="+", required=True)
    e.add_argument("--cache", default=None)
    e.add_argument("--out", default=None, help="JSON file for the scores")
    a = ap.parse_args(argv)
    {"realism": realism, "transfer": transfer, "evaluate": evaluate}[a.cmd](a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
