"""MMRPhys: a dual-branch 3D-CNN for rPPG (BVP) and breathing (RSP), sizes L/M/S, fusion EF/NF/LF.

Each branch is a feature extractor followed by a head (MMRPHYS_REFERENCE §1). Every conv is a
bias-free 3×3×3 :class:`~mmrphys.models.layers.ConvBlock3D` (Tanh, then non-affine instance norm);
widths are BVP [8, 12, 16] and RSP [16, 16, 16]. The RSP branch halves time twice and restores it
with nearest ×4 upsampling before its last conv, so T must be a multiple of 4 when RSP is present.

Input (B, C, T+1, H, W) raw frames; the model takes the first difference and normalises RGB and
thermal separately; output ``{"bvp": (B, T), "rsp": (B, T)}`` for the requested tasks.

Fusion: ``EF`` all channels to both branches; ``NF`` (4 channels) RGB → BVP branch, thermal → RSP
branch; ``LF`` (4 channels) separate RGB and thermal extractors and head conv stacks per branch,
concatenated (RGB first) before the attention point.

Attention (``attention=``) sits in each head after the head's conv stack: ``"none"`` (Base),
``"fsam"``, ``"tsfm"`` or ``"grbf"`` (see :mod:`mmrphys.models.attention`). It is built only when
requested and runs only in training mode (unless ``attention_at_inference=True`` for the label-free
kinds), so eval outputs equal the Base path and exported graphs contain no trace of it.
"Parameters at inference" (:func:`mmrphys.models.count_parameters`) exclude these modules.
"""

from __future__ import annotations

from collections.abc import Sequence

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
from mmrphys.models.registry import OfficialKeys, name_hint, register_model, register_official_keys

TASKS = ("bvp", "rsp")
_P0 = (1, 0, 0)  # temporal "same", spatially valid
_P1 = (1, 1, 1)  # "same" in all three axes
_S2 = (1, 2, 2)  # spatial stride 2
_T2 = (2, 2, 2)  # temporal and spatial stride 2
_T2S1 = (2, 1, 1)  # temporal stride 2 only

# Per-size layer specs: (out_channels, stride, padding) or "drop". Layer positions (dropouts
# included) follow the official modules so that checkpoint indices map one to one.
SIZES: dict[str, dict] = {
    "L": {
        "input_size": 72,
        "bvp_extractor": [(8, _S2, _P0), (12, 1, _P0), "drop", (16, 1, _P0)],
        "bvp_head": [(16, _S2, _P0), (16, 1, _P0), (16, 1, _P0), "drop"],
        "bvp_final_stride": _S2,
        "rsp_extractor": [(16, 1, _P0), (16, _T2, _P0), (16, 1, _P0), "drop"],
        "rsp_head": [(16, 1, _P0), (16, _T2, _P0), (16, 1, _P0), "drop", (16, 1, _P0)],
    },
    "M": {
        "input_size": 36,
        "bvp_extractor": [(8, 1, _P1), (12, 1, _P0), "drop", (16, 1, _P0)],
        "bvp_head": [(16, _S2, _P0), (16, 1, _P0), (16, 1, _P0), "drop"],
        "bvp_final_stride": _S2,
        "rsp_extractor": [(16, 1, _P1), (16, _T2S1, _P0), (16, 1, _P0), "drop"],
        "rsp_head": [(16, 1, _P0), (16, _T2, _P0), (16, 1, _P0), "drop", (16, 1, _P0)],
    },
    "S": {
        "input_size": 9,
        "bvp_extractor": [(8, 1, _P1), (12, 1, _P1), "drop", (16, 1, _P1)],
        "bvp_head": [(16, 1, _P1), (16, 1, _P1), (16, 1, _P0), "drop"],
        "bvp_final_stride": 1,
        "rsp_extractor": [(16, 1, _P1), (16, _T2S1, _P1), (16, 1, _P1), "drop"],
        "rsp_head": [(16, 1, _P1), (16, _T2S1, _P1), (16, 1, _P1), "drop", (16, 1, _P1)],
    },
}
FUSIONS = ("EF", "NF", "LF")
RSP_ATTENTION_RANK = 4  # the reference forces rank 4 in the RSP head


def _bvp_final(in_ch: int, stride) -> nn.Sequential:
    mid = 12 if in_ch == 16 else 16  # LF heads take 32 channels and widen the first final conv
    return nn.Sequential(
        ConvBlock3D(in_ch, mid, 3, stride, _P0),
        ConvBlock3D(mid, 8, 3, 1, _P0),
        nn.Conv3d(8, 1, 3, 1, _P0, bias=False),
    )


