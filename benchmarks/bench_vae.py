#!/usr/bin/env python
"""Wan2.2 VAE speed and memory: encoding the 73 motion frames and decoding one clip, one-shot vs streaming.

CUDA: the real VAE (configs/vae_wan22.yaml, random weights, fp32 as in the reference; --dtype bf16 to try) at
704x1280: encode 73 frames -> 19 latents; decode a continuation clip (19 motion + 30 new latents -> 193 frames, what
the pipeline decodes) and the 30 new latents alone (117 frames). One-shot (``TalkVerseVAE.encode/decode``: all
frames in memory) vs streaming (``StreamingEncoder``/``StreamingDecoder``: one latent at a time, frames consumed as
they come). Reports ms and peak CUDA memory per variant, timed interleaved.

CPU (automatic, or --tiny): the tiny pipeline's VAE (base width 4) at 64x64 with 17 frames / 6 latents.

    python benchmarks/bench_vae.py --table benchmarks/results_vae.md
"""

from __future__ import annotations

import torch

import common  # noqa: F401
from talkverse.media.sizes import parse_width_height
from talkverse.perf.timing import Reporter, environment, interleaved, peak_memory_gb, reset_peak, stats, time_once


def parse():
    p = common.base_parser(__doc__)
    p.add_argument("--size", default=None, help="WxH, width first pixels (default 1280x704 CUDA, 64x64 CPU)")
    p.add_argument("--frames", type=int, default=None, help="frames to encode (default 73 CUDA, 17 CPU)")
    p.add_argument("--latents", type=int, default=None,
                   help="latents of the decoded clip (default 49 = 19 motion + 30 new on CUDA, 6 on the CPU)")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    return p.parse_args()


def build_vae(tiny: bool, device: torch.device, dtype: torch.dtype):
    from diffusers import AutoencoderKLWan

    from talkverse.loaders.vae import vae_config
    from talkverse.models.vae import TalkVerseVAE
    from talkverse.testing.tiny import TINY_VAE

    torch.manual_seed(0)
    full = vae_config()
    kw = dict(TINY_VAE, latents_mean=full["latents_mean"], latents_std=full["latents_std"]) if tiny else full
    with torch.device(device):
        vae = AutoencoderKLWan(**kw)
    return TalkVerseVAE((vae if dtype == torch.float32 else vae.to(dtype)).eval())


def main() -> None:
    args = parse()
    dev = common.setup(args)
    rep = Reporter("bench_vae", args.table)
    print("# env " + " ".join(f"{k}={v}" for k, v in environment(dev).items()), flush=True)
    h, w = parse_width_height(args.size or ("64x64" if args.tiny else "1280x704"))
    frames = args.frames or (17 if args.tiny else 73)
    latents = args.latents or (6 if args.tiny else 49)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[args.dtype]
    vae = build_vae(args.tiny, dev, dtype)
    g = torch.Generator(device=dev).manual_seed(0)
    video = (torch.rand(1, 3, frames, h, w, generator=g, device=dev) * 2 - 1)
    z = torch.randn(1, vae.z_dim, latents, h // 16, w // 16, generator=g, device=dev)
    base = dict(device=str(dev), dtype=args.dtype, height=h, width=w)

    def encode_stream():
        enc = vae.streaming_encoder()
        return torch.cat([enc.push(video[:, :, i:i + 4]) for i in range(0, frames, 4)], dim=2)

    def decode_stream():
        n = 0
        for out in vae.streaming_decoder().iter_frames(z):
            n += out.shape[2]  # consumed (the pipeline hands each chunk to the video writer)
        return n

    with torch.no_grad():
        one, st = vae.encode(video), encode_stream()
        enc_diff = (one - st).abs().max().item()
        dec_diff = (vae.decode(z) - vae.streaming_decoder().decode(z)).abs().max().item()
        for op, fns, extra in (
            ("encode", {"oneshot": lambda: vae.encode(video), "streaming": encode_stream},
             dict(frames=frames, latents_out=one.shape[2], max_abs_diff=enc_diff)),
            ("decode", {"oneshot": lambda: vae.decode(z), "streaming": decode_stream},
             dict(latents=latents, frames_out=1 + 4 * (latents - 1), max_abs_diff=dec_diff)),
        ):
            ms = interleaved(fns, dev, args.warmup, args.iters)
            for variant, fn in fns.items():  # peak memory of each variant alone
                reset_peak(dev)
                time_once(fn, dev)
                rep.emit(case=f"{op}_{variant}", **base, **extra, **stats(ms[variant]),
                         peak_mem_gb=peak_memory_gb(dev), peak_kind="cuda_allocated" if dev.type == "cuda"
                         else "host_rss_process")
    rep.write_table()


if __name__ == "__main__":
    main()
