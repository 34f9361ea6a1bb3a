"""ONNX export of our models for inference, with a dynamic frame axis, and an onnxruntime runner.

The official MMRPhys export hard-codes 180 output samples (only 181-frame inputs run). Ours keeps
the frame axis symbolic: the graph takes ``input`` (B, C, T+1, H, W) for any valid T (a multiple
of 4 when RSP is estimated) and returns ``rPPG`` / ``rRSP`` (B, T), the official names.

The exported network is the inference network: attention modules (FSAM/TSFM/GRBF) are removed
first, so the graph has no trace of them, exactly as the deployed official model.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mmrphys.errors import ConfigError, InputError, WeightsError

OUTPUT_NAMES = {"bvp": "rPPG", "rsp": "rRSP", "au": "AU"}  # official names; AU: BigSmall
INPUT_NAME = "input"


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode deep copy of ``model`` with every attention module removed."""
    from mmrphys.models.attention import Head

    net = copy.deepcopy(model).eval()
    for m in net.modules():
        if isinstance(m, Head):
            m.attention = None
    return net


class _TupleOutputs(nn.Module):
    # ONNX export wants positional outputs; order follows model.tasks (bvp before rsp).
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.tasks = tuple(model.tasks)

    def forward(self, x):
        out = self.model(x)
        return tuple(out[t] for t in self.tasks)


def example_input(model: nn.Module, frames: int | None = None, batch: int = 1) -> torch.Tensor:
    """A random (batch, C, frames, S, S) clip in [0, 1] that ``model`` accepts (default 181 frames)."""
    if frames is None:
        frames = 181 if getattr(model, "frame_multiple", 1) in (1, 2, 4) else 4 * model.frame_multiple + 1
    size = int(getattr(model, "input_size", 72) or 72)
    gen = torch.Generator().manual_seed(0)
    return torch.rand(batch, model.in_channels, frames, size, size, generator=gen)


