"""Weights outside the modules: the official-checkpoint converter and our own weights format.

* :func:`load_official` reads an authors' ``.pth`` (MMRPhys, FactorizePhys, PhysNet, EfficientPhys),
  recognises the architecture from its keys and shapes, maps the keys onto our modules and loads
  them strictly: any unexpected, missing or mis-shaped tensor raises :class:`WeightsError`. The
  only keys dropped are the LNF/LLF experimental blood-pressure head ``rBP_head.*`` (with a warning
  naming it), which is not part of the paper.
* :func:`save_weights` / :func:`load_model` handle our format, a dict
  ``{"format": "mmrphys-weights", "model": name, "kwargs": {...}, "state_dict": {...}, "meta": {...}}``.

What keys cannot tell. Sizes L/M/S have identical weight shapes, and FSAM/TSFM/GRBF attention
weights are identical too; for these two facts only, ``load_official`` takes ``size=`` /
``attention=`` arguments and otherwise reads a hint from the file name (``MMRPhysSEF``, ``x9``,
``SFSAM_Label``, ``RBF``, ...), falling back to L and TSFM (MMRPhys) or FSAM (FactorizePhys).
Neither choice changes the eval-mode network of a given size.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from mmrphys.errors import ConfigError, WeightsError

FORMAT = "mmrphys-weights"

# Official MMRPhys key layout (multi-task code, and the LNF/LLF files) → ours.
_MMRPHYS_RULES = [
    (
        r"^(rgb_|thermal_)?(bvp|rsp)_feature_extractor\.\1?\2_feature_extractor\.(\d+)\.conv_block_3d\.0\.weight$",
        lambda m: f"{m[2]}_extractors.{1 if m[1] == 'thermal_' else 0}.{m[3]}.conv.weight",
    ),
    (
        r"^rppg_head\.conv_layer(_rgb|_thermal)?\.(\d+)\.conv_block_3d\.0\.weight$",
        lambda m: f"bvp_head.convs.{1 if m[1] == '_thermal' else 0}.{m[2]}.conv.weight",
    ),
    (
        r"^rBr_head\.conv_block(_rgb|_thermal)?\.(\d+)\.conv_block_3d\.0\.weight$",
        lambda m: f"rsp_head.convs.{1 if m[1] == '_thermal' else 0}.{m[2]}.conv.weight",
    ),
]
# Shared by MMRPhys and FactorizePhys heads: attention and final layers.
_HEAD_RULES = [
    (
        r"^(rppg|rBr)_head\.fsam\.pre_conv_block\.0\.(weight|bias)$",
        lambda m: f"{_HEAD[m[1]]}.attention.pre.{m[2]}",
    ),
    (
        r"^(rppg|rBr)_head\.fsam\.post_conv_block\.0\.conv\.weight$",
        lambda m: f"{_HEAD[m[1]]}.attention.post1.weight",
    ),
    (
        r"^(rppg|rBr)_head\.fsam\.post_conv_block\.1\.weight$",
        lambda m: f"{_HEAD[m[1]]}.attention.post2.weight",
    ),
    (
        r"^(rppg|rBr)_head\.final_layer\.(\d+)\.conv_block_3d\.0\.weight$",
        lambda m: f"{_HEAD[m[1]]}.final.{m[2]}.conv.weight",
    ),
    (r"^(rppg|rBr)_head\.final_layer\.(\d+)\.weight$", lambda m: f"{_HEAD[m[1]]}.final.{m[2]}.weight"),
]
_HEAD = {"rppg": "bvp_head", "rBr": "rsp_head"}
# The earlier single-task BVP layout (PURE/iBVP/UBFC "MMRPhys_SFSAM_Label" files): the last two
# extractor blocks and one head block are the first three blocks of today's head.
_OLD_BVP_MOVES = {
    "bvp_feature_extractor.bvp_feature_extractor.4.": "bvp_head.convs.0.0.",
    "bvp_feature_extractor.bvp_feature_extractor.5.": "bvp_head.convs.0.1.",
    "rppg_head.conv_layer.1.": "bvp_head.convs.0.2.",
}
_FACTORIZEPHYS_RULES = [
    (
        r"^rppg_feature_extractor\.FeatureExtractor\.(\d+)\.conv_block_3d\.0\.weight$",
        lambda m: f"extractor.{m[1]}.conv.weight",
    ),
    (
        r"^rppg_head\.conv_block\.(\d+)\.conv_block_3d\.0\.weight$",
        lambda m: f"bvp_head.convs.0.{m[1]}.conv.weight",
    ),
]
_DROPPED_PREFIXES = {"rBP_head.": "experimental blood-pressure head (not part of the paper)"}


@dataclass
class OfficialInfo:
    """What :func:`load_official` recognised: the model name, its kwargs and how each was decided."""

    path: str
    model: str
    kwargs: dict
    layout: str
    notes: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- reading files
def _read(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is the user's file problem
        first = (str(err).strip().splitlines() or [""])[0][:160]  # torch's message runs to many lines
        raise WeightsError(f"{path}: cannot read weights ({type(err).__name__}: {first})") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return obj


def _strip_prefix(state: dict) -> dict:
    out = {}
    for k, v in state.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        out[k] = v
    return out


def _hint(path: Path, patterns: dict[str, str]) -> str | None:
    name = path.name
    for value, pattern in patterns.items():
        if re.search(pattern, name):
            return value
    return None


# ----------------------------------------------------------------------------- recognition
def recognise(
    path, state: dict | None = None, size: str | None = None, attention: str | None = None
) -> OfficialInfo:
    """Recognise the architecture of an official checkpoint from its keys and shapes."""
    path = Path(path)
    sd = _strip_prefix(state if state is not None else _read(path))
    keys = set(sd)
    has_attention = any(".fsam." in k for k in keys)

    def attn_kind(default: str) -> tuple[str, str]:
        if not has_attention:
            return "none", "attention: none (no fsam weights)"
        if attention:
            return attention, f"attention: {attention} (argument)"
        hinted = _hint(path, {"grbf": r"RBF", "tsfm": r"SFSAM_Label|TSFM", "fsam": r"FSAM"})
        if hinted:
            return hinted, f"attention: {hinted} (fsam weights; kind from file name)"
        return default, f"attention: {default} (fsam weights; kind not recorded, default)"

    if any(k.startswith("rppg_feature_extractor.FeatureExtractor.") for k in keys):
        w0 = sd.get("rppg_feature_extractor.FeatureExtractor.0.conv_block_3d.0.weight")
        if w0 is None:
            raise WeightsError(f"{path}: FactorizePhys-like keys but no first extractor conv")
        kind, note = attn_kind("fsam")
        kwargs = {"in_channels": int(w0.shape[1]), "attention": kind}
        return OfficialInfo(str(path), "factorizephys", kwargs, "factorizephys", [note])

    mm_prefixes = (
        "bvp_feature_extractor.",
        "rsp_feature_extractor.",
        "rgb_bvp_feature_extractor.",
        "rgb_rsp_feature_extractor.",
        "thermal_bvp_feature_extractor.",
        "thermal_rsp_feature_extractor.",
    )
    if any(k.startswith(mm_prefixes) for k in keys):
        late = any(k.startswith(("rgb_", "thermal_")) for k in keys)
        tasks = tuple(
            t for t, h in (("bvp", "rppg_head."), ("rsp", "rBr_head.")) if any(k.startswith(h) for k in keys)
        )
        old = "bvp_feature_extractor.bvp_feature_extractor.4.conv_block_3d.0.weight" in keys
        notes = []
        if late:
            fusion, in_ch = "LF", 4
        else:
            cin = {
                t: int(sd[f"{t}_feature_extractor.{t}_feature_extractor.0.conv_block_3d.0.weight"].shape[1])
                for t in tasks
                if f"{t}_feature_extractor.{t}_feature_extractor.0.conv_block_3d.0.weight" in sd
            }
            if cin.get("bvp") == 3 and cin.get("rsp") == 1:
                fusion, in_ch = "NF", 4
            elif len(set(cin.values())) == 1:
                fusion, in_ch = "EF", next(iter(cin.values()))
            else:
                raise WeightsError(f"{path}: branch input channels {cin} match no MMRPhys fusion variant")
        if size:
            sz, how = size.upper(), "argument"
        else:
            hinted = _hint(
                path, {"S": r"MMRPhysS|x9(?!\d)", "M": r"MMRPhysM|x36(?!\d)", "L": r"MMRPhysL|x72(?!\d)"}
            )
            sz, how = (hinted, "file name") if hinted else ("L", "default; weights do not encode it")
        notes.append(f"size: {sz} ({how})")
        kind, note = attn_kind("tsfm")
        notes.append(note)
        if old:
            notes.append("key layout: earlier single-task BVP code")
        name = f"mmrphys_{sz.lower()}{fusion.lower()}"
        kwargs = {"tasks": tasks, "in_channels": in_ch, "attention": kind}
        return OfficialInfo(str(path), name, kwargs, "mmrphys_old" if old else "mmrphys", notes)

    if any(k.startswith("ConvBlock1.") for k in keys) and any(k.startswith("upsample") for k in keys):
        return OfficialInfo(str(path), "physnet", {}, "baseline", ["PhysNet keys (ConvBlock1..9, upsample)"])
    if any(k.startswith("motion_conv1.") for k in keys):
        fsam = any(k.startswith("feature_factorizer.") for k in keys)
        kwargs = {"attention": "fsam"} if fsam else {}
        return OfficialInfo(
            str(path),
            "efficientphys",
            kwargs,
            "baseline",
            ["EfficientPhys keys (motion_conv*)" + (" with FSAM" if fsam else "")],
        )
    sample = ", ".join(sorted(keys)[:4])
    raise WeightsError(f"{path}: keys match no known architecture (first keys: {sample})")


# ----------------------------------------------------------------------------- conversion
def convert_state_dict(state: dict, layout: str, path: str = "<state dict>") -> tuple[dict, list[str]]:
    """Map official keys onto ours for ``layout``; returns ``(state_dict, dropped_keys)``.

    Unknown keys raise :class:`WeightsError` (strictness about unexpected keys).
    """
    sd = _strip_prefix(state)
    if layout == "baseline":
        return sd, []
    rules = (_FACTORIZEPHYS_RULES if layout == "factorizephys" else _MMRPHYS_RULES) + _HEAD_RULES
    out, dropped, unexpected = {}, [], []
    for key, value in sd.items():
        if any(key.startswith(p) for p in _DROPPED_PREFIXES):
            dropped.append(key)
            continue
        if layout == "mmrphys_old":
            for old, new in _OLD_BVP_MOVES.items():
                if key.startswith(old):
                    key = new + key[len(old) :].replace("conv_block_3d.0.", "conv.")
                    break
            if key.startswith("bvp_head."):
                out[key] = value
                continue
        for pattern, repl in rules:
            m = re.match(pattern, key)
            if m:
                out[repl(m)] = value
                break
        else:
            unexpected.append(key)
    if unexpected:
        raise WeightsError(f"{path}: unexpected keys for this architecture: {', '.join(unexpected[:6])}")
    return out, dropped


def load_state_strict(model: nn.Module, state: dict, path: str) -> None:
    """``load_state_dict(strict=True)`` with one-line :class:`WeightsError` messages naming ``path``."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [
        f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} keys (e.g. {', '.join(missing[:3])})")
    if unexpected:
        problems.append(f"unexpected {len(unexpected)} keys (e.g. {', '.join(unexpected[:3])})")
    if shapes:
        problems.append(f"shape mismatch: {'; '.join(shapes[:3])}")
    if problems:
        raise WeightsError(f"{path}: weights do not fit {type(model).__name__}: " + "; ".join(problems))
    bad = [k for k, v in state.items()
           if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise WeightsError(f"{path}: {len(bad)} weight tensors hold NaN or infinite values (e.g. {bad[0]})")
    model.load_state_dict(state, strict=True)


def load_official(
    path, size: str | None = None, attention: str | None = None, return_info: bool = False, **kwargs
):
    """Build the model an official checkpoint describes and load it strictly; returns it in eval mode.

    ``size``/``attention`` settle what the weights cannot tell (see the module docstring); extra
    ``kwargs`` go to the model constructor (e.g. ``layout=``, ``dropout=``). With
    ``return_info=True`` returns ``(model, OfficialInfo)``.
    """
    from mmrphys import models

    path = Path(path)
    state = _read(path)
    info = recognise(path, state, size=size, attention=attention)
    mapped, dropped = convert_state_dict(state, info.layout, str(path))
    for prefix, why in _DROPPED_PREFIXES.items():
        n = sum(k.startswith(prefix) for k in dropped)
        if n:
            warnings.warn(f"{path.name}: dropped {n} tensors of {prefix.rstrip('.')} ({why})", stacklevel=2)
    info.dropped = dropped
    if info.model not in models.list_models():
        raise WeightsError(
            f"{path}: recognised as {info.model!r}, but that model is not available in this build "
            "(mmrphys.models has no such module yet)"
        )
    try:
        model = models.create(info.model, **{**info.kwargs, **kwargs})
    except ConfigError as err:
        raise WeightsError(f"{path}: cannot build {info.model} with {info.kwargs}: {err}") from None
    load_state_strict(model, mapped, str(path))
    model.eval()
    return (model, info) if return_info else model


# ----------------------------------------------------------------------------- our format
def model_name_and_kwargs(model: nn.Module) -> tuple[str, dict]:
    """Registry name and constructor kwargs of one of our models (for :func:`save_weights`)."""
    from mmrphys.models.factorizephys import FactorizePhys
    from mmrphys.models.mmrphys import MMRPhys

    if isinstance(model, MMRPhys):
        cfg = dict(model.config)
        name = f"mmrphys_{cfg.pop('size').lower()}{cfg.pop('fusion').lower()}"
        cfg["tasks"] = list(cfg["tasks"])
        return name, cfg
    if isinstance(model, FactorizePhys):
        cfg = dict(model.config)
        cfg.pop("tasks", None)
        return "factorizephys", cfg
    name = getattr(model, "registry_name", None) or getattr(model, "model_name", None)
    if not name:
        raise ConfigError(f"cannot tell the registry name of {type(model).__name__}; set .registry_name")
    return name, dict(getattr(model, "config", {}) or {})


def save_weights(
    model: nn.Module, path, meta: dict | None = None, name: str | None = None, kwargs=None
) -> Path:
    """Save ``model`` in our format (name, kwargs, state dict, free-form ``meta``); returns the path."""
    if name is None or kwargs is None:
        auto_name, auto_kwargs = model_name_and_kwargs(model)
        name = name or auto_name
        kwargs = auto_kwargs if kwargs is None else kwargs
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    torch.save(
        {
            "format": FORMAT,
            "model": name,
            "kwargs": dict(kwargs),
            "state_dict": state,
            "meta": dict(meta or {}),
        },
        path,
    )
    return path


def read_weights(path) -> dict:
    """Read a file in our format (``{"model", "kwargs", "state_dict", "meta"}``)."""
    obj = _read(path)
    if obj.get("format") != FORMAT or "state_dict" not in obj or "model" not in obj:
        raise WeightsError(f"{path}: not an mmrphys weights file (use load_official for the authors' .pth)")
    return obj


def load_weights_into(model: nn.Module, path) -> dict:
    """Load our-format weights into an existing ``model`` (strict); returns the file's ``meta``.

    Weights saved for another variant raise :class:`WeightsError` naming the file and the mismatch.
    """
    obj = read_weights(path)
    try:
        name = model_name_and_kwargs(model)[0]
    except ConfigError:
        name = None
    if name is not None and name != obj["model"]:
        raise WeightsError(f"{path}: weights are for {obj['model']!r}, the model is {name!r}")
    load_state_strict(model, obj["state_dict"], str(path))
    return obj.get("meta", {})


def load_model(path_or_name, **overrides) -> nn.Module:
    """A ready model (eval mode) from a weights file (ours or official) or a shipped weights name.

    ``"default"`` and other names come from :mod:`mmrphys.models.weights`; ``overrides`` replace
    constructor kwargs recorded in the file (e.g. ``attention_at_inference=``).
    """
    from mmrphys import models
    from mmrphys.models import weights as shipped

    p = Path(str(path_or_name))
    if not p.is_file():
        if p.suffix or "/" in str(path_or_name) or "\\" in str(path_or_name):
            raise WeightsError(f"{path_or_name}: no such weights file")
        p = shipped.get_weights(str(path_or_name)).path
    obj = _read(p)
    if obj.get("format") != FORMAT:
        return load_official(p, **overrides)
    name = obj["model"]
    if name not in models.list_models():
        raise WeightsError(f"{p}: weights are for model {name!r}, which is not registered")
    kwargs = {**obj.get("kwargs", {}), **overrides}
    try:
        model = models.create(name, **kwargs)
    except (ConfigError, TypeError) as err:
        raise WeightsError(f"{p}: cannot build {name} with {kwargs}: {err}") from None
    load_state_strict(model, obj["state_dict"], str(p))
    model.weights_meta = obj.get("meta", {})
    return model.eval()
