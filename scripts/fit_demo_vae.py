#!/usr/bin/env python
"""Fit the demo model's tiny VAE: diffusers ``AutoencoderKLWan`` in the Wan2.2 layout (patch 2, 16x spatial / 4x
temporal compression, z_dim 48) at a small base width, trained on synthetic talking faces
(talkverse.testing.synthetic).

    python scripts/fit_demo_vae.py --out demo_work/vae_stage1 --frames 1 --batch 8 --max_steps 6000
    python scripts/fit_demo_vae.py --init demo_work/vae_stage1 --out demo_work/vae --frames 9 --batch 2 --max_steps 800

Training: causal windows of 1 + 4k frames at 128x128 from a pool of rendered clips (random identities and babble);
the posterior mean is decoded (no sampling, the pipeline uses the mean). Loss = L1 + MSE, each weighted x
``--roi_weight`` inside the mouth box and both eye boxes (the eyes are ~9 px wide: unweighted, a small VAE trades
them away first), plus a small KL term; Adam, constant LR, then linear decay to 10 % over the last ``--decay``
fraction of the steps. Stage 1 (``--frames 1``) learns the image through the first-frame path, which every later
4-frame chunk shares its spatial kernels with; stage 2 (``--frames 9``) trains the temporal layers and the causal cache
that carries context from one chunk to the next.

At the end the per-channel latent mean/std over fresh clips are written into the config as
``latents_mean``/``latents_std`` (normalised latents ~N(0, 1), as the DiT expects), and held-out clips (identities
never in the pool) are encoded and decoded as videos: per-frame PSNR and the eye readout (dark-pixel fraction in the
eye boxes, ``eye_readout``) of the reconstruction against the ground truth go to ``<out>/../<name>_eval.json``.
Writes a Diffusers ``vae/`` folder (config.json + safetensors) and ``Wan2.2_VAE.pth`` (original key layout) next to
it.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

DEMO_VAE = dict(base_dim=16, decoder_base_dim=16, z_dim=48, dim_mult=[1, 2, 4, 4], num_res_blocks=1, attn_scales=[],
                temperal_downsample=[False, True, True], dropout=0.0, is_residual=True, in_channels=12,
                out_channels=12, patch_size=2, scale_factor_temporal=4, scale_factor_spatial=16)


def render_pool(n: int, size: int, seed: int, seconds: float = 2.0):
    """n rendered clips: (uint8 frames [T, H, W, 3], loss weight boxes [T, 3, 4] xyxy: mouth, eye, eye)."""
    from talkverse.testing.synthetic import babble_audio, draw_identity, openness_per_frame, render_clip
    from talkverse.testing.synthetic.faces import eye_boxes

    pool = []
    for i in range(n):
        ident = draw_identity(seed * 100_003 + i)
        _, gate = babble_audio(seconds, seed * 7919 + i)
        res = render_clip(ident, openness_per_frame(gate), size=size, seed=seed + i)
        boxes = np.concatenate([np.asarray(res.mouth_box)[:, None], eye_boxes(res.keypoints)], axis=1)
        pool.append((res.frames, boxes, res.keypoints))
    return pool


def to_video(frames: np.ndarray) -> torch.Tensor:
    """uint8 [T, H, W, 3] -> float [3, T, H, W] in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float() / 127.5 - 1.0


def sample_batch(pool, batch: int, frames: int, roi_weight: float, rng: np.random.Generator):
    xs, ws = [], []
    for _ in range(batch):
        clip, boxes, _ = pool[int(rng.integers(len(pool)))]
        s = int(rng.integers(0, clip.shape[0] - frames + 1))
        x = to_video(clip[s:s + frames])
        w = torch.ones(1, frames, x.shape[2], x.shape[3])
        for t in range(frames):
            for x0, y0, x1, y1 in boxes[s + t]:
                w[0, t, max(0, y0 - 2):y1 + 2, max(0, x0 - 2):x1 + 2] = roi_weight
        xs.append(x)
        ws.append(w)
    return torch.stack(xs), torch.stack(ws)