def export_onnx(
    model: nn.Module,
    path,
    frames: int | None = None,
    opset: int = 17,
    dynamic_batch: bool = True,
    check: bool = True,
    check_frames: tuple[int, ...] | None = None,
    atol: float = 1e-4,
) -> Path:
    """Export ``model`` to ONNX at ``path`` with a dynamic frame axis; returns the path.

    ``frames`` is the length of the tracing example (default 181). With ``check=True`` the file is
    run in onnxruntime at the example length and at ``check_frames`` (default: one other valid
    length) and compared with PyTorch after z-scoring; a difference above ``atol`` raises
    :class:`RuntimeError` (a bug, not a user error).
    """
    if not hasattr(model, "tasks") or not hasattr(model, "in_channels"):
        raise ConfigError(f"{type(model).__name__} does not follow the model contract (tasks, in_channels)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    net = inference_copy(model)
    x = example_input(net, frames)
    names = [OUTPUT_NAMES[t] for t in net.tasks]
    axes = {INPUT_NAME: {2: "frames"}}
    for n in names:
        axes[n] = {1: "samples"}
    if dynamic_batch:
        axes[INPUT_NAME][0] = "batch"
        for n in names:
            axes[n][0] = "batch"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the shape checks (python ints)
        torch.onnx.export(
            _TupleOutputs(net),
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    _set_frame_multiple(path, int(getattr(net, "frame_multiple", 1) or 1))
    if check:
        t = x.shape[2] - 1
        step = max(int(getattr(net, "frame_multiple", 1)), 1)
        others = check_frames if check_frames is not None else (max(t - 5 * step, step) + 1,)
        sess = onnx_session(path, threads=1)
        for f in (x.shape[2], *others):
            diff = compare_onnx(sess, net, f)
            if diff > atol:
                raise RuntimeError(f"{path}: ONNX output differs from PyTorch by {diff:.2e} at {f} frames")
    return path


FRAME_MULTIPLE_KEY = "mmrphys.frame_multiple"  # ONNX metadata: T must be a multiple of this


def _set_frame_multiple(path: Path, multiple: int) -> None:
    import onnx

    proto = onnx.load(str(path))
    entry = proto.metadata_props.add()
    entry.key, entry.value = FRAME_MULTIPLE_KEY, str(multiple)
    onnx.save(proto, str(path))


def frame_multiple(session) -> int:
    """T must be a multiple of this for ``session``: our export's metadata, else 4 when it has rRSP."""
    meta = session.get_modelmeta().custom_metadata_map
    if FRAME_MULTIPLE_KEY in meta:
        return max(int(meta[FRAME_MULTIPLE_KEY]), 1)
    return 4 if OUTPUT_NAMES["rsp"] in [o.name for o in session.get_outputs()] else 1


def onnx_session(path, threads: int | None = None, optimize: bool = True, quiet: bool = False):
    """An onnxruntime CPU session for ``path`` (``threads`` intra-op threads; full graph optimisation;
    ``quiet``: no onnxruntime log lines). A file onnxruntime cannot load raises :class:`WeightsError`
    naming it, in one line."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    if quiet:
        so.log_severity_level = 4
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    )
    try:
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as err:  # onnxruntime's own exception types, for files it cannot read
        first = (str(err).strip().splitlines() or [""])[0][:120]
        raise WeightsError(f"{path}: not a readable ONNX model ({type(err).__name__}: {first})") from None


def run_onnx(session, x) -> dict[str, np.ndarray]:
    """Run an exported model: (B, C, T+1, H, W) array → ``{"bvp": (B, T), "rsp": (B, T)[, "au": ...]}``."""
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    shape = session.get_inputs()[0].shape
    if x.ndim != 5 or (isinstance(shape[1], int) and x.shape[1] != shape[1]):
        raise InputError(f"ONNX model expects (B, {shape[1]}, T+1, H, W); got {x.shape}")
    step, t = frame_multiple(session), x.shape[2] - 1
    if t % step:
        why = "when RSP is estimated" if step == 4 else "for this model"
        raise InputError(
            f"T = frames - 1 = {t} must be a multiple of {step} {why}; "
            f"use {t // step * step + 1} or {t // step * step + step + 1} frames"
        )
    outs = session.run(None, {session.get_inputs()[0].name: x})
    task_of = {v: k for k, v in OUTPUT_NAMES.items()}
    return {task_of.get(o.name, o.name): v for o, v in zip(session.get_outputs(), outs)}


class OnnxPredictor:
    """An ONNX export run like a prepared model (:class:`mmrphys.models.inference.Predictor`):
    ``predictor(x)`` with ``x`` (B, C, T+1, H, W) returns ``{task: (B, T)}`` tensors.

    onnxruntime on the CPU with ``threads`` intra-op threads. The window comes from the graph's
    input shape (C, H, W fixed; T+1 = 181 when the frame axis is dynamic, as the authors trained);
    outputs named as the authors' exports (``rPPG``, ``rRSP``) become ``bvp``/``rsp``. The networks
    these files hold normalise each clip themselves, so pixels are passed in [0, 1].
    """

    backend = "onnx"
    module = None
    compiled_shape = None

    def __init__(self, path, threads: int = 1):
        from mmrphys.models.inference import InputSpec

        path = Path(path)
        self.session = onnx_session(path, threads=threads)
        shape = self.session.get_inputs()[0].shape
        if len(shape) != 5 or not all(isinstance(shape[i], int) for i in (1, 3, 4)) or shape[3] != shape[4]:
            raise WeightsError(f"{path}: an ONNX model for the main job takes (B, C, T+1, S, S) face crops "
                               f"with fixed C and S; this one takes {shape}")
        task_of = {v: k for k, v in OUTPUT_NAMES.items()}
        self.tasks = tuple(task_of.get(o.name, o.name) for o in self.session.get_outputs())
        if "bvp" not in self.tasks:
            raise WeightsError(f"{path}: the ONNX model has no pulse output ({OUTPUT_NAMES['bvp']!r}); "
                               f"its outputs are {[o.name for o in self.session.get_outputs()]}")
        frames = shape[2] if isinstance(shape[2], int) else 181
        self.spec = InputSpec(size=int(shape[3]), frames=int(frames),
                              frame_multiple=frame_multiple(self.session), in_channels=int(shape[1]),
                              pixel_scale=1.0)

    def __call__(self, x) -> dict[str, torch.Tensor]:
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in run_onnx(self.session, x).items()}


def _z(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return (a - a.mean(-1, keepdims=True)) / (a.std(-1, keepdims=True) + 1e-12)


def compare_onnx(path_or_session, model: nn.Module, frames: int = 181) -> float:
    """Max |z(onnx) − z(torch)| over outputs on a random clip of ``frames`` frames."""
    sess = path_or_session if hasattr(path_or_session, "run") else onnx_session(path_or_session, threads=1)
    net = inference_copy(model)
    x = example_input(net, frames)
    with torch.no_grad():
        ref = {k: v.numpy() for k, v in net(x).items()}
    got = run_onnx(sess, x.numpy())
    return max(float(np.abs(_z(got[k]) - _z(ref[k])).max()) for k in ref)
