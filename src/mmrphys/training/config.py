"""Training/evaluation configs: YAML files validated on load.

A config is a nested mapping with four sections (``model``, ``data``, ``train``, ``eval``) and a few
top-level keys. Every key is declared in :data:`SCHEMA` with its type, default and allowed values;
unknown keys and bad values raise :class:`~mmrphys.errors.ConfigError` naming the dotted key, e.g.
``train.lr: must be > 0, got -1``.

Datasets are listed under ``data.train`` / ``data.test`` as ``{name, path, subjects, ...}``. A
``path`` left out (or ``null``) is filled from ``--data NAME=PATH`` on the command line, so
configs never hold machine-specific paths.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmrphys.errors import ConfigError

TASKS = ("bvp", "rsp")
ATTENTIONS = ("none", "fsam", "tsfm", "grbf")
LOSSES = ("smoothl1", "neg_pearson", "neg_pearson_batch", "mse")


@dataclass(frozen=True)
class Field:
    """One leaf of the schema: expected type(s), default, and optional checks."""

    types: tuple
    default: Any = None
    choices: tuple | None = None
    min: float | None = None
    max: float | None = None
    required: bool = False
    item: Any = None  # for lists: a Field or a dict schema applied to every item
    help: str = ""

    def check(self, value, key: str):
        if value is None:
            if self.required:
                raise ConfigError(f"{key}: required")
            if type(None) in self.types:
                return None
            raise ConfigError(f"{key}: must not be null")
        if float in self.types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in self.types:
            raise ConfigError(f"{key}: expected {_names(self.types)}, got {value!r}")
        if not isinstance(value, tuple(t for t in self.types if t is not type(None))):
            raise ConfigError(f"{key}: expected {_names(self.types)}, got {value!r}")
        if self.choices is not None:
            items = value if isinstance(value, list) else [value]
            for v in items:
                if v not in self.choices:
                    raise ConfigError(f"{key}: {v!r} is not one of {', '.join(map(str, self.choices))}")
        if self.min is not None and isinstance(value, (int, float)) and value < self.min:
            raise ConfigError(f"{key}: must be >= {self.min}, got {value!r}")
        if self.max is not None and isinstance(value, (int, float)) and value > self.max:
            raise ConfigError(f"{key}: must be <= {self.max}, got {value!r}")
        if isinstance(value, list) and self.item is not None:
            out = []
            for i, v in enumerate(value):
                sub = f"{key}[{i}]"
                out.append(
                    _validate(v, self.item, sub) if isinstance(self.item, dict) else self.item.check(v, sub)
                )
            return out
        return value


def _names(types) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in types)


DATASET = {
    "name": Field(
        (str,),
        required=True,
        help="dataset kind and --data key: ubfc-rppg, pure, ibvp, scamps, bp4d, synth, folder",
    ),
    "key": Field((str, type(None)), None, help="--data key if different from name"),
    "path": Field((str, type(None)), None, help="root folder; null: from --data NAME=PATH"),
    "subjects": Field((list, type(None)), None, item=Field((str, int)), help="keep only these subjects"),
    "exclude_subjects": Field((list, type(None)), None, item=Field((str, int))),
    "split": Field(
        (list, type(None)),
        None,
        item=Field((float,), min=0.0, max=1.0),
        help="[begin, end] fraction of the sorted subjects (subject-wise split)",
    ),
    "fold": Field((str, type(None)), None, help="CSV of subject ids (BP4D+ folds)"),
    "modality": Field((str,), "rgb", choices=("rgb", "t", "rgbt")),
    "crop": Field(
        (str,),
        "auto",
        choices=("auto", "face", "given", "none"),
        help="face (detected), given (the dataset's boxes), none (whole frame), auto (given if all have)",
    ),
    "options": Field((dict,), {}, help="extra keyword options for the dataset loader"),
    "windows": Field(
        (int, type(None)), None, min=1, help="training: N augmented windows per epoch from whole recordings"
    ),
    "augment": Field((dict,), {}, help="their augmentation (mmrphys.training.augment.AugmentSpec)"),
    "derive_rsp": Field((bool,), False, help="training: RSP label derived from the contact PPG (weak label)"),
}

SCHEMA: dict = {
    "name": Field((str,), "run"),
    "description": Field((str,), ""),
    "seed": Field((int,), 100),
    "deterministic": Field((bool,), False, help="torch.use_deterministic_algorithms"),
    "device": Field((str,), "auto", help="auto, cpu, cuda, cuda:N"),
    "threads": Field((int, type(None)), None, min=1, help="torch intra-op threads (null: leave as is)"),
    "model": {
        "name": Field((str,), "mmrphys_lef"),
        "tasks": Field((list,), ["bvp", "rsp"], choices=TASKS),
        "in_channels": Field((int,), 3, choices=(1, 3, 4)),
        "attention": Field((str,), "tsfm", choices=ATTENTIONS),
        "options": Field((dict,), {}, help="extra keyword arguments for models.create"),
        "init": Field((str, type(None)), None, help="weights to start from (file or shipped name)"),
    },
    "data": {
        "size": Field((int,), 72, min=2),
        "chunk": Field((int,), 180, min=4, help="T: output frames per chunk (the model sees T+1)"),
        "fs": Field((float, type(None)), None, min=1.0, help="resample to this frame rate (null: native)"),
        "cache": Field((str, type(None)), None, help="preprocessing cache folder (null: default)"),
        "workers": Field((int, type(None)), None, min=0, help="preprocessing processes (null: one per core)"),
        "train": Field((list,), [], item=DATASET),
        "test": Field((list,), [], item=DATASET),
    },
    "train": {
        "epochs": Field((int,), 10, min=1),
        "batch_size": Field((int,), 4, min=1, help="global batch (split across DDP ranks)"),
        "lr": Field((float,), 1e-3, min=1e-12),
        "optimizer": Field((str,), "adam", choices=("adam", "adamw")),
        "weight_decay": Field((float,), 0.0, min=0.0),
        "scheduler": Field((str,), "onecycle", choices=("onecycle", "constant")),
        "loss": Field((str,), "smoothl1", choices=LOSSES),
        "task_weights": Field((dict,), {}, help="per-task loss weight (default 1)"),
        "amp": Field((bool,), False, help="older switch: bf16 autocast on CPU, fp16 on CUDA (see precision)"),
        "precision": Field(
            (str,),
            "auto",
            choices=("auto", "fp32", "bf16"),
            help="auto: bf16 where the CPU computes it natively (AVX512-BF16/AMX), else fp32",
        ),
        "engine": Field(
            (str,),
            "fast",
            choices=("fast", "reference"),
            help="fast: channels-last convs + fused tanh/instance norm; reference: the authors' eager path",
        ),
        "checkpoint_every": Field(
            (int, type(None)), 10, min=1, help="also checkpoint every N steps (null: at epoch ends only)"
        ),
        "grad_clip": Field((float, type(None)), None, min=0.0),
        "num_workers": Field((int,), 0, min=0),
        "max_steps_per_epoch": Field((int, type(None)), None, min=1, help="cap for quick runs"),
        "shuffle": Field((bool,), True),
        "drop_last": Field((bool,), False),
        "log_every": Field((int,), 10, min=1),
        "progress": Field((bool,), True),
    },
    "eval": {
        "preset": Field((str,), "mmrphys", choices=("mmrphys", "toolbox", "toolbox-2023")),
        "window_s": Field((float, type(None)), None, min=1.0, help="null: whole video"),
        "every_epoch": Field((bool,), False, help="also evaluate after each epoch (logging only)"),
        "plots": Field((bool,), True),
    },
}


def _validate(raw, schema: dict, prefix: str = "") -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {type(raw).__name__}")
    unknown = sorted(set(raw) - set(schema))
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ConfigError(f"{where}{unknown[0]}: unknown key (allowed: {', '.join(sorted(schema))})")
    out = {}
    for key, spec in schema.items():
        dotted = f"{prefix}.{key}" if prefix else key
        if isinstance(spec, dict):
            out[key] = _validate(raw.get(key), spec, dotted)
        else:
            out[key] = spec.check(copy.deepcopy(raw.get(key, spec.default)), dotted)
    return out


def _cross_checks(cfg: dict) -> None:
    if len(set(cfg["model"]["tasks"])) != len(cfg["model"]["tasks"]) or not cfg["model"]["tasks"]:
        raise ConfigError(
            f"model.tasks: must be a non-empty list without repeats, got {cfg['model']['tasks']}"
        )
    if "rsp" in cfg["model"]["tasks"] and cfg["data"]["chunk"] % 4:
        raise ConfigError(
            f"data.chunk: must be a multiple of 4 when 'rsp' is a task, got {cfg['data']['chunk']}"
        )
    if cfg["train"]["amp"] and cfg["train"]["precision"] == "fp32":
        raise ConfigError("train.amp: true conflicts with train.precision: fp32 (remove one)")
    for t in cfg["train"]["task_weights"]:
        if t not in cfg["model"]["tasks"]:
            raise ConfigError(f"train.task_weights.{t}: not one of model.tasks {cfg['model']['tasks']}")
    for i, ds in enumerate(cfg["data"]["train"]):
        if ds["augment"]:
            from mmrphys.training.augment import AugmentSpec

            try:
                AugmentSpec.from_config(ds["augment"])
            except ConfigError as err:
                raise ConfigError(f"data.train[{i}].{err}") from None
    for part in ("train", "test"):
        for i, ds in enumerate(cfg["data"][part]):
            if ds["split"] is not None and (len(ds["split"]) != 2 or ds["split"][0] >= ds["split"][1]):
                raise ConfigError(f"data.{part}[{i}].split: expected [begin, end] with begin < end")


def validate(raw: dict) -> dict:
    """Validate a config mapping against :data:`SCHEMA`; returns a complete config with defaults."""
    cfg = _validate(raw, SCHEMA)
    _cross_checks(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> dict:
    """Read and validate a YAML config; ``overrides`` are ``dotted.key=value`` strings (YAML values)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder, not a config file")
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err.strerror})") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text (UTF-8) YAML file (byte {err.start})") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text YAML file (holds NUL bytes)")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got a YAML {type(raw).__name__}")
    for item in overrides or []:
        apply_override(raw, item)
    try:
        return validate(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def apply_override(raw: dict, item: str) -> None:
    """Set ``a.b.c=value`` in a raw config mapping (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE")
    key, value = item.split("=", 1)
    import re

    parts = []
    for p in key.strip().split("."):
        m = re.fullmatch(r"([^\[\]]+)((?:\[\d+\])*)", p)
        if not m:
            raise ConfigError(f"override {key}: bad key")
        parts.append(m.group(1))
        parts += [int(i) for i in re.findall(r"\[(\d+)\]", m.group(2))]
    node = raw
    for p, nxt in zip(parts[:-1], parts[1:]):
        try:
            if isinstance(p, int):
                node = node[p]
            else:
                node = node.setdefault(p, [] if isinstance(nxt, int) else {})
        except (IndexError, TypeError, AttributeError):
            raise ConfigError(f"override {key}: no such item {p!r}") from None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        raise ConfigError(f"override {key}: value {value!r} is not valid YAML") from None
    try:
        node[parts[-1]] = parsed
    except (IndexError, TypeError):
        raise ConfigError(f"override {key}: no such item {parts[-1]!r}") from None


def parse_data_args(items: list[str] | None) -> dict[str, str]:
    """``["ubfc-rppg=/data/UBFC", ...]`` -> ``{"ubfc-rppg": "/data/UBFC"}``."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--data {item!r}: expected NAME=PATH")
        name, path = item.split("=", 1)
        if not name.strip() or not path.strip():
            raise ConfigError(f"--data {item!r}: expected NAME=PATH")
        out[name.strip()] = path.strip()
    return out


