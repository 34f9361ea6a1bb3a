"""Single-process or torchrun/DDP execution, behind one small object.

``mmrphys train`` run under ``torchrun --nproc_per_node N`` sees ``WORLD_SIZE``/``RANK``/
``LOCAL_RANK`` in the environment and initialises a process group (NCCL on GPUs, gloo on CPU).
Everything else in the trainer is written once:

- data: :func:`make_sampler` returns a ``DistributedSampler`` in both modes (one replica when not
  distributed). With rank r taking ``perm[r::W]``, global batch i of a W-rank run is exactly batch
  i of a single-process run with the same global batch, so the two runs see the same samples.
- logging and checkpoints: only where :attr:`Dist.is_main`.
- metrics: :meth:`Dist.mean` averages scalars, :meth:`Dist.gather` collects Python objects.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as tdist
from torch.utils.data.distributed import DistributedSampler


@dataclass
class Dist:
    """Rank, world size and device of this process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    initialized_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.enabled:
            tdist.barrier()

    def mean(self, value: float) -> float:
        """Average a Python float over ranks."""
        if not self.enabled:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        tdist.all_reduce(t)
        return float(t.item()) / self.world_size

    def sum(self, value: float) -> float:
        if not self.enabled:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._comm_device())
        tdist.all_reduce(t)
        return float(t.item())

    def gather(self, obj) -> list:
        """Every rank's ``obj`` in rank order (on every rank)."""
        if not self.enabled:
            return [obj]
        out = [None] * self.world_size
        tdist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj]
        tdist.broadcast_object_list(box, src=0)
        return box[0]

    def _comm_device(self):
        return self.device if tdist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.initialized_here and tdist.is_initialized():
            tdist.destroy_process_group()


def pick_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """``auto``: the local GPU when available, else CPU."""
    if name == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    if name == "cuda":
        return torch.device(f"cuda:{local_rank}")
    return torch.device(name)


def setup(device: str = "auto") -> Dist:
    """Initialise DDP when launched by torchrun (``WORLD_SIZE`` > 1), else a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world <= 1:
        return Dist(device=dev)
    here = False
    if not tdist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        tdist.init_process_group(backend=backend)
        here = True
    return Dist(rank=rank, world_size=world, local_rank=local, device=dev, initialized_here=here)


def make_sampler(n: int, dist: Dist, seed: int, shuffle: bool = True, drop_last: bool = False):
    """A ``DistributedSampler`` over ``range(n)``, also in single-process mode (1 replica)."""
    return DistributedSampler(
        range(n),
        num_replicas=dist.world_size,
        rank=dist.rank,
        shuffle=shuffle,
        seed=seed,
        drop_last=drop_last,
    )


def wrap_model(model: torch.nn.Module, dist: Dist) -> torch.nn.Module:
    """DDP-wrap when distributed (unused parameters allowed: TSFM is skipped without labels)."""
    if not dist.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [dist.device.index] if dist.device.type == "cuda" else None
    return DDP(model, device_ids=ids, find_unused_parameters=True)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