def _rsp_final(in_ch: int) -> nn.Sequential:
    return nn.Sequential(
        ConvBlock3D(in_ch, 16, 3, _S2, _P0),
        nn.Upsample(scale_factor=(4, 1, 1), mode="nearest"),
        nn.Conv3d(16, 1, (3, 4, 4), 1, _P0, bias=False),
    )


class MMRPhys(nn.Module):
    """MMRPhys network. See the module docstring; build named variants with ``models.create``."""

    #: Input, as data (see :func:`mmrphys.models.input_spec`): windows of T+1 = 181 frames (the
    #: released multi-task weights' "x180"), any pixel scale (instance norm of the difference).
    window_frames = 181
    pixel_scale = 1.0

    def __init__(
        self,
        size: str = "L",
        fusion: str = "EF",
        tasks: Sequence[str] = TASKS,
        in_channels: int = 3,
        attention: str = "none",
        dropout: float = 0.1,
        md_steps: int = 4,
        md_rank: int = 1,
        layout: str = "reference",
        attention_at_inference: bool = False,
    ):
        super().__init__()
        size, fusion = size.upper(), fusion.upper()
        tasks = tuple(t.lower() for t in ([tasks] if isinstance(tasks, str) else tasks))
        if size not in SIZES:
            raise ConfigError(f"size must be one of L, M, S; got {size!r}")
        if fusion not in FUSIONS:
            raise ConfigError(f"fusion must be one of EF, NF, LF; got {fusion!r}")
        if not tasks or any(t not in TASKS for t in tasks) or len(set(tasks)) != len(tasks):
            raise ConfigError(f"tasks must be a non-empty subset of {TASKS}; got {tasks!r}")
        if in_channels not in (1, 3, 4):
            raise ConfigError(f"in_channels must be 1 (thermal), 3 (RGB) or 4 (RGBT); got {in_channels}")
        if fusion != "EF" and in_channels != 4:
            raise ConfigError(f"fusion {fusion} needs RGB + thermal input (in_channels=4), got {in_channels}")
        check_attention(attention, layout)
        spec = SIZES[size]
        self.size, self.fusion, self.tasks = size, fusion, tuple(t for t in TASKS if t in tasks)
        self.in_channels, self.attention_kind, self.layout = in_channels, attention, layout
        self.input_size = spec["input_size"]
        self.frame_multiple = 4 if "rsp" in self.tasks else 1
        self.config = dict(
            size=size,
            fusion=fusion,
            tasks=self.tasks,
            in_channels=in_channels,
            attention=attention,
            dropout=dropout,
            md_steps=md_steps,
            md_rank=md_rank,
            layout=layout,
            attention_at_inference=attention_at_inference,
        )
        self.normalize = DiffNormalize(in_channels)
        # Input streams per branch: (channel slice, channels).
        if fusion == "EF":
            streams = {"bvp": [slice(None)], "rsp": [slice(None)]}
        elif fusion == "NF":
            streams = {"bvp": [slice(0, 3)], "rsp": [slice(3, 4)]}
        else:
            streams = {"bvp": [slice(0, 3), slice(3, 4)], "rsp": [slice(0, 3), slice(3, 4)]}
        self._streams = streams

        def attn(channels: int, rank: int):
            if attention == "none":
                return None
            return FactorizationAttention(channels, attention, 8, rank, md_steps, layout)

        def n_in(sl: slice) -> int:
            return len(range(in_channels)[sl])

        if "bvp" in self.tasks:
            self.bvp_extractors = nn.ModuleList(
                conv_stack(n_in(s), spec["bvp_extractor"], dropout) for s in streams["bvp"]
            )
            width = 16 * len(streams["bvp"])
            self.bvp_head = Head(
                [conv_stack(16, spec["bvp_head"], dropout) for _ in streams["bvp"]],
                _bvp_final(width, spec["bvp_final_stride"]),
                attn(width, md_rank),
                attention_at_inference=attention_at_inference,
            )
        if "rsp" in self.tasks:
            self.rsp_extractors = nn.ModuleList(
                conv_stack(n_in(s), spec["rsp_extractor"], dropout) for s in streams["rsp"]
            )
            width = 16 * len(streams["rsp"])
            self.rsp_head = Head(
                [conv_stack(16, spec["rsp_head"], dropout) for _ in streams["rsp"]],
                _rsp_final(width),
                attn(width, RSP_ATTENTION_RANK),
                label_pool=True,
                attention_at_inference=attention_at_inference,
            )

    def keep_tasks(self, tasks: Sequence[str]) -> MMRPhys:
        """Remove the branches of every task not in ``tasks``, in place, and return the model.

        For inference of some outputs only (the main job reads an RGB model's pulse and not its RSP
        output): each task's branch reads the normalised input on its own, so the kept outputs are
        those of the whole model. The input contract (``frame_multiple``, ``config``) is unchanged.
        """
        tasks = tuple(t.lower() for t in ([tasks] if isinstance(tasks, str) else tasks))
        if not tasks or any(t not in self.tasks for t in tasks):
            raise ConfigError(f"tasks must be a non-empty subset of this model's {self.tasks}; got {tasks!r}")
        for task in self.tasks:
            if task not in tasks:
                delattr(self, f"{task}_extractors")
                delattr(self, f"{task}_head")
        self.tasks = tuple(t for t in self.tasks if t in tasks)
        return self

    def heads(self) -> dict[str, Head]:
        """The heads of the built tasks, by task name."""
        return {t: getattr(self, f"{t}_head") for t in self.tasks}

    def forward_features(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Voxel embedding of each branch at the attention point (B, C, T', H', W'), no hooks needed."""
        check_clip(x, self.in_channels, self.frame_multiple)
        z = self.normalize(x)
        feats = {}
        for task, head in self.heads().items():
            extractors = getattr(self, f"{task}_extractors")
            feats[task] = head.embed([ext(z[:, sl]) for ext, sl in zip(extractors, self._streams[task])])
        return feats

    def forward_head(
        self, features: dict[str, torch.Tensor], labels: dict | None = None, aux: dict | None = None
    ):
        """Heads from :meth:`forward_features` embeddings to ``{"bvp": (B, T), "rsp": (B, T)}``."""
        out = {}
        for task, head in self.heads().items():
            label = labels.get(task) if labels else None
            sub = {} if aux is not None else None
            out[task] = head.forward_from_embedding(features[task], label, sub)
            if aux is not None:
                aux[task] = sub
        return out

    def forward(self, x: torch.Tensor, labels: dict | None = None, return_aux: bool = False):
        """``x`` (B, C, T+1, H, W) raw frames → ``{"bvp": (B, T), "rsp": (B, T)}``.

        ``labels`` ({"bvp": (B, T), "rsp": (B, T)}) feed TSFM in training mode. With
        ``return_aux=True`` also returns per-task embeddings, attention maps, the factorized
        matrix ``V̂`` and the factorization error (``None`` when the attention did not run).
        """
        aux = {} if return_aux else None
        out = self.forward_head(self.forward_features(x), labels, aux)
        return (out, aux) if return_aux else out


def attention_modules(model: nn.Module) -> list[nn.Module]:
    """The factorization attention modules in ``model``."""
    return [m for m in model.modules() if isinstance(m, FactorizationAttention)]


def _variant(size: str, fusion: str, **kw) -> MMRPhys:
    if fusion != "EF":
        kw.setdefault("in_channels", 4)
    return MMRPhys(size=size, fusion=fusion, **kw)


@register_model(size=72, frames=181)
def mmrphys_lef(**kw) -> MMRPhys:
    """MMRPhys-L (72×72), early fusion."""
    return _variant("L", "EF", **kw)


@register_model(size=36, frames=181)
def mmrphys_mef(**kw) -> MMRPhys:
    """MMRPhys-M (36×36), early fusion."""
    return _variant("M", "EF", **kw)


@register_model(size=9, frames=181)
def mmrphys_sef(**kw) -> MMRPhys:
    """MMRPhys-S (9×9), early fusion."""
    return _variant("S", "EF", **kw)


@register_model(size=72, frames=181, channels=4)
def mmrphys_lnf(**kw) -> MMRPhys:
    """MMRPhys-L, no fusion: RGB → BVP branch, thermal → RSP branch (4 channels)."""
    return _variant("L", "NF", **kw)


@register_model(size=36, frames=181, channels=4)
def mmrphys_mnf(**kw) -> MMRPhys:
    """MMRPhys-M, no fusion (4 channels)."""
    return _variant("M", "NF", **kw)


@register_model(size=9, frames=181, channels=4)
def mmrphys_snf(**kw) -> MMRPhys:
    """MMRPhys-S, no fusion (4 channels)."""
    return _variant("S", "NF", **kw)


@register_model(size=72, frames=181, channels=4)
def mmrphys_llf(**kw) -> MMRPhys:
    """MMRPhys-L, late fusion: separate RGB and thermal extractors, concatenated (4 channels)."""
    return _variant("L", "LF", **kw)


@register_model(size=36, frames=181, channels=4)
def mmrphys_mlf(**kw) -> MMRPhys:
    """MMRPhys-M, late fusion (4 channels)."""
    return _variant("M", "LF", **kw)


@register_model(size=9, frames=181, channels=4)
def mmrphys_slf(**kw) -> MMRPhys:
    """MMRPhys-S, late fusion (4 channels)."""
    return _variant("S", "LF", **kw)


# ----------------------------------------------------------------------------- official checkpoints
# The authors' key layout (multi-task code; LNF/LLF files) onto ours: a single or RGB stream is index
# 0 of each ModuleList, a thermal stream index 1.
_CONV = r"conv_block_3d\.0\.weight"
OFFICIAL_RULES = (
    (
        rf"^(?:rgb_)?(bvp|rsp)_feature_extractor\.(?:rgb_)?\1_feature_extractor\.(\d+)\.{_CONV}$",
        r"\1_extractors.0.\2.conv.weight",
    ),
    (
        rf"^thermal_(bvp|rsp)_feature_extractor\.thermal_\1_feature_extractor\.(\d+)\.{_CONV}$",
        r"\1_extractors.1.\2.conv.weight",
    ),
    (rf"^rppg_head\.conv_layer(?:_rgb)?\.(\d+)\.{_CONV}$", r"bvp_head.convs.0.\1.conv.weight"),
    (rf"^rppg_head\.conv_layer_thermal\.(\d+)\.{_CONV}$", r"bvp_head.convs.1.\1.conv.weight"),
    (rf"^rBr_head\.conv_block(?:_rgb)?\.(\d+)\.{_CONV}$", r"rsp_head.convs.0.\1.conv.weight"),
    (rf"^rBr_head\.conv_block_thermal\.(\d+)\.{_CONV}$", r"rsp_head.convs.1.\1.conv.weight"),
    *head_key_rules("rppg_head", "bvp_head"),
    *head_key_rules("rBr_head", "rsp_head"),
)
# The earlier single-task BVP code (PURE/iBVP "MMRPhys_SFSAM_Label" files): its last two extractor
# blocks and one head block are the first three blocks of today's head.
OLD_BVP_MOVES = (
    ("bvp_feature_extractor.bvp_feature_extractor.4.conv_block_3d.0.", "bvp_head.convs.0.0.conv."),
    ("bvp_feature_extractor.bvp_feature_extractor.5.conv_block_3d.0.", "bvp_head.convs.0.1.conv."),
    ("rppg_head.conv_layer.1.conv_block_3d.0.", "bvp_head.convs.0.2.conv."),
)
# The LNF/LLF files also hold an experimental blood-pressure head that is not part of the paper.
OFFICIAL_DROP = {"rBP_head.": "experimental blood-pressure head (not part of the paper)"}
_PREFIXES = tuple(f"{s}{t}_feature_extractor." for s in ("", "rgb_", "thermal_") for t in TASKS)
_FIRST = "{t}_feature_extractor.{t}_feature_extractor.0.conv_block_3d.0.weight"


def _recognise(state: dict, hints: dict, old: bool):
    keys = set(state)
    if not any(k.startswith(_PREFIXES) for k in keys) or (OLD_BVP_MOVES[0][0] + "weight" in keys) != old:
        return None
    heads = (("bvp", "rppg_head."), ("rsp", "rBr_head."))
    tasks = tuple(t for t, head in heads if any(k.startswith(head) for k in keys))
    if any(k.startswith(("rgb_", "thermal_")) for k in keys):
        fusion, in_ch = "LF", 4
    else:
        cin = {t: int(state[_FIRST.format(t=t)].shape[1]) for t in tasks if _FIRST.format(t=t) in state}
        if cin.get("bvp") == 3 and cin.get("rsp") == 1:
            fusion, in_ch = "NF", 4
        elif len(set(cin.values())) == 1:
            fusion, in_ch = "EF", next(iter(cin.values()))
        else:
            raise WeightsError(f"{hints.get('file')}: branch input channels {cin} match no MMRPhys fusion")
    if hints.get("size"):
        size, how = hints["size"].upper(), "argument"
    else:
        hinted = name_hint(hints.get("file", ""), {"S": r"MMRPhysS|x9(?!\d)", "M": r"MMRPhysM|x36(?!\d)",
                                                    "L": r"MMRPhysL|x72(?!\d)"})
        size, how = (hinted, "file name") if hinted else ("L", "default; weights do not encode it")
    attention, note = official_attention(keys, hints, "tsfm")
    notes = [f"size: {size} ({how})", note] + (["key layout: earlier single-task BVP code"] if old else [])
    kwargs = {"tasks": tasks, "in_channels": in_ch, "attention": attention}
    return f"mmrphys_{size.lower()}{fusion.lower()}", kwargs, notes


register_official_keys(OfficialKeys("mmrphys_old", lambda sd, h: _recognise(sd, h, True), OFFICIAL_RULES,
                                    OLD_BVP_MOVES, OFFICIAL_DROP))
register_official_keys(OfficialKeys("mmrphys", lambda sd, h: _recognise(sd, h, False), OFFICIAL_RULES,
                                    drop=OFFICIAL_DROP))
