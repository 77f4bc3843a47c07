"""Several GPUs (or several CPU processes) with DistributedDataParallel.

How a multi-GPU run works here
------------------------------
Launch the same command once per GPU with ``torchrun``::

    torchrun --standalone --nproc_per_node=8 -m comp448.train unet-nuclei-gpu --out runs/unet

``torchrun`` starts 8 processes and gives each the environment variables ``RANK`` (0..7, the
process's index), ``LOCAL_RANK`` (its GPU on this node), ``WORLD_SIZE`` (8), ``MASTER_ADDR`` and
``MASTER_PORT`` (where the processes meet). :func:`init_distributed` reads them and joins the
process group (NCCL on CUDA, gloo on the CPU). The engine then

- wraps the model in ``torch.nn.parallel.DistributedDataParallel`` (DDP): every process keeps a full
  copy of the model, runs forward/backward on its own shard of the batch, and DDP *averages* the
  gradients across processes during ``backward()``; so each optimiser step sees the gradient of the
  mean loss over the **global** batch, exactly as one process with the whole batch would;
- gives each process a :class:`torch.utils.data.distributed.DistributedSampler`: the dataset order is
  permuted with the same seed on every process (``seed + epoch``), and process ``r`` takes positions
  ``r, r + W, r + 2W, ...`` of that permutation; ``TrainConfig.batch_size`` is the global batch and each
  process loads ``batch_size // WORLD_SIZE`` of it;
- validates, logs, plots and writes checkpoints on rank 0 only, and broadcasts the validation
  numbers to the other ranks so that early stopping stops every process at the same epoch.

Single-process runs use the same sampler with ``num_replicas=1``, so a single-process run and a
W-process run on the same global batch visit the same samples in the same global batches (the test
``tests/train/test_distributed.py`` checks that their weights agree). BatchNorm statistics are
per-process unless ``TrainConfig.sync_batchnorm`` (default on) converts them to ``SyncBatchNorm``.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data.distributed import DistributedSampler


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, GPU ``local_rank``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {raw!r}") from None


def init_distributed(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by torchrun's environment (``RANK``, ``WORLD_SIZE``, ...).

    Without those variables (a plain ``python`` run) nothing is initialised and ``DistInfo()``
    (rank 0 of 1) is returned, so the same script runs with and without torchrun.
    ``backend=None`` picks ``"nccl"`` when CUDA is available and ``"gloo"`` otherwise. On CUDA the
    process binds to GPU ``LOCAL_RANK``. Calling it again after the group exists returns its info.
    """
    if dist.is_available() and dist.is_initialized():
        return dist_info()
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo()
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise ValueError(f"WORLD_SIZE={world} but environment variable {name} is not set; "
                             "launch with torchrun or set MASTER_ADDR/MASTER_PORT")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo", "mpi"):
        raise ValueError(f"backend must be 'nccl', 'gloo' or 'mpi', got {backend!r}")
    if backend == "nccl":
        torch.cuda.set_device(local)
    from datetime import timedelta
    dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world,
                            timeout=timedelta(seconds=timeout_s))
    return DistInfo(rank, world, local)


def dist_info() -> DistInfo:
    """The current process's :class:`DistInfo` (rank 0 of 1 when no process group exists)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()))


def is_main_process() -> bool:
    """True on rank 0 (and in a single-process run): the one that logs and writes files."""
    return dist_info().is_main


def cleanup() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist_info().enabled:
        dist.barrier()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all processes (returns ``t`` unchanged in a single process)."""
    if dist_info().enabled:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def broadcast_object(obj, src: int = 0):
    """Rank ``src``'s ``obj`` on every process (any picklable object)."""
    if not dist_info().enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def make_sampler(dataset, *, shuffle: bool, seed: int, drop_last: bool = False,
                 info: DistInfo | None = None) -> DistributedSampler:
    """This process's share of ``dataset`` (all of it, in one permutation, when single-process).

    Call ``sampler.set_epoch(epoch)`` before each epoch: the permutation is drawn from
    ``seed + epoch``, identical on every process, which also makes a resumed run deterministic.
    """
    info = info or dist_info()
    return DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank,
                              shuffle=shuffle, seed=seed, drop_last=drop_last)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` now (for MASTER_PORT in tests and local launches)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
