"""Weights outside the modules: the official-checkpoint converter and our own weights format.

* :func:`load_official` reads an authors' ``.pth`` (MMRPhys, FactorizePhys, PhysNet, EfficientPhys),
  recognises the architecture from its keys and shapes, maps the keys onto our modules and loads
  them strictly: any unexpected, missing or mis-shaped tensor raises :class:`WeightsError`. What is
  specific to an architecture (which keys mean it, how they map, what is dropped: the LNF/LLF
  experimental blood-pressure head ``rBP_head.*``, with a warning naming it) is data beside each
  model (:class:`mmrphys.models.registry.OfficialKeys`); this module is the generic machinery.
* :func:`save_weights` / :func:`load_model` handle our format, a dict
  ``{"format": "mmrphys-weights", "model": name, "kwargs": {...}, "state_dict": {...}, "meta": {...}}``;
  name and kwargs are what :func:`mmrphys.models.create` recorded on the model (``mmrphys_config``).
* :func:`load_model` takes a file or a catalogue name (:mod:`mmrphys.models.weights`).

What keys cannot tell. Sizes L/M/S have identical weight shapes, and FSAM/TSFM/GRBF attention
weights are identical too; for these two facts only, ``load_official`` takes ``size=`` /
``attention=`` arguments and otherwise the recognisers read a hint from the file name
(``MMRPhysSEF``, ``x9``, ``SFSAM_Label``, ``RBF``, ...), falling back to L and TSFM (MMRPhys) or
FSAM (FactorizePhys).
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
from mmrphys.models import registry
from mmrphys.models import weights as catalogue

FORMAT = "mmrphys-weights"


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
    if path.suffix.lower() == ".onnx":
        raise WeightsError(
            f"{path}: an ONNX export, not PyTorch weights; run it with onnxruntime or 'mmrphys serve --model'"
        )
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is the user's file problem
        first = (str(err).strip().splitlines() or [""])[0][:160]  # torch's message runs to many lines
        raise WeightsError(f"{path}: cannot read weights ({type(err).__name__}: {first})") from None
    if not isinstance(obj, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return obj


def _strip_prefix(state: dict) -> dict:
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


# ----------------------------------------------------------------------------- recognition
def recognise(
    path, state: dict | None = None, size: str | None = None, attention: str | None = None
) -> OfficialInfo:
    """Recognise the architecture of an official checkpoint from its keys and shapes.

    Each registered :class:`~mmrphys.models.registry.OfficialKeys` is asked in turn; ``size`` and
    ``attention`` settle what keys cannot tell (otherwise a hint from the file name, or a default).
    """
    path = Path(path)
    sd = _strip_prefix(state if state is not None else _read(path))
    hints = {"file": path.name, "size": size, "attention": attention}
    for keys in registry.official_keys().values():
        found = keys.recognise(sd, hints)
        if found is not None:
            model, kwargs, notes = found
            return OfficialInfo(str(path), model, kwargs, keys.layout, list(notes))
    sample = ", ".join(sorted(sd)[:4])
    raise WeightsError(f"{path}: keys match no known architecture (first keys: {sample})")


# ----------------------------------------------------------------------------- conversion
def convert_state_dict(state: dict, layout: str, path: str = "<state dict>") -> tuple[dict, list[str]]:
    """Map official keys onto ours with the rules of ``layout``; returns ``(state_dict, dropped_keys)``.

    Unknown keys raise :class:`WeightsError` (strictness about unexpected keys).
    """
    layouts = registry.official_keys()
    if layout not in layouts:
        raise WeightsError(f"{path}: unknown key layout {layout!r}; known: {', '.join(layouts)}")
    keys = layouts[layout]
    rules = [(re.compile(pattern), template) for pattern, template in keys.rules]
    out, dropped, unexpected = {}, [], []
    for key, value in _strip_prefix(state).items():
        if key.startswith(tuple(keys.drop)):
            dropped.append(key)
            continue
        if keys.identity:
            out[key] = value
            continue
        moved = next((new + key[len(old) :] for old, new in keys.moves if key.startswith(old)), None)
        if moved is not None:
            out[moved] = value
            continue
        match = next((m.expand(t) for r, t in rules if (m := r.fullmatch(key))), None)
        if match is None:
            unexpected.append(key)
        else:
            out[match] = value
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
    path = Path(path)
    state = _read(path)
    info = recognise(path, state, size=size, attention=attention)
    mapped, dropped = convert_state_dict(state, info.layout, str(path))
    for prefix, why in registry.official_keys()[info.layout].drop.items():
        n = sum(k.startswith(prefix) for k in dropped)
        if n:
            warnings.warn(f"{path.name}: dropped {n} tensors of {prefix.rstrip('.')} ({why})", stacklevel=2)
    info.dropped = dropped
    if info.model not in registry.list_models():
        raise WeightsError(
            f"{path}: recognised as {info.model!r}, but that model is not available in this build "
            "(mmrphys.models has no such module yet)"
        )
    try:
        model = registry.create(info.model, **{**info.kwargs, **kwargs})
    except ConfigError as err:
        raise WeightsError(f"{path}: cannot build {info.model} with {info.kwargs}: {err}") from None
    load_state_strict(model, mapped, str(path))
    model.eval()
    return (model, info) if return_info else model


# ----------------------------------------------------------------------------- our format
def model_name_and_kwargs(model: nn.Module) -> tuple[str, dict]:
    """Registry name and constructor kwargs of a model built by :func:`mmrphys.models.create`."""
    cfg = getattr(model, "mmrphys_config", None)
    if not cfg:
        raise ConfigError(
            f"cannot tell how this {type(model).__name__} was built; "
            "build it with mmrphys.models.create(name, ...)"
        )
    kwargs = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg["kwargs"].items()}
    return cfg["name"], kwargs


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


def load_model(
    path_or_name, *, download: bool = True, progress: bool | None = None, **overrides
) -> nn.Module:
    """A ready model (eval mode) from a weights file (ours or official) or a catalogue name.

    Names (``"default"``, ``PURE_MMRPhys_SFSAM_Label_Epoch9``, ``pure-mmrphys``, ...) are resolved by
    :func:`mmrphys.models.weights.resolve_weights`: naming a remote entry downloads it once into the
    cache (``download=False`` refuses instead). ``overrides`` replace constructor kwargs recorded in
    the file (e.g. ``attention_at_inference=``).
    """
    p = catalogue.resolve_weights(path_or_name, download=download, progress=progress)
    obj = _read(p)
    if obj.get("format") != FORMAT:
        return load_official(p, **overrides)
    name = obj["model"]
    if name not in registry.list_models():
        raise WeightsError(f"{p}: weights are for model {name!r}, which is not registered")
    kwargs = {**obj.get("kwargs", {}), **overrides}
    try:
        model = registry.create(name, **kwargs)
    except (ConfigError, TypeError) as err:
        raise WeightsError(f"{p}: cannot build {name} with {kwargs}: {err}") from None
    load_state_strict(model, obj["state_dict"], str(p))
    model.weights_meta = obj.get("meta", {})
    return model.eval()


def model_card(name: str = "default") -> dict:
    """The card of named weights: the catalogue entry, merged with the ``meta`` stored in our files."""
    w = catalogue.get_weights(name)
    obj = read_weights(w.path) if w.kind == "ours" else {}
    return {
        "name": w.name,
        "model": obj.get("model", w.model),
        "kwargs": obj.get("kwargs", w.architecture.get("kwargs", {})),
        **obj.get("meta", {}),
        **w.card,
    }
