"""PhysFormer (Yu et al., CVPR 2022): a temporal-difference video transformer for rPPG.

The rPPG-Toolbox configuration (``ViT_ST_ST_Compact3_TDC_gra_sharp``): a 3-stage CNN stem that
shrinks the frame 8x (128 -> 16), a (4,4,4) tube embedding to a 4x4 grid of T/4 steps, 12
transformer blocks (dim 96, 4 heads, feed-forward 144 with a depthwise spatio-temporal conv) whose
queries and keys are temporal centre-difference convolutions (theta 0.7), attention sharpened by
``gra_sharp`` (2.0 at test), then two nearest x2 temporal upsamplings and a 1x1 projection to (B, T).

As the FactorizePhys/MMRPhys authors ran it, the network takes T+1 raw frames, differences them and
batch-normalises the input itself (``input_norm``, 6 parameters): 7,380,871 parameters in all.

Input: (B, C, T+1, 128, 128) raw frames, T a multiple of 4 (160 in the toolbox). Output
``{"bvp": (B, T)}``. With ``raw_input=False`` it is the toolbox original, which takes T DiffNormalized
frames and has no ``input_norm``.
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
from mmrphys.models.registry import register_model


class CDCT(nn.Module):
    """Temporal centre-difference 3x3x3 conv: conv(x) - theta * (sum of the outer temporal taps)(x).

    The difference term is a 1x1x1 conv, so it folds into the kernel's centre tap: one conv, exact.
    """

    def __init__(self, c_in: int, c_out: int, theta: float):
        super().__init__()
        self.conv = nn.Conv3d(c_in, c_out, 3, stride=1, padding=1, bias=False)
        self.theta = theta

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.conv.weight
        if not self.theta:
            return self.conv(x)
        outer = (w[:, :, 0] + w[:, :, 2]).sum(dim=(2, 3))[:, :, None, None, None]
        if torch.onnx.is_in_onnx_export():
            # The exporter needs static conv kernels: keep the reference's two convolutions.
            return self.conv(x) - self.theta * F.conv3d(x, outer)
        return F.conv3d(x, w - self.theta * F.pad(outer, (1, 1, 1, 1, 1, 1)), None, stride=1, padding=1)


class _SelfAttention(nn.Module):
    """Multi-head self-attention whose q/k projections are CDC-T convs over the token grid."""

    def __init__(self, dim: int, num_heads: int, dropout: float, theta: float):
        super().__init__()
        self.proj_q = nn.Sequential(CDCT(dim, dim, theta), nn.BatchNorm3d(dim))
        self.proj_k = nn.Sequential(CDCT(dim, dim, theta), nn.BatchNorm3d(dim))
        self.proj_v = nn.Sequential(nn.Conv3d(dim, dim, 1, bias=False))
        self.n_heads = num_heads
        self.dropout = dropout

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int], gra_sharp: float) -> torch.Tensor:
        b, p, c = x.shape
        vol = x.transpose(1, 2).reshape(b, c, *grid)

        def heads(t: torch.Tensor) -> torch.Tensor:  # (B, C, t, h, w) -> (B, heads, P, C/heads)
            return t.flatten(2).transpose(1, 2).reshape(b, p, self.n_heads, -1).transpose(1, 2)

        q, k, v = heads(self.proj_q(vol)), heads(self.proj_k(vol)), heads(self.proj_v(vol))
        h = F.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0, scale=1.0 / gra_sharp
        )
        return h.transpose(1, 2).reshape(b, p, c)


class _FeedForward(nn.Module):
    """Point-wise expansion, depthwise 3x3x3 spatio-temporal conv, projection (each with BN)."""

    def __init__(self, dim: int, ff_dim: int):
        super().__init__()
        self.fc1 = nn.Sequential(nn.Conv3d(dim, ff_dim, 1, bias=False), nn.BatchNorm3d(ff_dim), nn.ELU())
        self.STConv = nn.Sequential(
            nn.Conv3d(ff_dim, ff_dim, 3, padding=1, groups=ff_dim, bias=False),
            nn.BatchNorm3d(ff_dim),
            nn.ELU(),
        )
        self.fc2 = nn.Sequential(nn.Conv3d(ff_dim, dim, 1, bias=False), nn.BatchNorm3d(dim))

    def forward(self, x: torch.Tensor, grid: tuple[int, int, int]) -> torch.Tensor:
        b, p, c = x.shape
        x = self.fc2(self.STConv(self.fc1(x.transpose(1, 2).reshape(b, c, *grid))))
        return x.flatten(2).transpose(1, 2)


class _Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, ff_dim: int, dropout: float, theta: float):
        super().__init__()
        self.attn = _SelfAttention(dim, num_heads, dropout, theta)
        self.proj = nn.Linear(dim, dim)
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.pwff = _FeedForward(dim, ff_dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.drop = nn.Dropout(dropout)

    def forward(self, x, grid, gra_sharp):
        x = x + self.drop(self.proj(self.attn(self.norm1(x), grid, gra_sharp)))
        return x + self.drop(self.pwff(self.norm2(x), grid))


class _Stage(nn.Module):
    """A run of blocks (the toolbox's ``Transformer_ST_TDC_gra_sharp``, keys ``blocks.<i>``)."""

    def __init__(self, n_blocks: int, *args):
        super().__init__()
        self.blocks = nn.ModuleList(_Block(*args) for _ in range(n_blocks))

    def forward(self, x, grid, gra_sharp):
        for block in self.blocks:
            x = block(x, grid, gra_sharp)
        return x


def _stem(c_in: int, c_out: int, kernel, padding) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(c_in, c_out, kernel, padding=padding),
        nn.BatchNorm3d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool3d((1, 2, 2), stride=(1, 2, 2)),
    )


