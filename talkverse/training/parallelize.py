"""How the trainer's model is parallelised: DDP, or FSDP2 per [block + its audio injector] (training.md §11), each
applied by one function, chosen in one place (:func:`parallelize`)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def apply_ddp(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    ids = [device.index] if device.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)


def apply_fsdp(model: torch.nn.Module, mixed_precision: str) -> torch.nn.Module:
    """FSDP2 ``fully_shard`` of each [block, its audio injector and AdaLN] unit, then the root."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if mixed_precision == "bf16" else MixedPrecisionPolicy()
    inj = model.audio_injector
    for i, block in enumerate(model.blocks):
        j = inj.block_to_injector.get(i)
        unit = [block] if j is None else [block, inj.injector[j], inj.injector_adain_layers[j]]
        fully_shard(unit, mp_policy=mp, reshard_after_forward=True)
    fully_shard(model, mp_policy=mp, reshard_after_forward=False)
    return model


def parallelize(model: torch.nn.Module, policy: str, device: torch.device, mixed_precision: str) -> torch.nn.Module:
    """``policy`` "ddp" or "fsdp" over the default process group; the model itself in one process."""
    if policy not in ("ddp", "fsdp"):
        raise ValueError(f"distributed_policy must be ddp or fsdp, got {policy!r}")
    if not dist.is_initialized() or dist.get_world_size() == 1 and policy == "ddp":
        return model
    return apply_ddp(model, device) if policy == "ddp" else apply_fsdp(model, mixed_precision)
