"""A faster CPU inference path for MMRPhys and FactorizePhys, numerically equal to the PyTorch model.

Where the time goes (profiled on a 2-core Xeon, MMRPhys-LEF, 181x72x72): ~55 % in the 3D convs,
~30 % in ``InstanceNorm3d`` and ~15 % in ``Tanh``; the official ONNX export spends 83 % in its
(Conv+Tanh fused) convs and 14 % in instance norm. Three changes, none of which alters the maths:

1. Convs run on channels-last (NDHWC) tensors, where oneDNN's direct 3D convolution is 1.2-5x
   faster than on NCDHW for these narrow (3-16 channel) layers.
2. Tanh runs in place on the conv output.
3. Optionally (``compile=True``) the result is compiled with TorchInductor and frozen weights, which
   fuses Tanh into the convolution and the normalisation into generated loops. This costs a one-off
   compilation (tens of seconds) per input shape.

Dropout layers become identities; factorization attention, which does not run at inference, is
untouched. The returned module has the same ``forward`` and outputs as the original in eval mode
(max abs difference ~1e-6 on z-scored outputs).

Measured under heavy load on the shared 2-core machine (see docs/benchmarks.md): the eager changes
alone gain little or nothing; the gain comes with ``compile=True`` (~1.6x over the official ONNX at 1
thread). Folding each instance norm into the next conv (scaled weights minus a boundary-aware
constant) was tried and dropped: exact, but slower, because Inductor can no longer prepack constant
weights for oneDNN.

>>> fast = fast_inference.optimize(models.create("mmrphys_lef"))
>>> out = fast(frames)        # (B, C, T+1, H, W) -> {"bvp": (B, T), "rsp": (B, T)}
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.models.layers import ConvBlock3D

EPS = 1e-5  # InstanceNorm3d's default


class FastConvBlock3D(nn.Module):
    """Channels-last ``Conv3d`` followed by in-place Tanh and non-affine instance norm."""

    def __init__(self, block: ConvBlock3D):
        super().__init__()
        conv = block.conv
        self.stride, self.padding = conv.stride, conv.padding
        self.eps = getattr(block.norm, "eps", EPS)
        self.weight = nn.Parameter(
            conv.weight.detach().contiguous(memory_format=torch.channels_last_3d), requires_grad=False
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv3d(
            x.contiguous(memory_format=torch.channels_last_3d), self.weight, None, self.stride, self.padding
        )
        return F.instance_norm(torch.tanh_(y), eps=self.eps)


class _ChannelsLastConv3d(nn.Module):
    """A plain (bias-free or biased) ``Conv3d`` run channels-last."""

    def __init__(self, conv: nn.Conv3d):
        super().__init__()
        self.conv = conv
        conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last_3d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.contiguous(memory_format=torch.channels_last_3d))


def _swap(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, ConvBlock3D):
            setattr(module, name, FastConvBlock3D(child))
        elif isinstance(child, (nn.Dropout, nn.Dropout2d, nn.Dropout3d)):
            setattr(module, name, nn.Identity())
        elif isinstance(child, nn.Conv3d) and type(module).__name__ != "FactorizationAttention":
            setattr(module, name, _ChannelsLastConv3d(child))
        else:
            _swap(child)


class FastModel(nn.Module):
    """Wraps the optimised copy; runs under ``torch.inference_mode``."""

    def __init__(self, model: nn.Module, compiled=None, source: nn.Module | None = None):
        super().__init__()
        self.model = model
        source = model if source is None else source
        object.__setattr__(self, "_compiled", compiled)  # not a submodule: same weights as ``model``
        for attr in ("tasks", "in_channels", "input_size", "frame_multiple"):
            if hasattr(source, attr):
                setattr(self, attr, getattr(source, attr))

    def forward(self, x: torch.Tensor, labels=None) -> dict[str, torch.Tensor]:
        with torch.inference_mode():
            return (self.model if self._compiled is None else self._compiled)(x)


def optimize(model: nn.Module, compile: bool = False) -> FastModel:
    """An inference-only copy of ``model`` (MMRPhys/FactorizePhys built from ``ConvBlock3D``)."""
    fast = copy.deepcopy(model).eval()
    for p in fast.parameters():
        p.requires_grad_(False)
    source = fast
    _swap(fast)
    compiled = None
    if compile:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True  # constant weights: lets Inductor prepack them for oneDNN
        compiled = torch.compile(fast, dynamic=False)
    return FastModel(fast, compiled, source)