def _upsample(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Upsample(scale_factor=(2, 1, 1)),
        nn.Conv3d(c_in, c_out, (3, 1, 1), padding=(1, 0, 0)),
        nn.BatchNorm3d(c_out),
        nn.ELU(),
    )


class PhysFormer(nn.Module):
    """PhysFormer; parameter names match the toolbox's / authors' checkpoints."""

    def __init__(
        self,
        in_channels: int = 3,
        input_size: int = 128,
        patch: int = 4,
        dim: int = 96,
        ff_dim: int = 144,
        num_heads: int = 4,
        num_layers: int = 12,
        theta: float = 0.7,
        dropout: float = 0.1,
        gra_sharp: float = 2.0,
        raw_input: bool = True,
    ):
        super().__init__()
        self.in_channels = in_channels
        self.input_size = input_size
        self.tasks = ("bvp",)
        self.frame_multiple = patch
        self.gra_sharp = gra_sharp
        self.raw_input = raw_input
        self.dim = dim
        if raw_input:
            add_modality_norm(self, in_channels, dims=3, name="input_norm")
        self.patch_embedding = nn.Conv3d(dim, dim, kernel_size=patch, stride=patch)
        for i in (1, 2, 3):
            setattr(self, f"transformer{i}", _Stage(num_layers // 3, dim, num_heads, ff_dim, dropout, theta))
        self.Stem0 = _stem(in_channels, dim // 4, (1, 5, 5), (0, 2, 2))
        self.Stem1 = _stem(dim // 4, dim // 2, 3, 1)
        self.Stem2 = _stem(dim // 2, dim, 3, 1)
        self.upsample = _upsample(dim, dim)
        self.upsample2 = _upsample(dim, dim // 2)
        self.ConvBlockLast = nn.Conv1d(dim // 2, 1, 1)
        for m in self.modules():  # the toolbox's init of the linear projections
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.normal_(m.bias, std=1e-6)

    def forward(self, x: torch.Tensor, labels=None) -> dict[str, torch.Tensor]:
        """(B, C, T+1, 128, 128) raw frames (T DiffNormalized frames if ``raw_input=False``) -> bvp (B, T)."""
        check_clip(x, "physformer", self.in_channels)
        if self.raw_input:
            x = apply_modality_norm(self, time_diff(x), self.in_channels, "input_norm")
        check_frames(x.shape[2], self.frame_multiple, "physformer")
        x = self.patch_embedding(self.Stem2(self.Stem1(self.Stem0(x))))
        b, c, *grid = x.shape
        grid = tuple(grid)
        x = x.flatten(2).transpose(1, 2)
        for stage in (self.transformer1, self.transformer2, self.transformer3):
            x = stage(x, grid, self.gra_sharp)
        x = self.upsample2(self.upsample(x.transpose(1, 2).reshape(b, c, *grid)))
        return {"bvp": self.ConvBlockLast(x.mean(dim=(3, 4))).squeeze(1)}


@register_model(size=128, frames=161)
def physformer(
    in_channels: int = 3,
    input_size: int = 128,
    theta: float = 0.7,
    gra_sharp: float = 2.0,
    dropout: float = 0.1,
    raw_input: bool = True,
    tasks=None,
    **kwargs,
) -> PhysFormer:
    """PhysFormer as configured in rPPG-Toolbox (128x128, 160 frames; 7,380,871 parameters)."""
    check_options("physformer", kwargs, tasks)
    return PhysFormer(
        in_channels=in_channels,
        input_size=input_size,
        theta=theta,
        gra_sharp=gra_sharp,
        dropout=dropout,
        raw_input=raw_input,
    )
