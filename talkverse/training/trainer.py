"""The training loop: DDP or FSDP2 on torch.distributed, accumulation, per-group clipping, logging, checkpoints.

One optimizer step = ``accum`` micro-batches; LR schedule, logging and saving count optimizer steps. Trainable weights,
their gradients and the Adam states are fp32 (master); with ``mixed_precision="bf16"`` the forward runs under bf16
autocast (CUDA). Per-block activation checkpointing covers each block together with its audio injector.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from pathlib import Path

import torch
import torch.distributed as dist

from ..parallel.distributed import world
from .batch import sample_generator
from .checkpoint import export_meta, export_talkverse, find_resume_state, load_resume_state, save_resume_state
from .config import NO_RESUME, TrainConfig
from .objective import noisy_latents, roi_mse, sample_timestep
from .optim import clip_per_group, make_lr_scheduler, make_optimizer, param_groups
from .parallelize import parallelize

logger = logging.getLogger("talkverse.train")


class Trainer:
    """Runs ``cfg.max_steps`` optimizer steps over ``source`` (a ``talkverse.data.batches.BatchSource``), resumable."""

    def __init__(self, model: torch.nn.Module, cfg: TrainConfig, source, null_context: torch.Tensor,
                 device: torch.device):
        self.cfg, self.source, self.device = cfg.resolved(device.type), source, device
        cfg = self.cfg
        self.rank, self.world = world()
        self.text_len = model.config.text_len
        self.null_context = null_context.float()
        if cfg.gradient_checkpointing:
            model.enable_gradient_checkpointing()
        model.train()
        model.to(device)
        self.inner = model
        self.model = parallelize(model, cfg.distributed_policy, device, cfg.mixed_precision)
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
        if path is None or path in NO_RESUME:
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
                ctx = self.model.no_sync() if (not sync and hasattr(self.model, "no_sync")) else contextlib.nullcontext()
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
