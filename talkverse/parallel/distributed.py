"""The one process-group setup of every entry point (generation, batch, training): torchrun's env:// rendezvous."""

from __future__ import annotations

import datetime
import os

import torch
import torch.distributed as dist


def launched_world_size() -> int:
    """WORLD_SIZE as torchrun set it (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    """RANK as torchrun set it (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def default_device(name: str | None = None) -> torch.device:
    """``name`` when given, else cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def init_distributed(device: str | None = None, timeout_minutes: float = 60.0) -> torch.device:
    """This rank's device; under torchrun (WORLD_SIZE > 1) also the default process group, once: nccl on CUDA
    (with the rank's CUDA device set first), gloo on the CPU."""
    dev = default_device(device)
    if launched_world_size() > 1 and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo",
                                timeout=datetime.timedelta(minutes=timeout_minutes))
    return dev


def world() -> tuple[int, int]:
    """(rank, world size) of the default group; (0, 1) without one."""
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def close_distributed() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
