"""Optimiser, LR schedule and clipping (training.md §9).

AdamW(0.9, 0.999, eps 1e-8, weight decay 0.01 on every group) over three groups: LoRA (lr x lora_lr_scale, 10),
``frame_packer.*`` (lr x framepack_lr_scale, 1) and every other trainable (lr). Linear warm-up factor step/warmup
for step < warmup (the first update has LR 0), then constant; counted in optimizer steps. Gradients are clipped to
``max_norm`` separately per group.
"""

from __future__ import annotations

import torch

from .setup import param_group_name

GROUPS = ("lora", "framepack", "base")


def param_groups(model: torch.nn.Module, lr: float, lora_lr_scale: float = 10.0, framepack_lr_scale: float = 1.0,
                 weight_decay: float = 0.01) -> list[dict]:
    scale = {"lora": lora_lr_scale, "framepack": framepack_lr_scale, "base": 1.0}
    buckets: dict[str, list] = {g: [] for g in GROUPS}
    for name, p in model.named_parameters():
        if p.requires_grad:
            buckets[param_group_name(name.removeprefix("module.").replace("_orig_mod.", ""))].append(p)
    return [{"params": ps, "lr": lr * scale[g], "weight_decay": weight_decay, "name": g}
            for g, ps in buckets.items() if ps]


def make_optimizer(groups: list[dict], fused: bool | None = None) -> torch.optim.AdamW:
    kw = {}
    if fused is not None:
        kw["fused"] = fused
    return torch.optim.AdamW(groups, betas=(0.9, 0.999), eps=1e-8, **kw)


def warmup_lambda(warmup_steps: int):
    def factor(step: int) -> float:
        return step / warmup_steps if warmup_steps > 0 and step < warmup_steps else 1.0

    return factor


def make_lr_scheduler(optimizer: torch.optim.Optimizer, warmup_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_lambda(warmup_steps))


def clip_per_group(optimizer: torch.optim.Optimizer, max_norm: float) -> dict[str, torch.Tensor]:
    """Clip each group's gradients to ``max_norm``; returns the pre-clip norms (device tensors, no host sync).
    DTensor (FSDP2) gradients are handled by ``clip_grad_norm_``'s DTensor support (the full norm, not per rank)."""
    norms = {}
    for g in optimizer.param_groups:
        params = [p for p in g["params"] if p.grad is not None]
        if params:
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
            if hasattr(norm, "full_tensor"):
                norm = norm.full_tensor()
            norms[g.get("name", str(len(norms)))] = norm
    return norms
