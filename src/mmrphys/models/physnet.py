"""PhysNet (Yu, Li & Zhao, BMVC 2019): a 3D-CNN encoder-decoder for rPPG.

The spatio-temporal encoder-decoder of rPPG-Toolbox's ``PhysNet_padding_Encoder_Decoder_MAX``, in the
form the FactorizePhys/MMRPhys authors trained it (``PURE_PhysNet.pth``): the network takes T+1 raw
frames, differences them in time and batch-normalises the input itself (``norm``), which adds 6
parameters to the toolbox's 768,577 for the published 768,583.

Input: (B, C, T+1, H, W) raw frames (any scale), T a multiple of 4; trained at 72x72 (any size runs:
the head pools space adaptively). Output: ``{"bvp": (B, T)}``.
With ``raw_input=False`` the model is the toolbox original: no ``norm`` layer and no differencing, and
it expects T DiffNormalized frames (as the toolbox's PhysNet checkpoints do).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.models.baselines_common import (
    add_modality_norm,
    apply_modality_norm,
    check_clip,
    check_frames,
    check_options,
    time_diff,
)
from mmrphys.models.registry import OfficialKeys, register_model, register_official_keys


def _conv_bn_relu(c_in: int, c_out: int, kernel, padding) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel, stride=1, padding=padding),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
    )


def _temporal_upsample(channels: int) -> nn.Sequential:
    # Transposed conv (4,1,1) with stride 2 doubles the time axis exactly.
    return nn.Sequential(
        nn.ConvTranspose3d(channels, channels, kernel_size=(4, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),
        nn.BatchNorm3d(channels),
        nn.ELU(),
    )


class PhysNet(nn.Module):
    """PhysNet with max-pooling encoder and transposed-conv decoder (T -> T/4 -> T)."""

    #: Input (:func:`mmrphys.models.input_spec`), as the FactorizePhys configs trained the released
    #: weights: 160-frame chunks of "Raw" 72x72 frames, i.e. pixel values 0-255 (the input batch norm's
    #: running variance of frame differences, ~9-18 in PURE_PhysNet.pth, is that of 0-255 frames).
    window_frames = 161
    pixel_scale = 255.0

    def __init__(self, in_channels: int = 3, frames: int = 128, raw_input: bool = True, input_size: int = 72):
        super().__init__()
        self.in_channels = in_channels
        self.input_size = input_size
        self.tasks = ("bvp",)
        self.frame_multiple = 4
        self.frames = frames  # the training length; informative only, any multiple of 4 runs
        self.raw_input = raw_input
        if raw_input:
            add_modality_norm(self, in_channels, dims=3, name="norm")
        self.ConvBlock1 = _conv_bn_relu(in_channels, 16, (1, 5, 5), (0, 2, 2))
        self.ConvBlock2 = _conv_bn_relu(16, 32, 3, 1)
        self.ConvBlock3 = _conv_bn_relu(32, 64, 3, 1)
        for i in range(4, 10):
            setattr(self, f"ConvBlock{i}", _conv_bn_relu(64, 64, 3, 1))
        self.upsample = _temporal_upsample(64)
        self.upsample2 = _temporal_upsample(64)
        self.ConvBlock10 = nn.Conv3d(64, 1, kernel_size=1)

    def forward(self, x: torch.Tensor, labels=None) -> dict[str, torch.Tensor]:
        """(B, C, T+1, H, W) raw frames (or T DiffNormalized frames if ``raw_input=False``) -> bvp (B, T)."""
        check_clip(x, "physnet", self.in_channels)
        if self.raw_input:
            x = apply_modality_norm(self, time_diff(x), self.in_channels, "norm")
        n_frames = x.shape[2]
        check_frames(n_frames, self.frame_multiple, "physnet")

        x = F.max_pool3d(self.ConvBlock1(x), (1, 2, 2))
        x = self.ConvBlock3(self.ConvBlock2(x))
        x = F.max_pool3d(x, 2)  # halves time and space
        x = self.ConvBlock5(self.ConvBlock4(x))
        x = F.max_pool3d(x, 2)
        x = self.ConvBlock7(self.ConvBlock6(x))
        x = F.max_pool3d(x, (1, 2, 2))
        x = self.ConvBlock9(self.ConvBlock8(x))
        x = self.upsample2(self.upsample(x))  # T/4 -> T
        # The toolbox pools to (frames, 1, 1); with T a multiple of 4 that is a spatial mean.
        x = self.ConvBlock10(x.mean(dim=(3, 4), keepdim=True))
        return {"bvp": x.reshape(x.shape[0], n_frames)}


@register_model(size=72, frames=129)
def physnet(
    in_channels: int = 3,
    frames: int = 128,
    raw_input: bool = True,
    input_size: int = 72,
    tasks=None,
    **kwargs,
) -> PhysNet:
    """PhysNet as trained by the FactorizePhys authors (raw T+1 frames in; 768,583 parameters)."""
    check_options("physnet", kwargs, tasks)
    return PhysNet(in_channels=in_channels, frames=frames, raw_input=raw_input, input_size=input_size)


# The authors' PhysNet checkpoints (FactorizePhys release) use our parameter names as they are.
register_official_keys(OfficialKeys(
    "physnet",
    lambda sd, hints: ("physnet", {}, ["PhysNet keys (ConvBlock1..9, upsample)"])
    if any(k.startswith("ConvBlock1.") for k in sd) and any(k.startswith("upsample") for k in sd) else None,
    identity=True,
))
