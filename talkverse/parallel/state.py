"""Process layout for generating one video on several ranks: a DeviceMesh ("cfg", "sp") (docs/parallel.md).

* ``sp`` (Ulysses): the ranks of one group split every DiT forward's token sequence (talkverse.parallel.ulysses).
* ``cfg``: with ``cfg_parallel`` the conditional branch runs on the first SP group and the unconditional one on the
  second; the two velocities are exchanged with one all_gather per step (:meth:`ParallelState.exchange_cfg`).
* Rank 0 is the host: it alone holds umT5, wav2vec2 and the VAE, encodes the inputs, decodes and writes; it shares
  (broadcasts) the encoded inputs and each clip's motion latents with the other ranks, which hold only the DiT.

:class:`SingleProcess` is the same interface for one process: every share is the identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist

from .distributed import check_sizes, init_distributed, launched_world_size


class SingleProcess:
    """No parallelism: this process is the host and shares nothing."""

    is_host = True
    sp_size = 1
    cfg_parallel = False
    cfg_rank = 0

    def share(self, obj):
        return obj

    def share_tensor(self, tensor: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        return tensor


@dataclass
class ParallelState:
    world: int
    rank: int
    sp_size: int
    cfg_parallel: bool
    sp_group: object
    cfg_group: object | None
    device: torch.device
    weight_mesh: object | None = None  # a 1-D DeviceMesh over every rank when the DiT weights are sharded

    @property
    def is_host(self) -> bool:
        return self.rank == 0

    @property
    def cfg_rank(self) -> int:
        """0: this rank computes the conditional branch, 1: the unconditional one (only with cfg_parallel)."""
        return self.rank // self.sp_size if self.cfg_parallel else 0

    def share(self, obj=None):
        """The host's ``obj`` on every rank (pickled broadcast; other ranks pass None)."""
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def share_tensor(self, tensor: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        """The host's fp32 ``tensor`` of ``shape`` on every rank's device (other ranks pass None)."""
        buf = tensor.to(self.device, torch.float32).contiguous() if self.is_host else \
            torch.empty(shape, dtype=torch.float32, device=self.device)
        dist.broadcast(buf, src=0)
        return buf

    def exchange_cfg(self, mine: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's branch velocity -> (v_cond, v_uncond), gathered over the "cfg" group."""
        both = [torch.empty_like(mine) for _ in range(2)]
        dist.all_gather(both, mine.contiguous(), group=self.cfg_group)
        return both[0], both[1]


def build_state(ulysses_size: int, cfg_parallel: bool, device: str | None = None,
                shard_weights: bool = False) -> ParallelState:
    """The ("cfg", "sp") mesh over torchrun's ranks (the process group is created here if needed);
    ``shard_weights`` adds the 1-D mesh the DiT weights are sharded over (``talkverse.parallel.fsdp``)."""
    from torch.distributed.device_mesh import init_device_mesh

    check_sizes(launched_world_size(), ulysses_size, cfg_parallel)
    dev = init_distributed(device)
    mesh = init_device_mesh(dev.type, (2 if cfg_parallel else 1, ulysses_size), mesh_dim_names=("cfg", "sp"))
    weights = None
    if shard_weights:  # its own communicator: its all-gathers never interleave with the SP all_to_alls
        from torch.distributed.device_mesh import DeviceMesh

        weights = DeviceMesh.from_group(dist.new_group(list(range(dist.get_world_size()))), dev.type)
    return ParallelState(world=dist.get_world_size(), rank=dist.get_rank(), sp_size=ulysses_size,
                         cfg_parallel=cfg_parallel, sp_group=mesh["sp"].get_group(),
                         cfg_group=mesh["cfg"].get_group() if cfg_parallel else None, device=dev,
                         weight_mesh=weights)
