"""One trainer for every model: parameterised by the model, the loss and the data.

The recipe is the paper's (see docs/training.md): chunks of T frames plus a copy of the last frame
(T+1 in, T out), labels z-scored per sample, Adam + OneCycle, the last epoch is the one tested.
Ground-truth labels go into ``model(x, labels=...)`` only in training (TSFM uses them; other
models ignore them).

Training items are dicts ``{"frames": (C, T, H, W) float, "bvp": (T,), "rsp": (T,), "id": str}``
(tasks without a label may be missing). A checkpoint is written after every epoch and every
``train.checkpoint_every`` steps holding the model, optimizer, scheduler, AMP scaler, every RNG
state, the position in the epoch, the config and the data manifest hash, so ``resume=True``
continues an interrupted run to the same final weights, bit for bit.

Progress and cost go to the run folder: ``progress.json`` (replaced atomically after every step:
step, loss, s/step, ETA, CPU time, peak memory; read by ``mmrphys train --status``) and the step
records of ``metrics.jsonl``. The training step itself is :mod:`mmrphys.training.fastpath`
(``train.engine``, ``train.precision``).
"""

from __future__ import annotations

import csv
import json
import math
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mmrphys.errors import ConfigError
from mmrphys.training import distributed, fastpath
from mmrphys.training.config import config_hash, dump_config
from mmrphys.training.losses import masked_multitask_loss, zscore

CHECKPOINT = "last.pt"
PROGRESS = "progress.json"


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (``deterministic`` is applied by :func:`deterministic_algorithms`)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextmanager
def deterministic_algorithms(enabled: bool):
    """``torch.use_deterministic_algorithms`` (and cuDNN's flags) for the block only; restored after."""
    if not enabled:
        yield
        return
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.benchmark,
        torch.backends.cudnn.deterministic,
    )
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = False, True
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic = before[1:]


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def collate(items: list[dict]) -> dict:
    """Stack training items. A task labelled in only some items gets zeros elsewhere and a mask.

    Mixed batches happen when datasets differ in labels (UBFC: BVP only; synthetic: BVP + RSP).
    The loss of that task uses only masked-in samples; TSFM sees a flat label for the others (a
    constant target basis, i.e. no temporal prior) because it needs one per sample.
    """
    items = [_as_item(it, i) for i, it in enumerate(items)]
    out = {"frames": torch.stack([torch.as_tensor(it["frames"], dtype=torch.float32) for it in items])}
    for task in ("bvp", "rsp"):
        have = [it.get(task) is not None for it in items]
        if not any(have):
            continue
        ref = next(torch.as_tensor(it[task]) for it in items if it.get(task) is not None)
        out[task] = torch.stack(
            [
                torch.as_tensor(it[task], dtype=torch.float32) if h else torch.zeros_like(ref)
                for it, h in zip(items, have)
            ]
        )
        if not all(have):
            out[f"{task}_mask"] = torch.tensor(have)
    out["id"] = [str(it.get("id", "")) for it in items]
    return out


def _as_item(item, i: int) -> dict:
    """Accept ``mmrphys.data.torch_dataset.CacheDataset`` items too: ``(frames (C, T+1, H, W), labels)``.

    Their extra frame is dropped here because the trainer appends the last frame itself.
    """
    if isinstance(item, dict):
        return item
    frames, labels = item
    return {"frames": torch.as_tensor(frames)[:, :-1], **labels, "id": str(i)}


