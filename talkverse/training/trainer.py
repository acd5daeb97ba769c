"""The training loop: DDP or FSDP2 on torch.distributed, accumulation, per-group clipping, logging, checkpoints.

One optimizer step = ``accum`` micro-batches; LR schedule, logging and saving count optimizer steps. Trainable weights,
their gradients and the Adam states are fp32 (master); with ``mixed_precision="bf16"`` the forward runs under bf16
autocast (CUDA). Per-block activation checkpointing covers each block together with its audio injector.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist

from .batch import Dropout, sample_generator
from .checkpoint import (export_meta, export_talkverse, find_resume_state, load_resume_state, save_resume_state)
from .objective import noisy_latents, roi_mse, sample_timestep
from .optim import clip_per_group, make_lr_scheduler, make_optimizer, param_groups

logger = logging.getLogger("talkverse.train")


@dataclass
class TrainConfig:
    output_path: str = "outputs/train"
    strategy: str = "lora"
    lora_rank: int = 128
    lora_alpha: float = 128.0
    learning_rate: float = 1e-5
    lora_lr_scale: float = 10.0
    framepack_lr_scale: float = 1.0
    weight_decay: float = 0.01
    warmup_steps: int = 1000
    max_grad_norm: float = 1.0
    batch_size: int = 1
    gradient_accumulation_steps: int = 8
    max_steps: int = 1000
    timestep_sampling: str = "uniform"
    dropout: Dropout = field(default_factory=Dropout)
    enable_roi_loss: bool = True
    enable_framepack: bool = True
    mixed_precision: str = "no"  # "bf16" on CUDA
    gradient_checkpointing: bool = True
    distributed_policy: str = "ddp"  # ddp | fsdp
    save_steps: int = 250
    keep_last: int = 3
    log_interval: int = 10
    seed: int = 0
    export_dtype: str = "bf16"
    num_workers: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def world() -> tuple[int, int]:
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def wrap_model(model: torch.nn.Module, policy: str, device: torch.device, mixed_precision: str) -> torch.nn.Module:
    """DDP, or FSDP2 ``fully_shard`` of each [block, its audio injector] then the root."""
    if not dist.is_initialized() or dist.get_world_size() == 1 and policy == "ddp":
        return model
    if policy == "ddp":
        ids = [device.index] if device.type == "cuda" else None
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids, find_unused_parameters=False)
    if policy != "fsdp":
        raise ValueError(f"distributed_policy must be ddp or fsdp, got {policy!r}")
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if mixed_precision == "bf16" else MixedPrecisionPolicy()
    inj = model.audio_injector
    for i, block in enumerate(model.blocks):
        j = inj.block_to_injector.get(i) if hasattr(inj, "block_to_injector") else None
        unit = [block] if j is None else [block, inj.injector[j], inj.injector_adain_layers[j]]
        fully_shard(unit, mp_policy=mp, reshard_after_forward=True)
    fully_shard(model, mp_policy=mp, reshard_after_forward=False)
    return model


class Trainer:
    """Runs ``cfg.max_steps`` optimizer steps over ``batches`` (a ``BatchSource``), resumable."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, source, null_context: torch.Tensor,
                 device: torch.device):
        self.cfg, self.source, self.device = cfg, source, device
        self.rank, self.world = world()
        self.text_len = model.config.text_len
        self.null_context = null_context.float()
        if cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        model.train()
        model.to(device)
        self.inner = model
        self.model = wrap_model(model, cfg.distributed_policy, device, cfg.mixed_precision)
        groups = param_groups(model, cfg.learning_rate, cfg.lora_lr_scale, cfg.framepack_lr_scale, cfg.weight_decay)
        self.optimizer = make_optimizer(groups)
        self.lr_scheduler = make_lr_scheduler(self.optimizer, cfg.warmup_steps)
        self.step = 0  # optimizer steps done
        self.out = Path(cfg.output_path)
        self.ckpt_root = self.out / "checkpoints"
        self.log_path = self.out / "train_log.jsonl"

    # ------------------------------------------------------------------ one micro-batch
    def _prepare(self, batch: dict, micro: int) -> tuple[dict, torch.Tensor, torch.Tensor | None]:
        """Per-sample draws (t, noise, modality dropout) and the model inputs."""
        cfg, dev = self.cfg, self.device
        b = batch["x0"].shape[0]
        ts, sigmas, eps = [], [], []
        ctx, audio, ref, motion = (batch["context"].clone(), batch["audio"].clone(), batch["ref"].clone(),
                                   batch["motion"].clone())
        null = torch.zeros_like(ctx[0])
        null[: self.null_context.shape[0]] = self.null_context[: ctx.shape[1]]
        for i in range(b):
            g = sample_generator(cfg.seed, self.step, micro, int(batch["index"][i]))
            t, s = sample_timestep(cfg.timestep_sampling, g)
            ts.append(t)
            sigmas.append(s)
            eps.append(torch.randn(batch["x0"][i].shape, generator=g))
            drop = torch.rand(4, generator=g)
            if drop[0] < cfg.dropout.text:
                ctx[i] = null
            if drop[1] < cfg.dropout.audio:
                audio[i] = 0
            if drop[2] < cfg.dropout.ref:
                ref[i] = 0
            if drop[3] < cfg.dropout.motion:
                motion[i] = 0
        x0 = batch["x0"].to(dev)
        sigma = torch.tensor(sigmas, dtype=torch.float32, device=dev)
        x_t, target = noisy_latents(x0, torch.stack(eps).to(dev), sigma)
        inputs = dict(hidden_states=x_t, timestep=torch.tensor(ts, dtype=torch.float32, device=dev),
                      encoder_hidden_states=ctx.to(dev), ref_latents=ref.to(dev), audio_features=audio.to(dev),
                      motion_latents=motion.to(dev) if cfg.enable_framepack else None)
        weight = batch.get("roi_weight") if cfg.enable_roi_loss else None
        return inputs, target, None if weight is None else weight.to(dev)

    @torch.no_grad()
    def eval_loss(self, batch: dict, timesteps: tuple[int, ...] = tuple(range(25, 1000, 50))) -> float:
        """Validation loss of ``batch`` at fixed timesteps with fixed noise and no modality dropout (the same draws
        every call, so values are comparable across training)."""
        cfg, dev = self.cfg, self.device
        was_training = self.inner.training
        self.inner.eval()
        total = 0.0
        for k, t in enumerate(timesteps):
            g = torch.Generator().manual_seed(10_007 * (k + 1))
            eps = torch.randn(batch["x0"].shape, generator=g).to(dev)
            sigma = torch.full((batch["x0"].shape[0],), 0.000999 * (t + 1), device=dev)
            x_t, target = noisy_latents(batch["x0"].to(dev), eps, sigma)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cfg.mixed_precision == "bf16"):
                pred = self.model(hidden_states=x_t, timestep=torch.full_like(sigma, float(t)),
                                  encoder_hidden_states=batch["context"].to(dev), ref_latents=batch["ref"].to(dev),
                                  audio_features=batch["audio"].to(dev),
                                  motion_latents=batch["motion"].to(dev) if cfg.enable_framepack else None).sample
            weight = batch.get("roi_weight") if cfg.enable_roi_loss else None
            total += float(roi_mse(pred, target, None if weight is None else weight.to(dev)).mean())
        self.inner.train(was_training)
        return total / len(timesteps)

    def micro_loss(self, batch: dict, micro: int) -> torch.Tensor:
        inputs, target, weight = self._prepare(batch, micro)
        use_bf16 = self.cfg.mixed_precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=use_bf16):
            pred = self.model(**inputs).sample
        return roi_mse(pred, target, weight).mean()

    # ------------------------------------------------------------------ the loop
    def resume(self, path: str | Path | None = "auto") -> bool:
        if path in (None, "none", "no", "false"):
            return False
        found = find_resume_state(self.ckpt_root) if path == "auto" else Path(path)
        if found is None:
            return False
        state = load_resume_state(found, self.model, self.optimizer, self.lr_scheduler)
        self.step = int(state["counters"]["step"])
        self.source.load_state_dict(state["sampler"])
        if self.rank == 0:
            logger.info("resumed from %s (step %d)", found, self.step)
        return True

    def _save(self) -> None:
        cfg = self.cfg
        export_talkverse(self.model, self.out / f"step-{self.step}.safetensors",
                         export_meta(cfg.strategy, self.step, cfg.lora_rank, cfg.lora_alpha),
                         torch.bfloat16 if cfg.export_dtype == "bf16" else torch.float32)
        save_resume_state(self.ckpt_root, self.step, self.model, self.optimizer, self.lr_scheduler,
                          {"step": self.step}, self.source.state_dict(), cfg.to_dict(), keep=cfg.keep_last)

    def _log(self, record: dict) -> None:
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")

    def train(self) -> dict:
        from tqdm.auto import tqdm

        cfg = self.cfg
        accum = max(1, cfg.gradient_accumulation_steps)
        bar = tqdm(total=cfg.max_steps, initial=self.step, desc="train", unit="step", disable=self.rank != 0)
        loss_acc = torch.zeros((), device=self.device)
        n_acc, t_last, last = 0, time.perf_counter(), {}
        while self.step < cfg.max_steps:
            for micro in range(accum):
                batch = self.source.next_batch()
                sync = micro == accum - 1
                ctx = self.model.no_sync() if (not sync and hasattr(self.model, "no_sync")) else _null()
                with ctx:
                    loss = self.micro_loss(batch, micro)
                    (loss / accum).backward()
                loss_acc += loss.detach()
                n_acc += 1
            norms = clip_per_group(self.optimizer, cfg.max_grad_norm)
            self.optimizer.step()
            self.lr_scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.step += 1
            bar.update()
            if self.step % cfg.log_interval == 0 or self.step == cfg.max_steps:
                mean = loss_acc / max(n_acc, 1)
                if dist.is_initialized():
                    dist.all_reduce(mean)
                    mean /= self.world
                dt = time.perf_counter() - t_last
                last = {"step": self.step, "loss": float(mean),
                        "lr": {g["name"]: g["lr"] for g in self.optimizer.param_groups},
                        "grad_norm": {k: float(v) for k, v in norms.items()},
                        "step_time_s": dt / max(1, n_acc // accum),
                        "samples_per_s": n_acc * cfg.batch_size * self.world / max(dt, 1e-9)}
                self._log(last)
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                loss_acc.zero_()
                n_acc, t_last = 0, time.perf_counter()
            if cfg.save_steps > 0 and (self.step % cfg.save_steps == 0 or self.step == cfg.max_steps):
                self._save()
        bar.close()
        return last


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


class BatchSource:
    """Deterministic, resumable stream of collated batches for this rank.

    Each epoch the global order of dataset indices is a permutation seeded by (seed, epoch); global batch k takes
    positions [k B W, (k+1) B W) and rank r the r-th slice of B, so a run on W ranks with batch B sees exactly the
    global batches of one process with batch B W. Only batches of one bucket are formed: indices are grouped by
    ``key_fn`` (bucket, has_motion) before batching. State: (epoch, batches consumed in the epoch)."""

    def __init__(self, dataset, batch_size: int, collate, key_fn=None, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        self.dataset, self.batch_size, self.collate = dataset, batch_size, collate
        self.seed, self.rank, self.world = seed, rank, world_size
        n = len(dataset)
        keys = [key_fn(i) for i in range(n)] if key_fn is not None else [0] * n
        self.groups: dict = {}
        for i, k in enumerate(keys):
            self.groups.setdefault(k, []).append(i)
        self.epoch, self.position = 0, 0
        self._batches = None
        global_batch = batch_size * world_size
        if all(len(v) < global_batch for v in self.groups.values()):
            raise ValueError(f"no bucket holds a full global batch of {global_batch} samples "
                             f"(bucket sizes: {sorted(len(v) for v in self.groups.values())})")

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        gb = self.batch_size * self.world
        batches = []
        for k in sorted(self.groups, key=str):
            idx = self.groups[k]
            perm = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
            batches += [perm[s:s + gb] for s in range(0, len(perm) - gb + 1, gb)]
        order = torch.randperm(len(batches), generator=g).tolist()
        return [batches[o] for o in order]

    def next_batch(self) -> dict:
        while True:
            if self._batches is None:
                self._batches = self._epoch_batches(self.epoch)
                if hasattr(self.dataset, "set_epoch"):
                    self.dataset.set_epoch(self.epoch)
            if self.position < len(self._batches):
                gb = self._batches[self.position]
                self.position += 1
                mine = gb[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
                return self.collate([self.dataset[i] for i in mine])
            self.epoch, self.position, self._batches = self.epoch + 1, 0, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self._batches = int(state["epoch"]), int(state["position"]), None


def init_distributed(device_arg: str | None = None) -> torch.device:
    """env:// process group under torchrun (nccl on CUDA, gloo on CPU); the device of this rank."""
    use_cuda = torch.cuda.is_available() and device_arg != "cpu"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        import datetime

        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        dist.init_process_group("nccl" if use_cuda else "gloo", timeout=datetime.timedelta(minutes=60))
    if device_arg:
        return torch.device(device_arg)
    if use_cuda:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def seed_everything(seed: int, rank: int = 0) -> None:
    import random

    import numpy as np

    random.seed(seed + rank)
    np.random.seed((seed + rank) % 2**32)
    torch.manual_seed(seed + rank)
