"""Flow-matching objective (training.md §7-§8).

x_t = (1 - sigma) x0 + sigma eps, target v = eps - x0; the DiT sees the integer timestep t.
Timestep sampling:
  * ``uniform`` (reference): t ~ U{0..999}, sigma = 0.000999 (t + 1) (the shift-1 table linspace(0.999, 0, 1001)[:-1]
    read backwards);
  * ``logit_normal``: sigma = sigmoid(N(0, 1)), t = round(1000 sigma) clamped;
  * ``shifted:<s>``: u ~ U(0, 1), sigma = s u / (1 + (s - 1) u).
Loss: ROI-weighted MSE per sample, mean(W (v_hat - v)^2) / (mean(W) + 1e-6) in fp32 over 48 x T x h x w, then the mean
over the batch (the reference's ``pred[0]`` against the whole batch is wrong for B > 1).
"""

from __future__ import annotations

import math

import torch

from .config import parse_sampling

NUM_TRAIN_TIMESTEPS = 1000


def sample_timestep(spec: str, generator: torch.Generator) -> tuple[int, float]:
    """One (integer t, sigma) pair drawn with ``generator`` (CPU)."""
    kind, s = parse_sampling(spec)
    if kind == "uniform":
        t = int(torch.randint(0, NUM_TRAIN_TIMESTEPS, (1,), generator=generator))
        return t, 0.000999 * (t + 1)
    if kind == "logit_normal":
        sigma = 1.0 / (1.0 + math.exp(-float(torch.randn(1, generator=generator))))
    else:
        u = float(torch.rand(1, generator=generator))
        sigma = s * u / (1 + (s - 1) * u)
    sigma = min(max(sigma, 0.000999), 0.999)
    return min(NUM_TRAIN_TIMESTEPS - 1, int(sigma * NUM_TRAIN_TIMESTEPS)), sigma


def noisy_latents(x0: torch.Tensor, eps: torch.Tensor, sigma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, target) for x0/eps [B, C, T, h, w] and sigma [B]."""
    s = sigma.view(-1, 1, 1, 1, 1).to(x0)
    return (1 - s) * x0 + s * eps, eps - x0


def roi_mse(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Per-sample ROI-weighted MSE [B] in fp32. ``weight`` [B, T, h, w] (broadcast over channels) or None = plain."""
    err = (pred.float() - target.float()) ** 2
    if weight is None:
        return err.flatten(1).mean(dim=1)
    w = torch.nan_to_num(weight.float(), nan=1.0)[:, None].expand_as(err)
    return (w * err).flatten(1).mean(dim=1) / (w.flatten(1).mean(dim=1) + 1e-6)