def append_last_frame(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C, T+1, H, W) with a copy of the last frame (the model diffs frames)."""
    return torch.cat([x, x[:, :, -1:]], dim=2)


def manifest_hash(dataset) -> str:
    """The dataset's own manifest hash when it has one, else a hash of its length and item ids."""
    h = getattr(dataset, "manifest_hash", None)
    if callable(h):
        h = h()
    if h:
        return str(h)
    import hashlib

    ids = getattr(dataset, "ids", None)
    text = json.dumps(list(ids) if ids is not None else len(dataset))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_json_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def process_cost() -> dict:
    """CPU time, peak RSS and page faults of this process and its finished children so far."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    kb = 1 if sys.platform != "darwin" else 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    return {
        "cpu_user_s": round(me.ru_utime + kids.ru_utime, 2),
        "cpu_sys_s": round(me.ru_stime + kids.ru_stime, 2),
        "max_rss_mb": round(max(me.ru_maxrss, kids.ru_maxrss) / 1024 / kb, 1),
        "minor_faults": me.ru_minflt + kids.ru_minflt,
        "major_faults": me.ru_majflt + kids.ru_majflt,
    }


def read_checkpoint(path: Path, cfg: dict, map_location="cpu") -> dict:
    """A training checkpoint; :class:`ConfigError` when unreadable or made with another config."""
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated, foreign or not a torch file: one line naming it
        raise ConfigError(f"{path}: unreadable checkpoint ({type(err).__name__}); use a new --out") from None
    if not isinstance(state, dict) or "config_hash" not in state:
        raise ConfigError(f"{path}: not an mmrphys training checkpoint")
    if state["config_hash"] != config_hash(cfg):
        raise ConfigError(f"{path}: checkpoint was made with a different config; use a new --out folder")
    return state


class _EpochSampler(Sampler):
    """The epoch's (distributed) order, starting ``skip`` items in (resuming mid-epoch)."""

    def __init__(self, base: Sampler):
        self.base = base
        self.skip = 0

    def __iter__(self):
        return iter(list(self.base)[self.skip :])

    def __len__(self) -> int:
        return len(self.base) - self.skip


