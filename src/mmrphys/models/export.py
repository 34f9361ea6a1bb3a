"""ONNX export of our models for inference, with a dynamic frame axis (run by :mod:`mmrphys.models.runtime`).

The official MMRPhys export hard-codes 180 output samples (only 181-frame inputs run). Ours keeps
the frame axis symbolic: the graph takes ``input`` (B, C, T+1, H, W) for any valid T (a multiple
of 4 when RSP is estimated) and returns ``rPPG`` / ``rRSP`` (B, T), the official names.

The exported network is the inference network: attention modules (FSAM/TSFM/GRBF) are removed
first, so the graph has no trace of them, exactly as the deployed official model.
"""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.errors import ConfigError
from mmrphys.models.runtime import (  # noqa: F401  (the runner's names, re-exported here)
    FRAME_MULTIPLE_KEY,
    INPUT_NAME,
    OUTPUT_NAMES,
    PIXEL_SCALE_KEY,
    WINDOW_FRAMES_KEY,
    OnnxPredictor,
    frame_multiple,
    onnx_session,
    run_onnx,
)


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
    conv2d: bool = False,
    metadata: dict | None = None,
) -> Path:
    """Export ``model`` to ONNX at ``path`` with a dynamic frame axis; returns the path.

    ``frames`` is the length of the tracing example (default 181). With ``check=True`` the file is
    run in onnxruntime at the example length and at ``check_frames`` (default: one other valid
    length) and compared with PyTorch after z-scoring; a difference above ``atol`` raises
    :class:`RuntimeError` (a bug, not a user error).

    ``conv2d=True`` writes the runtime form (:func:`runtime_form`: every 3x3x3 convolution as one 2-D
    convolution over its three frames stacked as channels; the same sums, about 2x faster in
    onnxruntime's CPU kernels) with the batch axis fixed at 1. ``metadata``: extra ``key: value``
    strings stored in the file (the window length and pixel scale are always stored).
    """
    if not hasattr(model, "tasks") or not hasattr(model, "in_channels"):
        raise ConfigError(f"{type(model).__name__} does not follow the model contract (tasks, in_channels)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # written whole, checked, then renamed
    try:
        _export_checked(model, tmp, frames, opset, dynamic_batch, check, check_frames, atol, conv2d, metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _export_checked(model, path: Path, frames, opset, dynamic_batch, check, check_frames, atol, conv2d,
                    metadata) -> None:
    net = inference_copy(model)
    graph = runtime_form(net) if conv2d else net
    x = example_input(net, frames)
    names = [OUTPUT_NAMES[t] for t in net.tasks]
    axes = {INPUT_NAME: {2: "frames"}}
    for n in names:
        axes[n] = {1: "samples"}
    if dynamic_batch and not conv2d:
        axes[INPUT_NAME][0] = "batch"
        for n in names:
            axes[n][0] = "batch"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about the shape checks (python ints)
        torch.onnx.export(
            _TupleOutputs(graph),
            (x,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=names,
            dynamic_axes=axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    _set_metadata(path, {FRAME_MULTIPLE_KEY: int(getattr(net, "frame_multiple", 1) or 1),
                         WINDOW_FRAMES_KEY: int(getattr(net, "window_frames", 181)),
                         PIXEL_SCALE_KEY: float(getattr(net, "pixel_scale", 1.0)), **(metadata or {})})
    if check:
        t = x.shape[2] - 1
        step = max(int(getattr(net, "frame_multiple", 1)), 1)
        others = check_frames if check_frames is not None else (max(t - 5 * step, step) + 1,)
        sess = onnx_session(path, threads=1)
        for f in (x.shape[2], *others):
            diff = compare_onnx(sess, net, f)
            if diff > atol:
                raise RuntimeError(f"{path}: ONNX output differs from PyTorch by {diff:.2e} at {f} frames")


def _set_metadata(path: Path, items: dict) -> None:
    import onnx

    proto = onnx.load(str(path))
    for key, value in items.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = str(key), str(value)
    onnx.save(proto, str(path))


# ----------------------------------------------------------------------------- the runtime form
class Conv3dAs2d(nn.Module):
    """A 3-D convolution with a 3-frame kernel and unit spatial stride, computed as one 2-D
    convolution: the frames t-1, t, t+1 of the (temporally padded) input are stacked as channels
    (3·C_in), the frames go to the batch axis, and the kernel (C_out, C_in, 3, kh, kw) becomes
    (C_out, 3·C_in, kh, kw). Every output is the same sum of the same products (in another order).
    The batch axis of the input must be 1 (the frames fill the 2-D batch)."""

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        c_out, c_in, kt, kh, kw = conv.weight.shape
        if conv.stride[1:] != (1, 1) or conv.dilation != (1, 1, 1) or conv.groups != 1 or kt != 3:
            raise ConfigError(f"Conv3dAs2d takes a 3-frame kernel, unit spatial stride, no dilation or "
                              f"groups: {conv}")
        self.kt, self.t_stride = int(kt), int(conv.stride[0])
        self.t_pad, self.h_pad, self.w_pad = (int(p) for p in conv.padding)
        # channel dt·C_in + c of the stacked input
        w = conv.weight.detach().permute(0, 2, 1, 3, 4).reshape(c_out, kt * c_in, kh, kw)
        self.weight = nn.Parameter(w.clone(), requires_grad=False)
        bias = conv.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # constant slice bounds and squeeze / transpose / unsqueeze (no reshape): the exported graph
        # keeps every axis but T known, which the instance norms that follow need. Tap d covers the
        # padded frames d, d + stride, ... up to the last one whose window still fits (end - (kt-1-d)).
        if self.t_pad:  # zero frames on both ends (F.pad would export with an unknown output shape)
            z = torch.zeros(1, int(x.shape[1]), self.t_pad, int(x.shape[3]), int(x.shape[4]), dtype=x.dtype)
            xp = torch.cat([z, x, z], 2)
        else:
            xp = x
        taps = torch.cat([xp[:, :, d:(d - self.kt + 1) or None:self.t_stride] for d in range(self.kt)], 1)
        y = F.conv2d(taps.squeeze(0).transpose(0, 1), self.weight, self.bias,  # frames as the 2-D batch
                     padding=(self.h_pad, self.w_pad))
        return y.transpose(0, 1).unsqueeze(0)  # (T', C_out, H', W') -> (1, C_out, T', H', W')


def runtime_form(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every 3-frame 3-D convolution as :class:`Conv3dAs2d` (for export)."""
    net = copy.deepcopy(model).eval()

    def swap(module: nn.Module) -> None:
        for name, child in module.named_children():
            if (isinstance(child, nn.Conv3d) and child.kernel_size[0] == 3 and child.stride[1:] == (1, 1)
                    and child.groups == 1 and child.dilation == (1, 1, 1)):
                setattr(module, name, Conv3dAs2d(child))
            else:
                swap(child)

    swap(net)
    return net


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
