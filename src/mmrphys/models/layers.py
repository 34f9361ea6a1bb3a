"""Small building blocks shared by MMRPhys and FactorizePhys.

Every 3D conv of these networks is bias-free and followed by Tanh and a *non-affine* instance norm
(``ConvBlock3D``). The input is a stack of raw frames; the networks take the first temporal
difference themselves and normalise each modality separately (``DiffNormalize``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mmrphys.errors import InputError


def _triple(v) -> tuple[int, int, int]:
    return (v, v, v) if isinstance(v, int) else tuple(v)


class ConvBlock3D(nn.Module):
    """Bias-free ``Conv3d`` → ``Tanh`` → ``InstanceNorm3d`` (affine=False, eps=1e-5)."""

    def __init__(self, in_ch: int, out_ch: int, kernel=3, stride=1, padding=(1, 0, 0)):
        super().__init__()
        self.conv = nn.Conv3d(in_ch, out_ch, _triple(kernel), _triple(stride), _triple(padding), bias=False)
        self.norm = nn.InstanceNorm3d(out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(torch.tanh(self.conv(x)))


def conv_stack(in_ch: int, spec: Sequence, dropout: float) -> nn.Sequential:
    """Build a ``Sequential`` from a spec list.

    Items are ``(out_ch, stride, padding)`` for a :class:`ConvBlock3D` with a 3×3×3 kernel, or the
    string ``"drop"`` for ``Dropout3d``. Positions in the sequence are kept (dropouts included) so
    that module indices line up with the official checkpoints.
    """
    layers: list[nn.Module] = []
    ch = in_ch
    for item in spec:
        if item == "drop":
            layers.append(nn.Dropout3d(dropout))
        else:
            out_ch, stride, pad = item
            layers.append(ConvBlock3D(ch, out_ch, 3, stride, pad))
            ch = out_ch
    return nn.Sequential(*layers)


def stack_out_channels(stack: nn.Sequential, default: int) -> int:
    """Output channels of the last conv block in ``stack`` (``default`` when it has none)."""
    out = default
    for m in stack:
        if isinstance(m, ConvBlock3D):
            out = m.conv.out_channels
    return out


class DiffNormalize(nn.Module):
    """First temporal difference, then instance norm per modality (RGB and thermal separately).

    ``in_channels`` is 3 (RGB), 1 (thermal) or 4 (RGB + thermal, thermal last). An input with 4
    channels is also accepted by a 3- or 1-channel model, which then uses the RGB channels or the
    last (thermal) channel, as the reference code does for RGBT recordings.
    """

    def __init__(self, in_channels: int):
        super().__init__()
        if in_channels not in (1, 3, 4):
            raise ValueError(f"in_channels must be 1, 3 or 4, got {in_channels}")
        self.in_channels = in_channels

    def used_channels(self, x: torch.Tensor) -> torch.Tensor:
        """The channels of ``x`` this model reads (an RGB or thermal model takes its part of an RGBT
        clip); :class:`InputError` for a channel count it cannot use."""
        c = x.shape[1]
        if c == self.in_channels:
            return x
        if c == 4 and self.in_channels in (1, 3):
            return x[:, :3] if self.in_channels == 3 else x[:, 3:]
        raise InputError(
            f"input has {c} channels but the model expects {self.in_channels} "
            "(3 = RGB, 1 = thermal, 4 = RGB + thermal)"
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.used_channels(x)
        d = x[:, :, 1:] - x[:, :, :-1]
        if self.in_channels == 4:
            return torch.cat([_instance_norm(d[:, :3]), _instance_norm(d[:, 3:])], dim=1)
        return _instance_norm(d)


def _instance_norm(x: torch.Tensor) -> torch.Tensor:
    return nn.functional.instance_norm(x, eps=1e-5)


def check_clip(x: torch.Tensor, in_channels: int, frame_multiple: int, input_size: int | None = None) -> int:
    """Validate a (B, C, T+1, H, W) clip and return T; raise :class:`InputError` otherwise."""
    if x.dim() != 5:
        raise InputError(f"expected a (B, C, T+1, H, W) tensor, got shape {tuple(x.shape)}")
    frames = int(x.shape[2])
    t = frames - 1
    if t < 1:
        raise InputError(f"need at least 2 frames (T+1), got {frames}")
    if frame_multiple > 1 and t % frame_multiple:
        lo = (t // frame_multiple) * frame_multiple
        raise InputError(
            f"T = frames - 1 = {t} must be a multiple of {frame_multiple} when RSP is estimated "
            f"(the RSP branch downsamples time by 4); use {lo + 1} or {lo + frame_multiple + 1} frames"
        )
    if input_size is not None and (x.shape[3] != input_size or x.shape[4] != input_size):
        raise InputError(
            f"frames are {x.shape[3]}x{x.shape[4]} but this model takes {input_size}x{input_size}"
        )
    return t
