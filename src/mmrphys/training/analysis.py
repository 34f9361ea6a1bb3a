"""Learned-feature analysis (paper Fig. 4/5): how well each layer's channels follow the target signal.

For one sample chunk, every conv block's output (B, C, T', H', W') of a branch is captured with
forward hooks (eval mode: the deployed model, no TSFM). At every pixel and channel the temporal
embedding e[c, :, h, w] is compared with the ground truth resampled to T' by the absolute cosine
similarity of the mean-centred vectors (|Pearson r|). A layer's spatial map is the mean over its
channels; the maps of one or two models are drawn side by side, one row per layer.

Files: ``features_<task>.png`` (the figure), ``features_<task>.npz`` (per-channel maps per model
and layer) and ``features.json`` (each layer's mean and max similarity per model).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from mmrphys.errors import InputError


def _resample(y: np.ndarray, n: int) -> np.ndarray:
    return np.interp(np.linspace(0, len(y) - 1, n), np.arange(len(y)), y)


def cosine_maps(emb: torch.Tensor, target: np.ndarray) -> np.ndarray:
    """|cos| between mean-centred temporal embeddings (C, T', H', W') and ``target`` -> (C, H', W')."""
    e = emb.detach().double()
    e = e - e.mean(dim=1, keepdim=True)
    y = torch.as_tensor(_resample(np.asarray(target, float), e.shape[1]))
    y = y - y.mean()
    num = torch.einsum("cthw,t->chw", e, y)
    den = e.norm(dim=1) * y.norm()
    return (num.abs() / den.clamp_min(1e-12)).numpy()


def layer_embeddings(model: torch.nn.Module, x: torch.Tensor, task: str) -> dict[str, torch.Tensor]:
    """Conv-block outputs (C, T', H', W') of ``task``'s branch for one clip ``x`` (1, C, T+1, H, W)."""
    blocks = [
        (n, m)
        for n, m in model.named_modules()
        if n.startswith(f"{task}_") and type(m).__name__ == "ConvBlock3D"
    ]
    if not blocks:  # other architectures: every 3D conv
        blocks = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Conv3d)]
    got: dict[str, torch.Tensor] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: got.__setitem__(n, o[0])) for n, m in blocks]
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
    return {n: got[n] for n, _ in blocks if n in got and got[n].dim() == 4}


def analyze(
    models: dict[str, torch.nn.Module],
    frames: np.ndarray,
    labels: dict[str, np.ndarray],
    out,
    chunk: int = 180,
) -> dict:
    """Maps for every model and task with a label; writes the files listed in the module doc."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if len(frames) < chunk:
        raise InputError(f"sample has {len(frames)} frames, fewer than one chunk of {chunk}")
    x = torch.as_tensor(frames[:chunk], dtype=torch.float32).permute(3, 0, 1, 2)[None]
    x = torch.cat([x, x[:, :, -1:]], dim=2)
    summary: dict = {}
    for task in ("bvp", "rsp"):
        if task not in labels:
            continue
        y = np.asarray(labels[task][:chunk], float)
        per_model = {}
        for name, model in models.items():
            if task not in getattr(model, "tasks", ()):
                continue
            per_model[name] = {
                layer: cosine_maps(e, y) for layer, e in layer_embeddings(model, x, task).items()
            }
        if not per_model:
            continue
        np.savez_compressed(
            out / f"features_{task}.npz",
            **{f"{m}/{layer}": v for m, d in per_model.items() for layer, v in d.items()},
        )
        summary[task] = {
            m: {layer: {"mean": float(v.mean()), "max": float(v.max())} for layer, v in d.items()}
            for m, d in per_model.items()
        }
        _plot(per_model, out / f"features_{task}.png", task)
    (out / "features.json").write_text(json.dumps(summary, indent=1))
    return summary


def _plot(per_model: dict, path: Path, task: str) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(per_model)
    layers = max((list(d) for d in per_model.values()), key=len)
    fig = Figure(figsize=(2.6 * len(names), 2.2 * len(layers)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(layers), len(names), squeeze=False)
    for j, name in enumerate(names):
        for i, layer in enumerate(layers):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if layer not in per_model[name]:
                ax.set_visible(False)
                continue
            m = per_model[name][layer].mean(axis=0)
            im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
            ax.set_title(f"{layer}\nmean {m.mean():.2f}", fontsize=7)
            if i == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.6, label=f"|cos| with ground-truth {task.upper()}")
    fig.savefig(path, dpi=110)


def _sample(data_args: list[str], size: int) -> tuple[np.ndarray, dict]:
    from mmrphys.training.config import parse_data_args
    from mmrphys.training.data import test_videos

    paths = parse_data_args(data_args)
    if not paths or "synth" in paths:
        spec = {"name": "synth", "options": {"n_clips": 1, "duration_s": 7.0}}
    else:
        from mmrphys.data import get_loader

        name, root = next(iter(paths.items()))
        first = get_loader(name).recordings(root)[0]
        spec = {"name": name, "path": root, "subjects": [first.subject_id]}
    video = test_videos(spec, size=size, chunk=180)[0]
    return video.frames, video.labels


def features_main(args) -> int:
    """``mmrphys analyze features W1 [W2] --data NAME=PATH --out DIR`` (two models side by side)."""
    from mmrphys.models.checkpoints import load_model

    if not 1 <= len(args.weights) <= 2:
        raise InputError("give one or two weights files or run folders")
    loaded = {}
    for w in args.weights:
        p = Path(w)
        if p.is_dir():
            p = p / "weights.pt"
        loaded[p.parent.name if p.name == "weights.pt" else p.stem] = load_model(str(p))
    size = next(iter(loaded.values())).input_size
    frames, labels = _sample(args.data, size)
    summary = analyze(loaded, frames, labels, args.out)
    for task, d in summary.items():
        for m, layers in d.items():
            print(
                f"{task} {m}: "
                + ", ".join(
                    f"{k.split('.')[-2] if '.' in k else k}={v['mean']:.2f}" for k, v in layers.items()
                )
            )
    print(f"maps written to {args.out}")
    return 0
