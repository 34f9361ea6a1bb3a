"""EfficientPhys (Liu et al., WACV 2023) with its SASN attention, and the FSAM variant of FactorizePhys.

A 2D-CNN over frame differences with temporal shift modules (TSM, segments of ``frame_depth``
frames): the network differences the T+1 input frames and batch-normalises them itself, so it takes
raw (or Standardized) frames. Two attentions, as compared in the FactorizePhys paper:

* ``attention="sasn"`` — rPPG-Toolbox's ``EfficientPhys``: self-attention shifted normalisation
  masks (a sigmoid 1x1 conv, normalised to mean 0.5 over each frame) after conv2 and conv4;
  2,163,081 parameters at 72x72 (dense layer 16384 -> 128).
* ``attention="fsam"`` — FactorizePhys's ``EfficientPhys_FSAM``: one more average pooling and the
  FSAM factorization (NMF over a segment's frames x features) on the last conv features, used only in
  training (the published inference skips it); 140,655 parameters at 72x72 (dense 576 -> 128).
* ``attention="none"`` — the FSAM variant's trunk without the factorization (its inference graph).

The factorization reuses :func:`mmrphys.models.attention.nmf` and :func:`~mmrphys.models.attention.excite`
on 2D features: each TSM segment is one (frame_depth x C*H*W) matrix, time-major because frames are
rows of the batch axis. The reference resets its segment length to 1 after the first call
(``self.S = 1`` in ``FSAM.py``), so from the second training batch on it factorizes single frames;
we keep the segment length (the evident intent) - the released inference graph is unaffected.

Input: (B, C, T+1, H, W) raw frames, T a multiple of ``frame_depth`` (20). Output ``{"bvp": (B, T)}``.
The toolbox runs the whole batch as one stream of frames and differences across chunk boundaries;
here each clip is differenced on its own (identical for B = 1).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mmrphys.errors import ConfigError
from mmrphys.models.attention import excite, nmf
from mmrphys.models.baselines_common import (
    add_modality_norm,
    apply_modality_norm,
    check_clip,
    check_frames,
    check_options,
    temporal_shift,
    time_diff,
)
from mmrphys.models.registry import OfficialKeys, register_model, register_official_keys

ATTENTIONS = ("sasn", "fsam", "none")


class _PostConv(nn.Module):
    """1x1 conv + ReLU, named like the reference's ``ConvBNReLU`` (its weight is ``conv.weight``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x):
        return F.relu(self.conv(x))


