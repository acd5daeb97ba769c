"""The one process-group setup of every entry point (generation, batch, training): torchrun's env:// rendezvous.
Importing it is free (torch loads in the functions that need it), so the CLIs read the launch layout early."""

from __future__ import annotations

import datetime
import os


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun set it (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """RANK as torchrun set it (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def default_device(name: str | None = None):
    """``name`` when given, else cuda:LOCAL_RANK when CUDA is available, else the CPU (a ``torch.device``)."""
    import torch

    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def init_distributed(device: str | None = None, timeout_minutes: float = 60.0):
    """This rank's device; under torchrun (WORLD_SIZE > 1) also the default process group, once: nccl on CUDA
    (with the rank's CUDA device set first), gloo on the CPU."""
    import torch
    import torch.distributed as dist

    dev = default_device(device)
    if launched_world_size() > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    return dev


def world() -> tuple[int, int]:
    """(rank, world size) of the default group; (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def close_distributed() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def check_sizes(world: int, ulysses_size: int, cfg_parallel: bool, num_heads: int | None = None) -> None:
    """One clear error for incompatible sizes."""
    if ulysses_size < 1:
        raise ValueError(f"--ulysses_size must be >= 1, got {ulysses_size}")
    need = ulysses_size * (2 if cfg_parallel else 1)
    if need != world:
        what = f"--ulysses_size {ulysses_size} x 2 (--cfg_parallel) = {need}" if cfg_parallel else \
            f"--ulysses_size {ulysses_size}"
        raise ValueError(f"{what} does not match the world size {world}: launch {need} processes (torchrun "
                         f"--nproc_per_node={need})")
    if num_heads is not None and num_heads % ulysses_size:
        raise ValueError(f"--ulysses_size {ulysses_size} must divide the number of attention heads ({num_heads})")
