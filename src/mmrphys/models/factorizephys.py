"""FactorizePhys (NeurIPS 2024): the single-branch predecessor of MMRPhys, with FSAM attention.

Structure, as the official checkpoints' keys and shapes and the published parameter counts
(51,840 Base; 52,168 with FSAM) fix it, for a 72×72 input:

* extractor: ConvBlock3D 3→8 (stride 1, pad 1) → 8→12 (stride 1,2,2) → 12→12 → Dropout →
  12→12 → 12→16 (stride 1,2,2) → 16→16 → Dropout    (72 → 72 → 35 → 33 → 31 → 15 → 13)
* head: 3 × ConvBlock3D 16→16 → Dropout (13 → 11 → 9 → 7), attention point (FSAM on a
  T × 8·7·7 matrix), then 16→12 → 12→8 → bias-free Conv3d 8→1 (7 → 5 → 3 → 1).

Temporal padding is 1 everywhere, so T is free. Unlike MMRPhys, the FSAM residual is optional
(``residual``: the released "FSAM_Res" weights use it) and the official FactorizePhys configs run
FSAM at inference too (``attention_at_inference=True``), which the paper shows makes no difference
to accuracy; here the default is to skip it at inference like MMRPhys.
"""

from __future__ import annotations

import torch
from torch import nn

from mmrphys.errors import ConfigError, WeightsError
from mmrphys.models.attention import (
    FactorizationAttention,
    Head,
    check_attention,
    head_key_rules,
    official_attention,
)
from mmrphys.models.layers import ConvBlock3D, DiffNormalize, check_clip, conv_stack
from mmrphys.models.registry import OfficialKeys, register_model, register_official_keys

_P0, _P1, _S2 = (1, 0, 0), (1, 1, 1), (1, 2, 2)
EXTRACTOR = [
    (8, 1, _P1),
    (12, _S2, _P0),
    (12, 1, _P0),
    "drop",
    (12, 1, _P0),
    (16, _S2, _P0),
    (16, 1, _P0),
    "drop",
]
HEAD = [(16, 1, _P0), (16, 1, _P0), (16, 1, _P0), "drop"]


class FactorizePhys(nn.Module):
    """FactorizePhys network; ``attention`` is ``"none"`` (Base), ``"fsam"``, ``"tsfm"`` or ``"grbf"``."""

    #: Input (:func:`mmrphys.models.input_spec`): the authors' configs train on 160-frame "Raw" chunks
    #: (T+1 = 161 frames); any pixel scale (instance norm of the difference).
    window_frames = 161
    pixel_scale = 1.0

    def __init__(
        self,
        in_channels: int = 3,
        attention: str = "none",
        dropout: float = 0.1,
        md_steps: int = 4,
        md_rank: int = 1,
        residual: bool = True,
        layout: str = "reference",
        attention_at_inference: bool = False,
        tasks=("bvp",),
    ):
        super().__init__()
        check_attention(attention, layout)
        if in_channels not in (1, 3, 4):
            raise ConfigError(f"in_channels must be 1, 3 or 4; got {in_channels}")
        tasks = tuple([tasks] if isinstance(tasks, str) else tasks)
        if tasks != ("bvp",):
            raise ConfigError(f"FactorizePhys estimates BVP only; got tasks={tasks!r}")
        self.tasks, self.in_channels, self.input_size, self.frame_multiple = ("bvp",), in_channels, 72, 1
        self.attention_kind, self.layout = attention, layout
        self.config = dict(
            in_channels=in_channels,
            attention=attention,
            dropout=dropout,
            md_steps=md_steps,
            md_rank=md_rank,
            residual=residual,
            layout=layout,
            attention_at_inference=attention_at_inference,
        )
        self.normalize = DiffNormalize(in_channels)
        self.extractor = conv_stack(in_channels, EXTRACTOR, dropout)
        final = nn.Sequential(
            ConvBlock3D(16, 12, 3, 1, _P0),
            ConvBlock3D(12, 8, 3, 1, _P0),
            nn.Conv3d(8, 1, 3, 1, _P0, bias=False),
        )
        attn = (
            None
            if attention == "none"
            else FactorizationAttention(16, attention, 8, md_rank, md_steps, layout)
        )
        self.bvp_head = Head(
            [conv_stack(16, HEAD, dropout)],
            final,
            attn,
            residual=residual,
            attention_at_inference=attention_at_inference,
        )

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Voxel embedding at the attention point, ``{"bvp": (B, 16, T, 7, 7)}``."""
        check_clip(x, self.in_channels, 1)
        return {"bvp": self.bvp_head.embed([self.extractor(self.normalize(x))])}

    def forward_head(self, features: dict, labels: dict | None = None, aux: dict | None = None) -> dict:
        sub = {} if aux is not None else None
        out = {"bvp": self.bvp_head.forward_from_embedding(features["bvp"], (labels or {}).get("bvp"), sub)}
        if aux is not None:
            aux["bvp"] = sub
        return out

    def forward(self, x: torch.Tensor, labels: dict | None = None, return_aux: bool = False):
        """``x`` (B, C, T+1, H, W) raw frames → ``{"bvp": (B, T)}`` (see :class:`MMRPhys.forward`)."""
        aux = {} if return_aux else None
        out = self.forward_head(self.forward_features(x), labels, aux)
        return (out, aux) if return_aux else out


@register_model(size=72, frames=161)
def factorizephys(**kw) -> FactorizePhys:
    """FactorizePhys, 72×72 (default Base; ``attention="fsam"`` for the paper's FSAM model)."""
    return FactorizePhys(**kw)


# ----------------------------------------------------------------------------- official checkpoints
_EXTRACTOR = "rppg_feature_extractor.FeatureExtractor."
OFFICIAL_RULES = (
    (
        r"^rppg_feature_extractor\.FeatureExtractor\.(\d+)\.conv_block_3d\.0\.weight$",
        r"extractor.\1.conv.weight",
    ),
    (r"^rppg_head\.conv_block\.(\d+)\.conv_block_3d\.0\.weight$", r"bvp_head.convs.0.\1.conv.weight"),
    *head_key_rules("rppg_head", "bvp_head"),
)


def _recognise(state: dict, hints: dict):
    if not any(k.startswith(_EXTRACTOR) for k in state):
        return None
    first = state.get(f"{_EXTRACTOR}0.conv_block_3d.0.weight")
    if first is None:
        raise WeightsError(f"{hints.get('file')}: FactorizePhys-like keys but no first extractor conv")
    attention, note = official_attention(state, hints, "fsam")
    return "factorizephys", {"in_channels": int(first.shape[1]), "attention": attention}, [note]


register_official_keys(OfficialKeys("factorizephys", _recognise, OFFICIAL_RULES))