def resolve_paths(cfg: dict, data_paths: dict[str, str]) -> dict:
    """Fill dataset ``path`` from ``--data``; error naming the dataset when a path is missing."""
    cfg = copy.deepcopy(cfg)
    for part in ("train", "test"):
        for i, ds in enumerate(cfg["data"][part]):
            key = ds["key"] or ds["name"]
            if key in data_paths:
                ds["path"] = data_paths[key]
            if ds["path"] is None and ds["name"] != "synth":
                raise ConfigError(f"data.{part}[{i}] ({key}): no path; pass --data {key}=PATH")
    return cfg


# keys that change neither the data nor the weights: left out of the config hash, so a run can be
# resumed with its cache elsewhere, more preprocessing workers, or other logging/checkpoint settings
UNHASHED = (("data", "cache"), ("data", "workers"), ("train", "checkpoint_every"), ("train", "log_every"),
            ("train", "progress"))


def config_hash(cfg: dict) -> str:
    """Stable short hash of a config without the keys in :data:`UNHASHED` and the dataset paths."""
    clean = copy.deepcopy(cfg)
    for section, key in UNHASHED:
        clean.get(section, {}).pop(key, None)
    for part in ("train", "test"):
        for ds in clean["data"][part]:
            ds.pop("path", None)
    return hashlib.sha256(json.dumps(clean, sort_keys=True).encode()).hexdigest()[:16]


def dump_config(cfg: dict, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg, sort_keys=False))
