"""One training run from a ``TrainConfig``: the process group, the model and its trainable set, the data, the trainer
and resume (training.md §5-§12). ``talkverse-train`` is a thin shell around :func:`run_training`."""

from __future__ import annotations

import logging
import random

import numpy as np
import torch

from ..parallel.distributed import close_distributed, init_distributed, world
from .config import TrainConfig, TrainingSetupError
from .data import build_batch_source

__all__ = ["TrainingSetupError", "run_training", "seed_everything"]


def seed_everything(seed: int, rank: int = 0) -> None:
    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed + rank)


def build_model(cfg: TrainConfig):
    """The DiT from ``cfg.ckpt_dir`` (+ ``init_ckpt``) in fp32 with the strategy's trainable set."""
    from ..loaders.layout import saved_transformer_config
    from ..loaders.transformer import load_transformer
    from .setup import apply_strategy, reinit_time_head

    config = cfg.model_config or saved_transformer_config(cfg.ckpt_dir) or "s2v_5b"
    model = load_transformer(cfg.ckpt_dir, cfg.init_ckpt, config=config, torch_dtype=torch.float32)
    if cfg.reinit_time_head:
        reinit_time_head(model)
    apply_strategy(model, cfg.strategy, cfg.lora_rank, cfg.lora_alpha)
    if not cfg.enable_framepack:
        model.frame_packer.requires_grad_(False)
    return model


def prepare_training(cfg: TrainConfig):
    """The process group, the model, the batches and the trainer (resumed when ``cfg.resume`` finds a state);
    every setup problem raises here, before the first step."""
    from .setup import trainable_count
    from .trainer import Trainer

    device = init_distributed(cfg.device)
    rank, world_size = world()
    cfg = cfg.resolved(device.type)
    # The same seed on every rank while the model is built: the spec init of the S2V modules and the LoRA A matrices
    # must be identical everywhere (FSDP2 shards each rank's own copy; DDP would broadcast rank 0's).
    seed_everything(cfg.seed, 0)
    model = build_model(cfg)
    seed_everything(cfg.seed, rank)
    if rank == 0:
        logging.info("strategy %s: %s trainable parameters", cfg.strategy, f"{trainable_count(model):,}")
    source, null = build_batch_source(cfg, model.config, device, rank, world_size)
    trainer = Trainer(model, cfg, source, null, device)
    trainer.resume(cfg.resume)
    return trainer


def run_training(cfg: TrainConfig) -> tuple[int, dict | None]:
    """Train to ``cfg.max_steps``; returns (the optimizer step reached, the last log record on rank 0, else None)."""
    trainer = prepare_training(cfg)
    last = trainer.train()
    close_distributed()
    return trainer.step, (last if trainer.rank == 0 else None)