def stream_round_trip(vae, x: torch.Tensor, warm_frames: int) -> torch.Tensor:
    """Encode and decode ``x`` [B, 3, 1 + 4n, H, W] chunk by chunk as the pipeline does (frame 0 alone, then groups
    of 4, causal caches carried between chunks; each latent frame decoded as soon as it exists). The first
    ``warm_frames`` frames (0 or 1 + 4k) run without gradient and only fill the caches; returns the reconstruction of
    the frames after them [B, 3, T - warm_frames, H, W] (unclamped, for the loss)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import WanCausalConv3d, patchify, unpatchify

    def slots(module):
        return [None] * sum(isinstance(m, WanCausalConv3d) for m in module.modules())

    enc_cache, dec_cache = slots(vae.encoder), slots(vae.decoder)
    p, z = vae.config.patch_size, vae.config.z_dim
    chunks = [x[:, :, :1]] + [x[:, :, 1 + 4 * i:5 + 4 * i] for i in range((x.shape[2] - 1) // 4)]
    outs, done = [], 0
    for i, chunk in enumerate(chunks):
        with torch.set_grad_enabled(done >= warm_frames and torch.is_grad_enabled()):
            h = vae.quant_conv(vae.encoder(patchify(chunk, patch_size=p), feat_cache=enc_cache, feat_idx=[0]))
            out = vae.decoder(vae.post_quant_conv(h[:, :z]), feat_cache=dec_cache, feat_idx=[0], first_chunk=i == 0)
            out = unpatchify(out, patch_size=p)
        if done >= warm_frames:
            outs.append(out)
        done += chunk.shape[2]
    return torch.cat(outs, dim=2)


def lr_factor(step: int, total: int, decay: float) -> float:
    start = int(total * (1 - decay))
    return 1.0 if step < start else 1.0 - 0.9 * (step - start) / max(1, total - start)


@torch.no_grad()
def evaluate(vae, size: int, seed: int, clips: int = 8, frames: int = 97) -> dict:
    """Held-out reconstruction: each clip encoded and decoded as one video through the pipeline's VAE wrapper."""
    from talkverse.models.vae import TalkVerseVAE
    from talkverse.testing.synthetic.faces import eye_readout

    codec = TalkVerseVAE(vae.eval())
    psnrs, eyes_rec, eyes_gt = [], [], []
    for frames_u8, _, kp in render_pool(clips, size, seed, seconds=frames / 25 + 0.1):
        x = to_video(frames_u8[:frames])[None]
        rec = codec.decode(codec.encode(x))[0]
        rec_u8 = ((rec.permute(1, 2, 3, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        gt = frames_u8[:rec_u8.shape[0]]
        mse = ((rec_u8.astype(np.float64) - gt) ** 2).reshape(len(gt), -1).mean(axis=1)
        psnrs += list(10 * np.log10(255.0**2 / np.maximum(mse, 1e-10)))
        eyes_rec.append(float(np.median(eye_readout(rec_u8, kp))))
        eyes_gt.append(float(np.median(eye_readout(gt, kp))))
    return {"psnr_median": float(np.median(psnrs)), "psnr_min": float(np.min(psnrs)),
            "psnr_first_frame_median": float(np.median(psnrs[::frames])),
            "eye_readout_reconstruction": eyes_rec, "eye_readout_ground_truth": eyes_gt}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output vae/ folder (Diffusers layout)")
    ap.add_argument("--minutes", type=float, default=600.0, help="training time budget (a safety stop)")
    ap.add_argument("--max_steps", type=int, default=6000, help="optimizer steps (the LR schedule is laid out on it)")
    ap.add_argument("--size", type=int, default=128, help="frame size")
    ap.add_argument("--frames", type=int, default=1, help="window length, 1 + 4k")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--decay", type=float, default=0.3, help="fraction of the steps with a linear LR decay to 10 %%")
    ap.add_argument("--roi_weight", type=float, default=10.0, help="loss weight inside the mouth and eye boxes")
    ap.add_argument("--kl", type=float, default=1e-6)
    ap.add_argument("--base_dim", type=int, default=DEMO_VAE["base_dim"], help="encoder/decoder base width")
    ap.add_argument("--pool", type=int, default=256, help="rendered clips to draw windows from")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--init", default=None, help="start from this fitted vae/ folder (stage 2)")
    ap.add_argument("--warm_chunks", type=int, default=0,
                    help="stage 3: before each window, up to this many 4-frame chunks (a random number) pass through "
                         "encoder and decoder without gradient, so the window is reconstructed from warm causal "
                         "caches, as deep inside the pipeline's 97-frame decodes")
    args = ap.parse_args(argv)
    from diffusers import AutoencoderKLWan

    from talkverse.convert.vae_keys import diffusers_to_original
    from talkverse.loaders.vae import vae_config

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    if args.init:
        vae = AutoencoderKLWan.from_pretrained(args.init, local_files_only=True, torch_dtype=torch.float32)
    else:
        full = vae_config()
        arch = dict(DEMO_VAE, base_dim=args.base_dim, decoder_base_dim=args.base_dim)
        vae = AutoencoderKLWan(**arch, latents_mean=full["latents_mean"], latents_std=full["latents_std"])
    opt = torch.optim.Adam(vae.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, args.max_steps, args.decay))
    seconds = max(2.0, (args.frames + 4 * args.warm_chunks) / 25 + 0.2)
    pool = render_pool(args.pool, args.size, args.seed, seconds=seconds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = open(out.parent / f"{out.name}_fit_log.jsonl", "a")
    t0, step, ema = time.time(), 0, None
    vae.train()
    while step < args.max_steps and time.time() - t0 < args.minutes * 60:
        warm = 0
        if args.warm_chunks:
            k = int(rng.integers(0, args.warm_chunks + 1))
            warm = 0 if k == 0 else 1 + 4 * k
        x, w = sample_batch(pool, args.batch, args.frames + warm - (1 if warm else 0), args.roi_weight, rng)
        if warm:
            rec = stream_round_trip(vae, x, warm)
            x, w = x[:, :, warm:], w[:, :, warm:]
            mu = logvar = torch.zeros(1)
        else:
            h = vae._encode(x)
            mu, logvar = h[:, :48], h[:, 48:].clamp(-30, 20)
            rec = vae._decode(mu).sample
        err = rec - x
        rec_loss = ((err.abs() + err.pow(2)) * w).mean() / w.mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = rec_loss + args.kl * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        sched.step()
        step += 1
        ema = rec_loss.item() if ema is None else 0.98 * ema + 0.02 * rec_loss.item()
        if step % 50 == 0:
            psnr = 10 * np.log10(4.0 / max(err.pow(2).mean().item(), 1e-10))
            log.write(json.dumps({"step": step, "loss_ema": ema, "batch_psnr": psnr, "lr": sched.get_last_lr()[0],
                                  "t": time.time() - t0}) + "\n")
            log.flush()
    vae.eval()
    with torch.no_grad():  # latent statistics on fresh clips -> the normalisation constants
        stats = []
        for frames_u8, _, _ in render_pool(32, args.size, args.seed + 999):
            n = 1 + 4 * ((frames_u8.shape[0] - 1) // 4)
            stats.append(vae._encode(to_video(frames_u8[:n])[None])[:, :48].transpose(0, 1).flatten(1))
        z = torch.cat(stats, dim=1)
        mean, std = z.mean(dim=1), z.std(dim=1).clamp_min(1e-3)
    vae.register_to_config(latents_mean=[float(v) for v in mean], latents_std=[float(v) for v in std])
    vae.save_pretrained(str(out))
    nrb = vae.config.num_res_blocks
    torch.save({diffusers_to_original(k, nrb): v for k, v in vae.state_dict().items()}, out.parent / "Wan2.2_VAE.pth")
    report = {"steps": step, "seconds": time.time() - t0, "loss_ema": ema,
              "heldout": evaluate(vae, args.size, seed=7_000_000 + args.seed)}
    (out.parent / f"{out.name}_eval.json").write_text(json.dumps(report, indent=1))
    print(f"vae: {step} steps in {report['seconds']:.0f} s; held-out PSNR median {report['heldout']['psnr_median']:.2f}"
          f" dB (min {report['heldout']['psnr_min']:.2f}); wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
