"""Process layout for generating one video on several ranks: a DeviceMesh ("cfg", "sp").

* ``sp`` (Ulysses): the ranks of one group split every DiT forward's token sequence (talkverse.parallel.ulysses).
* ``cfg``: with ``cfg_parallel`` the conditional branch runs on the first SP group and the unconditional one on the
  second; the two velocities are exchanged with one all_gather per step.
* Rank 0 is the host: it alone loads and runs umT5, wav2vec2 and the VAE, broadcasts the encoded inputs and the motion
  latents of each clip, decodes and writes the mp4. The other ranks hold only the DiT.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class ParallelState:
    world: int
    rank: int
    sp_size: int
    cfg_parallel: bool
    sp_group: object
    cfg_group: object | None
    device: torch.device

    @property
    def is_host(self) -> bool:
        return self.rank == 0

    @property
    def cfg_rank(self) -> int:
        """0: this rank computes the conditional branch, 1: the unconditional one (only with cfg_parallel)."""
        return self.rank // self.sp_size if self.cfg_parallel else 0

    def broadcast_object(self, obj=None):
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.device if self.device.type == "cuda" else None)
        return box[0]

    def broadcast_tensor(self, t: torch.Tensor | None, shape: tuple[int, ...], dtype=torch.float32) -> torch.Tensor:
        buf = t.to(self.device, dtype).contiguous() if self.is_host else torch.empty(shape, dtype=dtype,
                                                                                    device=self.device)
        dist.broadcast(buf, src=0)
        return buf


def check_sizes(world: int, ulysses_size: int, cfg_parallel: bool, num_heads: int | None = None) -> None:
    """One clear error for incompatible sizes."""
    if ulysses_size < 1:
        raise ValueError(f"--ulysses_size must be >= 1, got {ulysses_size}")
    need = ulysses_size * (2 if cfg_parallel else 1)
    if need != world:
        raise ValueError(f"--ulysses_size {ulysses_size}{' x 2 (--cfg_parallel)' if cfg_parallel else ''} = {need} "
                         f"does not match the world size {world} (torchrun --nproc_per_node)")
    if num_heads is not None and num_heads % ulysses_size:
        raise ValueError(f"--ulysses_size {ulysses_size} must divide the number of attention heads ({num_heads})")


def build_state(ulysses_size: int, cfg_parallel: bool, device: torch.device,
                num_heads: int | None = None) -> ParallelState:
    """Initialise (or reuse) the env:// process group and the ("cfg", "sp") mesh."""
    import os

    from torch.distributed.device_mesh import init_device_mesh

    world = int(os.environ.get("WORLD_SIZE", "1"))
    check_sizes(world, ulysses_size, cfg_parallel, num_heads)
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    mesh = init_device_mesh(device.type, (2 if cfg_parallel else 1, ulysses_size), mesh_dim_names=("cfg", "sp"))
    return ParallelState(world=world, rank=dist.get_rank(), sp_size=ulysses_size, cfg_parallel=cfg_parallel,
                         sp_group=mesh["sp"].get_group(), cfg_group=mesh["cfg"].get_group() if cfg_parallel else None,
                         device=device)
