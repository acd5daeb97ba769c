#!/usr/bin/env python
"""Fit the demo model's tiny VAE: diffusers ``AutoencoderKLWan`` at base width 8 (the Wan2.2 layout: patch 2, 16x
spatial / 4x temporal compression, z_dim 48), trained on synthetic talking faces (talkverse.testing.synthetic).

    python scripts/fit_demo_vae.py --out demo_work/vae --minutes 20

Training: causal windows of 1 + 4k frames at 128x128 rendered on the fly from random identities and babble audio; the
posterior mean is decoded (no sampling, the pipeline uses the mean); loss = L1 + 10 x L1 inside the mouth box + a small
KL term; Adam. At the end the per-channel latent mean/std over fresh clips are written into the config as
``latents_mean``/``latents_std``, so normalised latents are ~N(0, 1) as the DiT expects. Writes a Diffusers ``vae/``
folder (config.json + safetensors) and ``Wan2.2_VAE.pth`` (original key layout) next to it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

DEMO_VAE = dict(base_dim=8, decoder_base_dim=8, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12,
                out_channels=12, patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16)


def clip_pool(n: int, size: int, seed: int, seconds: float = 2.0):
    """n rendered clips: (frames float [-1, 1] [3, T, H, W], mouth boxes [T, 4])."""
    from talkverse.testing.synthetic import babble_audio, draw_identity, openness_per_frame, render_clip

    pool = []
    for i in range(n):
        ident = draw_identity(seed * 100_003 + i)
        _, gate = babble_audio(seconds, seed * 7919 + i)
        res = render_clip(ident, openness_per_frame(gate), size=size, seed=seed + i)
        frames = torch.from_numpy(res.frames).permute(3, 0, 1, 2).float() / 127.5 - 1.0
        pool.append((frames, torch.from_numpy(np.asarray(res.mouth_box))))
    return pool


def sample_batch(pool, batch: int, frames: int, rng: np.random.Generator):
    xs, ws = [], []
    for _ in range(batch):
        clip, box = pool[int(rng.integers(len(pool)))]
        s = int(rng.integers(0, clip.shape[1] - frames + 1))
        x = clip[:, s:s + frames]
        w = torch.ones(1, frames, x.shape[2], x.shape[3])
        for t in range(frames):
            x0, y0, x1, y1 = (int(v) for v in box[s + t])
            w[0, t, max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = 11.0
        xs.append(x)
        ws.append(w)
    return torch.stack(xs), torch.stack(ws)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output vae/ folder (Diffusers layout)")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time budget")
    ap.add_argument("--max_steps", type=int, default=100_000, help="step cap (the time budget usually ends first)")
    ap.add_argument("--size", type=int, default=128, help="frame size")
    ap.add_argument("--frames", type=int, default=9, help="window length, 1 + 4k")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--pool", type=int, default=96, help="rendered clips to draw windows from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--init", default=None,
                    help="start from this fitted vae/ folder (the recipe's second stage: longer windows, so the "
                         "causal cache across 4-frame chunks is trained)")
    args = ap.parse_args(argv)
    from diffusers import AutoencoderKLWan

    from talkverse.convert.vae_keys import diffusers_to_original
    from talkverse.loaders.vae import vae_config

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    full = vae_config()
    if args.init:
        vae = AutoencoderKLWan.from_pretrained(args.init, local_files_only=True)
    else:
        vae = AutoencoderKLWan(**DEMO_VAE, latents_mean=full["latents_mean"], latents_std=full["latents_std"])
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr)
    pool = clip_pool(args.pool, args.size, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / "vae_fit_log.jsonl", "a")
    t0, step, ema = time.time(), 0, None
    while step < args.max_steps and time.time() - t0 < args.minutes * 60:
        x, w = sample_batch(pool, args.batch, args.frames, rng)
        h = vae._encode(x)
        mu, logvar = h[:, :48], h[:, 48:].clamp(-30, 20)
        rec = vae._decode(mu).sample
        l1 = ((rec - x).abs() * w).mean() / w.mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = l1 + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        ema = l1.item() if ema is None else 0.98 * ema + 0.02 * l1.item()
        if step % 20 == 0:
            rec_px = ((rec - x).abs().mean() * 127.5).item()
            log.write(json.dumps({"step": step, "l1_weighted": ema, "mae_px": rec_px, "t": time.time() - t0}) + "\n")
            log.flush()
    # Latent statistics on fresh clips -> the normalisation constants.
    with torch.no_grad():
        stats = []
        for frames, _ in clip_pool(16, args.size, args.seed + 999):
            n = 1 + 4 * ((frames.shape[1] - 1) // 4)
            stats.append(vae._encode(frames[None, :, :n])[:, :48].transpose(0, 1).flatten(1))
        z = torch.cat(stats, dim=1)
        mean, std = z.mean(dim=1), z.std(dim=1).clamp_min(1e-3)
    vae.register_to_config(latents_mean=[float(v) for v in mean], latents_std=[float(v) for v in std])
    vae.save_pretrained(str(out))
    nrb = DEMO_VAE["num_res_blocks"]
    torch.save({diffusers_to_original(k, nrb): v for k, v in vae.state_dict().items()}, out.parent / "Wan2.2_VAE.pth")
    print(f"vae: {step} steps in {time.time() - t0:.0f} s, weighted L1 (ema) {ema:.4f}; wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