class FrameFactorization(nn.Module):
    """FSAM on 2D frame features (B*T, C, H, W): NMF of each segment's (frames x C*H*W) matrix.

    Parameter names follow ``FeaturesFactorizationModule(dim="2D_TSM")`` of the reference.
    """

    def __init__(self, channels: int, segment: int, align_channels: int = 8, rank: int = 1, steps: int = 4):
        super().__init__()
        self.segment, self.rank, self.steps = segment, rank, steps
        self.pre_conv_block = nn.Sequential(nn.Conv2d(channels, align_channels, 1), nn.ReLU())
        self.post_conv_block = nn.Sequential(
            _PostConv(align_channels), nn.Conv2d(align_channels, channels, 1, bias=False)
        )
        for m in self.modules():  # the reference's fan-out He init of these convs
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(
                    m.weight, 0.0, math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels))
                )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-negative ``x`` -> (attention map like ``x``, Frobenius error of the factorization)."""
        v = self.pre_conv_block(x)
        nt, c, h, w = v.shape
        v_hat = nmf(v.reshape(nt // self.segment, self.segment, c * h * w), self.rank, self.steps)
        v_hat = v_hat.reshape(nt, c, h, w)
        return self.post_conv_block(v_hat), torch.linalg.vector_norm(v - v_hat)


def _dense_inputs(size: int, attention: str, channels: int) -> int:
    s = (size - 2) // 2  # conv1 keeps the size, conv2 (valid) loses 2, then pool
    if attention == "sasn":
        s = (s - 2) // 2  # conv3 keeps, conv4 loses 2, pool
    else:
        s = (((s // 2) - 2) // 2) // 2  # pool after conv3, conv4 loses 2, pool, pool
    if s < 1:
        raise ConfigError(f"efficientphys: input size {size} is too small")
    return channels * s * s


class EfficientPhys(nn.Module):
    """EfficientPhys; parameter names match the toolbox's and FactorizePhys's checkpoints."""

    #: Input (:func:`mmrphys.models.input_spec`), as the FactorizePhys configs trained the released
    #: weights: 160-frame chunks (8 TSM segments of 20) of "Raw" 0-255 frames (input batch norm
    #: running variance ~15-31 in PURE_EfficientPhys_FSAM.pth).
    window_frames = 161
    pixel_scale = 255.0

    def __init__(
        self,
        in_channels: int = 3,
        input_size: int = 72,
        attention: str = "sasn",
        frame_depth: int = 20,
        nb_filters1: int = 32,
        nb_filters2: int = 64,
        nb_dense: int = 128,
        dropout1: float = 0.25,
        dropout2: float = 0.5,
        fsam_at_inference: bool = False,
        fsam_residual: bool = False,
    ):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ConfigError(
                f"efficientphys: attention must be one of {', '.join(ATTENTIONS)}; got {attention!r}"
            )
        self.in_channels = in_channels
        self.input_size = input_size
        self.tasks = ("bvp",)
        self.frame_depth = frame_depth
        self.frame_multiple = frame_depth
        self.attention = attention
        self.fsam_at_inference = fsam_at_inference
        self.fsam_residual = fsam_residual
        f1, f2 = nb_filters1, nb_filters2
        self.motion_conv1 = nn.Conv2d(in_channels, f1, 3, padding=1)
        self.motion_conv2 = nn.Conv2d(f1, f1, 3)
        self.motion_conv3 = nn.Conv2d(f1, f2, 3, padding=1)
        self.motion_conv4 = nn.Conv2d(f2, f2, 3)
        if attention == "sasn":
            self.apperance_att_conv1 = nn.Conv2d(f1, 1, 1)  # (sic) the reference's spelling
            self.apperance_att_conv2 = nn.Conv2d(f2, 1, 1)
        elif attention == "fsam":
            self.feature_factorizer = FrameFactorization(f2, frame_depth, align_channels=f2 // 8)
        self.dropout_1, self.dropout_2, self.dropout_3 = (
            nn.Dropout(dropout1),
            nn.Dropout(dropout1),
            nn.Dropout(dropout1),
        )
        self.dropout_4 = nn.Dropout(dropout2)
        self.final_dense_1 = nn.Linear(_dense_inputs(input_size, attention, f2), nb_dense)
        self.final_dense_2 = nn.Linear(nb_dense, 1)
        add_modality_norm(self, in_channels, dims=2, name="batch_norm")

    @staticmethod
    def _sasn_mask(logits: torch.Tensor) -> torch.Tensor:
        # Sigmoid mask rescaled so that each frame's mask sums to H*W/2 (mean 0.5).
        g = torch.sigmoid(logits)
        return g / g.sum(dim=(2, 3), keepdim=True) * (g.shape[2] * g.shape[3] * 0.5)

    def _shift(self, x: torch.Tensor) -> torch.Tensor:
        return temporal_shift(x, self.frame_depth)

    def unused_at_inference(self) -> list[nn.Module]:
        """The FSAM factorizer when it runs in training only (left out of inference counts)."""
        return [self.feature_factorizer] if self.attention == "fsam" and not self.fsam_at_inference else []

    def forward(self, x: torch.Tensor, labels=None) -> dict[str, torch.Tensor]:
        """(B, C, T+1, H, W) raw frames -> bvp (B, T)."""
        check_clip(x, "efficientphys", self.in_channels)
        b, c, t1, h, w = x.shape
        t = t1 - 1
        check_frames(t, self.frame_depth, "efficientphys")
        frames = time_diff(x).transpose(1, 2).reshape(b * t, c, h, w)
        d = apply_modality_norm(self, frames, self.in_channels, "batch_norm")

        d = torch.tanh(self.motion_conv1(self._shift(d)))
        d = torch.tanh(self.motion_conv2(self._shift(d)))
        if self.attention == "sasn":
            d = d * self._sasn_mask(self.apperance_att_conv1(d))
        d = self.dropout_1(F.avg_pool2d(d, 2))
        d = torch.tanh(self.motion_conv3(self._shift(d)))
        if self.attention != "sasn":
            d = self.dropout_2(F.avg_pool2d(d, 2))
        d = torch.tanh(self.motion_conv4(self._shift(d)))
        if self.attention == "sasn":
            d = d * self._sasn_mask(self.apperance_att_conv2(d))
        else:
            d = self.dropout_3(F.avg_pool2d(d, 2))
            if self.attention == "fsam" and (self.training or self.fsam_at_inference):
                att, _ = self.feature_factorizer(d - d.min())
                d = excite(d, att, residual=self.fsam_residual)
        d = self.dropout_3(F.avg_pool2d(d, 2))
        d = self.dropout_4(torch.tanh(self.final_dense_1(d.flatten(1))))
        return {"bvp": self.final_dense_2(d).view(b, t)}


@register_model(size=72, frames=181)
def efficientphys(
    in_channels: int = 3,
    input_size: int = 72,
    attention: str = "sasn",
    frame_depth: int = 20,
    tasks=None,
    **kwargs,
) -> EfficientPhys:
    """EfficientPhys: ``attention="sasn"`` (2,163,081 params), ``"fsam"`` (140,655) or ``"none"``."""
    check_options("efficientphys", kwargs, tasks)
    return EfficientPhys(
        in_channels=in_channels, input_size=input_size, attention=attention, frame_depth=frame_depth
    )


def _recognise(state: dict, hints: dict):
    if not any(k.startswith("motion_conv1.") for k in state):
        return None
    fsam = any(k.startswith("feature_factorizer.") for k in state)
    note = "EfficientPhys keys (motion_conv*)" + (" with FSAM" if fsam else "")
    return "efficientphys", {"attention": "fsam"} if fsam else {}, [note]


# The authors' EfficientPhys checkpoints (toolbox and FactorizePhys release) use our parameter names.
register_official_keys(OfficialKeys("efficientphys", _recognise, identity=True))