class Trainer:
    """Train ``model`` on ``train_set`` following ``cfg`` (a validated config), writing to ``out_dir``.

    ``hooks`` may hold ``after_step(trainer, epoch, step)`` and ``after_epoch(trainer, epoch)``
    callables, run after the step's (or epoch's) checkpoint is written (tests use them to interrupt
    a run). ``precision`` (``fp32``/``bf16``/``fp16``) overrides the one resolved from the config.
    """

    def __init__(
        self,
        cfg: dict,
        model: torch.nn.Module,
        train_set: Dataset,
        out_dir: str | Path,
        dist: distributed.Dist | None = None,
        hooks: dict[str, Callable] | None = None,
        precision: str | None = None,
    ):
        self.cfg = cfg
        self.tcfg = cfg["train"]
        self.dist = dist or distributed.setup(cfg.get("device", "auto"))
        self.out = Path(out_dir)
        self.hooks = hooks or {}
        self.train_set = train_set
        if len(train_set) == 0:
            raise ConfigError("data.train: no training chunks (check the dataset paths and subjects)")
        gb = self.tcfg["batch_size"]
        if gb % self.dist.world_size:
            raise ConfigError(f"train.batch_size: {gb} is not divisible by the {self.dist.world_size} ranks")
        self.batch_per_rank = gb // self.dist.world_size
        self.device = self.dist.device
        self.model = model.to(self.device)
        self.precision = precision or fastpath.resolve_precision(self.tcfg, self.device)
        self.engine = self.tcfg.get("engine", "fast")
        self.step_model = fastpath.TrainForward(self.model, self.precision, self.device)
        self.ddp_model = distributed.wrap_model(self.step_model, self.dist)
        self.sampler = distributed.make_sampler(
            len(train_set),
            self.dist,
            cfg["seed"],
            shuffle=self.tcfg["shuffle"],
            drop_last=self.tcfg["drop_last"],
        )
        self.epoch_sampler = _EpochSampler(self.sampler)
        self.loader = DataLoader(
            train_set,
            batch_size=self.batch_per_rank,
            sampler=self.epoch_sampler,
            num_workers=self.tcfg["num_workers"],
            collate_fn=collate,
            drop_last=self.tcfg["drop_last"],
        )
        n = len(self.loader)
        self.steps_per_epoch = min(n, self.tcfg["max_steps_per_epoch"] or n)
        self.optimizer = self._make_optimizer()
        self.scheduler = self._make_scheduler()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.step_in_epoch = 0  # steps of the current epoch done (resuming mid-epoch)
        self.epoch_sums: dict[str, float] = {}
        self.history: list[dict] = []
        self.last_batch_ids: list[str] = []
        self.manifest = manifest_hash(train_set)
        self._pending_rng = None  # RNG state to restore once the resumed epoch's iterator exists
        self._t_start = time.time()
        self._step_times: list[float] = []

    # -- construction -------------------------------------------------------------------------
    def _make_optimizer(self):
        params = [p for p in self.model.parameters() if p.requires_grad]
        kw = {"lr": self.tcfg["lr"], "weight_decay": self.tcfg["weight_decay"]}
        if self.tcfg["optimizer"] == "adamw":
            return torch.optim.AdamW(params, **kw)
        return torch.optim.Adam(params, **kw)

    def _make_scheduler(self):
        if self.tcfg["scheduler"] == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer,
                max_lr=self.tcfg["lr"],
                epochs=self.tcfg["epochs"],
                steps_per_epoch=self.steps_per_epoch,
            )
        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda _: 1.0)

    # -- checkpoints ----------------------------------------------------------------------------
    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "global_step": self.global_step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "config": self.cfg,
            "config_hash": config_hash(self.cfg),
            "manifest_hash": self.manifest,
            "history": self.history,
            "world_size": self.dist.world_size,
            "step_in_epoch": self.step_in_epoch,
            "epoch_sums": dict(self.epoch_sums),
            "precision": self.precision,
            "engine": self.engine,
        }

    def save_checkpoint(self, epoch_end: bool = True) -> None:
        """``last.pt`` (and ``epochNNN.pt`` at the end of an epoch), each written atomically."""
        if not self.dist.is_main:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        state = self.state_dict()
        if epoch_end:
            _atomic_save(state, self.ckpt_dir / f"epoch{self.epoch:03d}.pt")
        _atomic_save(state, self.ckpt_dir / CHECKPOINT)

    def load_checkpoint(self, path: str | Path | None = None) -> bool:
        """Restore everything from ``path`` (default: the run's last checkpoint); False if absent."""
        path = Path(path) if path else self.ckpt_dir / CHECKPOINT
        if not path.is_file():
            return False
        state = read_checkpoint(path, self.cfg, self.device)
        if state["manifest_hash"] != self.manifest:
            raise ConfigError(
                f"{path}: checkpoint was made on different training data (manifest hash "
                f"{state['manifest_hash']} != {self.manifest})"
            )
        was = state.get("precision", "fp32")
        if was != self.precision:
            raise ConfigError(
                f"{path}: checkpoint was trained in {was}, this run resolves train.precision to "
                f"{self.precision}; resume with --set train.precision={was}"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.epoch = state["epoch"]
        self.global_step = state["global_step"]
        self.history = state["history"]
        self.step_in_epoch = state.get("step_in_epoch", 0)
        self.epoch_sums = dict(state.get("epoch_sums", {}))
        if self.step_in_epoch:
            # creating the epoch's DataLoader iterator draws from the global RNG; the saved state is
            # the one after that draw, so it is restored once the iterator exists (train_epoch)
            self._pending_rng = state["rng"]
        else:
            set_rng_state(state["rng"])
        return True

    # -- training -------------------------------------------------------------------------------
    def _forward_loss(self, batch: dict):
        x = append_last_frame(batch["frames"].to(self.device, non_blocking=True))
        tasks = list(getattr(self.model, "tasks", self.cfg["model"]["tasks"]))
        labels = {t: zscore(batch[t].to(self.device)) for t in tasks if t in batch}
        masks = {t: batch[f"{t}_mask"].to(self.device) for t in labels if f"{t}_mask" in batch}
        for t in tasks:
            if t not in labels:  # no item of this batch is labelled for t: flat label, loss masked out
                labels[t] = torch.zeros(x.shape[0], x.shape[2] - 1, device=self.device)
                masks[t] = torch.zeros(x.shape[0], dtype=torch.bool, device=self.device)
        pred = self.ddp_model(x, labels=labels)
        pred = {k: v.float() for k, v in pred.items()}  # the loss z-scores: never in bfloat16
        return masked_multitask_loss(pred, labels, masks, self.tcfg["loss"], self.tcfg["task_weights"])

    def train_step(self, batch: dict) -> dict[str, float]:
        """One optimisation step on a collated batch; returns the loss and its per-task parts."""
        self.last_batch_ids = batch["id"]
        loss, parts = self._forward_loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.tcfg["grad_clip"]:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.tcfg["grad_clip"])
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.global_step += 1
        return {"loss": float(loss.detach())} | {f"loss_{k}": float(v.detach()) for k, v in parts.items()}

    def train_epoch(self) -> dict:
        self.ddp_model.train()
        self.sampler.set_epoch(self.epoch)
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        start = self.step_in_epoch
        self.epoch_sampler.skip = start * self.batch_per_rank
        sums = dict(self.epoch_sums) if start else {}
        n = start
        t0 = time.time()
        bar = _progress(
            self.steps_per_epoch,
            f"epoch {self.epoch + 1}/{self.tcfg['epochs']}",
            self.dist.is_main and self.tcfg["progress"],
            initial=start,
        )
        batches = iter(self.loader)
        if self._pending_rng is not None:
            set_rng_state(self._pending_rng)
            self._pending_rng = None
        every = self.tcfg.get("checkpoint_every") or 0
        for step in range(start, self.steps_per_epoch):
            batch = next(batches, None)
            if batch is None:
                break
            t_step = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            vals = self.train_step(batch)
            for k, v in vals.items():
                sums[k] = sums.get(k, 0.0) + v
            n += 1
            self._step_times.append(time.perf_counter() - t_step)
            last = step == self.steps_per_epoch - 1
            if self.global_step % self.tcfg["log_every"] == 0 or last:
                self._log(
                    {"kind": "step", "epoch": self.epoch + 1, "step": self.global_step, "lr": lr}
                    | {k: round(v, 6) for k, v in vals.items()}
                    | self._timing()
                )
            self._progress(vals["loss"], bar)
            if every and self.global_step % every == 0 and not last:
                self.step_in_epoch, self.epoch_sums = step + 1, dict(sums)
                self.save_checkpoint(epoch_end=False)
            if "after_step" in self.hooks:
                self.hooks["after_step"](self, self.epoch, step)
        if bar is not None:
            bar.close()
        self.step_in_epoch, self.epoch_sums = 0, {}
        # Every rank ran the same number of steps; average the per-rank epoch means.
        means = {k: self.dist.mean(v / max(n, 1)) for k, v in sorted(sums.items())}
        return means | {"seconds": round(time.time() - t0, 2)}

    def fit(self, resume: bool = False, evaluate_fn: Callable | None = None) -> list[dict]:
        """Train to ``train.epochs`` (continuing from the last checkpoint when ``resume``); returns history.

        ``evaluate_fn(model, epoch)`` (optional) is called after each epoch when
        ``eval.every_epoch`` is set; its scalar results are logged beside the training loss.
        With ``train.engine: fast`` the model's conv blocks are swapped for the fused ones during
        the call (see :mod:`mmrphys.training.fastpath`) and restored before it returns.
        """
        swapped = fastpath.swap_conv_blocks(self.model) if self.engine == "fast" else []
        try:
            if swapped:
                t0 = time.time()
                compiled = fastpath.warm_up(self.precision)
                if self.dist.is_main and self.tcfg["progress"]:
                    how = "compiled (cached on disk by torch)" if compiled else "unfused (no torch.compile)"
                    print(f"[train] fused conv-block kernels: {how}, {time.time() - t0:.0f} s", flush=True)
            with deterministic_algorithms(self.cfg["deterministic"]):
                return self._fit(resume, evaluate_fn)
        except BaseException:
            self.write_progress(state="failed")
            raise
        finally:
            fastpath.restore_conv_blocks(swapped)

    def _fit(self, resume: bool, evaluate_fn: Callable | None) -> list[dict]:
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            dump_config(self.cfg, self.out / "config.yaml")
        self.dist.barrier()
        resumed = resume and self.load_checkpoint()
        if resumed:
            self._log({"kind": "resume", "epoch": self.epoch, "step": self.global_step})
        else:
            if resume and self.dist.is_main:
                print(f"no checkpoint in {self.ckpt_dir}; starting from scratch", flush=True)
            seed_everything(self.cfg["seed"])
            if self.dist.is_main:
                for name in ("metrics.jsonl", "metrics.csv"):
                    (self.out / name).unlink(missing_ok=True)
        self._t_start = time.time()
        self.write_progress()
        while self.epoch < self.tcfg["epochs"]:
            row = {"epoch": self.epoch + 1} | self.train_epoch()
            row["lr_end"] = self.optimizer.param_groups[0]["lr"]
            if evaluate_fn is not None and self.cfg["eval"]["every_epoch"]:
                row |= {f"val_{k}": v for k, v in (evaluate_fn(self.model, self.epoch + 1) or {}).items()}
            self.epoch += 1
            self.history.append(row)
            self._log({"kind": "epoch"} | row)
            self._write_csv(row)
            self.save_checkpoint()
            if "after_epoch" in self.hooks:
                self.hooks["after_epoch"](self, self.epoch)
            self.dist.barrier()
        if self.dist.is_main:
            self.plot_curves()
        self.write_progress(state="trained")
        return self.history

    # -- logs -----------------------------------------------------------------------------------
    @property
    def total_steps(self) -> int:
        return self.tcfg["epochs"] * self.steps_per_epoch

    def _timing(self) -> dict:
        """s/step (median of this process's last 20 steps) and ETA of the rest of the run."""
        if not self._step_times:
            return {}
        times = self._step_times[1:] or self._step_times  # the first step of a process warms up
        recent = sorted(times[-20:])
        s_step = recent[(len(recent) - 1) // 2]
        left = max(self.total_steps - self.global_step, 0)
        return {"s_per_step": round(s_step, 3), "eta_s": round(left * s_step, 1)}

    def _progress(self, loss: float, bar) -> None:
        if not self.dist.is_main:
            return
        timing = self._timing()
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}", s_step=timing.get("s_per_step"))
        elif self.tcfg["progress"] and (
            self.global_step % self.tcfg["log_every"] == 0 or self.global_step == self.total_steps
        ):
            print(
                f"[train] step {self.global_step}/{self.total_steps} epoch {self.epoch + 1}/"
                f"{self.tcfg['epochs']} loss {loss:.4f} {timing['s_per_step']:.2f} s/step "
                f"ETA {format_duration(timing['eta_s'])}",
                flush=True,
            )
        self.write_progress(loss=loss)

    def write_progress(self, state: str = "running", loss: float | None = None) -> None:
        """``progress.json``: where the run is and what it has cost (atomic; read by --status)."""
        if not self.dist.is_main or not self.out.is_dir():
            return
        path = self.out / PROGRESS
        rec = {}
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                rec = {}
        rec.update(
            {
                "state": state,
                "pid": os.getpid(),
                "epoch": min(self.epoch + 1, self.tcfg["epochs"]),
                "epochs": self.tcfg["epochs"],
                "step": self.global_step,
                "steps": self.total_steps,
                "precision": self.precision,
                "engine": self.engine,
                "threads": torch.get_num_threads(),
                "wall_s": round(time.time() - self._t_start, 1),
                "updated": time.time(),
            }
            | self._timing()
            | process_cost()
        )
        if loss is not None:
            rec["loss"] = round(loss, 6)
        write_json_atomic(rec, path)

    def _log(self, record: dict) -> None:
        if not self.dist.is_main:
            return
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(record) + "\n")
        if record["kind"] == "epoch":
            msg = " ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in record.items()
                if k != "kind"
            )
            print(f"[train] {msg}", flush=True)

    def _write_csv(self, row: dict) -> None:
        if not self.dist.is_main:
            return
        path = self.out / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def plot_curves(self) -> Path | None:
        """Loss and learning-rate curves from metrics.jsonl into ``curves.png``."""
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return None
        recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        steps = [r for r in recs if r["kind"] == "step"]
        if not steps:
            return None
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        fig = Figure(figsize=(10, 3.5), layout="tight")
        FigureCanvasAgg(fig)
        a1, a2 = fig.subplots(1, 2)
        xs = [r["step"] for r in steps]
        for key in sorted({k for r in steps for k in r if k.startswith("loss")}):
            a1.plot(xs, [r.get(key, math.nan) for r in steps], label=key)
        a1.set_xlabel("step")
        a1.set_ylabel("training loss")
        a1.legend()
        a2.plot(xs, [r["lr"] for r in steps])
        a2.set_xlabel("step")
        a2.set_ylabel("learning rate")
        out = self.out / "curves.png"
        tmp = out.with_name("curves.tmp.png")
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, out)
        return out


def format_duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _progress(total: int, desc: str, enabled: bool, initial: int = 0):
    """A tqdm bar on a terminal; None otherwise (the trainer then prints a line every log_every steps)."""
    if not enabled or not sys.stderr.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None
    return tqdm(total=total, initial=initial, desc=desc, mininterval=5.0, leave=False, dynamic_ncols=True)
