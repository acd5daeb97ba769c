#!/usr/bin/env python
"""End to end: one full clip (50 steps, CFG 6.5) through TalkVersePipeline, seconds per second of output video, and
each optimisation against its absence.

Variants (``--variants``, comma list; ``baseline`` is always first and is the reference of the output differences):

    baseline       the loader's defaults (CUDA: bf16 DiT weights; CPU: fp32), SDPA default, batched CFG
    fp32 / bf16    DiT weights in that dtype (fp32 islands kept)
    attn_auto      the fastest usable attention backend (SDPA-cuDNN on Hopper)
    compile        compile_repeated_blocks (inductor)
    fp8            fp8 layerwise weight casting
    group_offload  block-level group offloading
    cfg_sequential the two CFG branches as two passes (the pipeline's cfg_batch=False)
    fast / low_vram  the profiles (talkverse/perf/optimize.py)

CUDA: the full-size random-weight pipeline (benchmarks/common.py random_pipeline) at 704x1280, 120 frames per clip;
each variant is built, warmed up (one 2-step clip) and timed in turn (one pipeline in memory at a time).
CPU (automatic, or --tiny): the tiny pipeline at 64x64, 8 frames per clip; all variants are built up front and
timed interleaved (A, B, A, B, ...). Each row: seconds per clip, DiT seconds, s per second of video, peak memory,
and the decoded frames' difference from the baseline (uint8 levels: mean, max; PSNR).

    python benchmarks/bench_pipeline.py --variants bf16,fp8,group_offload,cfg_sequential,low_vram
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

import common
from talkverse.media.sizes import parse_width_height
from talkverse.perf.optimize import apply_optimizations, resolve_profile
from talkverse.perf.timing import Reporter, environment, peak_memory_gb, reset_peak, stats, sync

VARIANTS = {
    "baseline": {}, "fp32": {"dtype": "fp32"}, "bf16": {"dtype": "bf16"}, "attn_auto": {"attention_backend": "auto"},
    "compile": {"compile": True}, "fp8": {"fp8": True}, "group_offload": {"group_offload": True},
    "cfg_sequential": {}, "fast": "fast", "low_vram": "low_vram",
}


def parse():
    p = common.base_parser(__doc__)
    p.add_argument("--variants", default="", help=f"comma list of {', '.join(VARIANTS)} (baseline always runs)")
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--guidance", type=float, default=6.5)
    p.add_argument("--clips", type=int, default=1)
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default 120 CUDA, 8 CPU)")
    p.add_argument("--size", default=None, help="WxH, width first (default 1280x704 CUDA, 64x64 CPU)")
    return p.parse_args()


class DitClock:
    """Wall time inside the DiT's forward (synchronised on CUDA), via forward hooks."""

    def __init__(self, model, device):
        self.total, self.device, self._t = 0.0, device, None
        model.register_forward_pre_hook(self._pre)
        model.register_forward_hook(self._post)

    def _pre(self, *_):
        sync(self.device)
        self._t = time.perf_counter()

    def _post(self, *_):
        sync(self.device)
        self.total += time.perf_counter() - self._t


def build(name: str, tiny: bool, dev: torch.device):
    pipe, prompt = common.random_pipeline(tiny, dev)
    spec = VARIANTS[name]
    opts = resolve_profile(spec) if isinstance(spec, str) else resolve_profile(None, **spec)
    if opts != resolve_profile(None):
        apply_optimizations(pipe, opts, dev)
    return pipe, prompt, DitClock(pipe.transformer, dev)


def main() -> None:
    args = parse()
    dev = common.setup(args)
    rep = Reporter("bench_pipeline", args.table)
    print("# env " + " ".join(f"{k}={v}" for k, v in environment(dev).items()), flush=True)
    names = ["baseline"] + [v for v in args.variants.split(",") if v and v != "baseline"]
    bad = [v for v in names if v not in VARIANTS]
    if bad:
        raise SystemExit(f"unknown variants {bad}; choose from {', '.join(VARIANTS)}")
    frames = args.frames or (8 if args.tiny else 120)
    h, w = parse_width_height(args.size or ("64x64" if args.tiny else "1280x704"))
    img, wave = common.test_media(h, w, args.clips * frames / 25.0)

    def run(name, pipe, prompt, clock, steps=None):
        clock.total = 0.0
        sync(dev)
        t0 = time.perf_counter()
        out = pipe(img, wave, **prompt, **common.call_kwargs(h, w, frames, args.clips, steps or args.steps,
                                                             guidance_scale=args.guidance,
                                                             cfg_batch=name != "cfg_sequential"))
        sync(dev)
        return time.perf_counter() - t0, clock.total, (out.frames[0] * 255).round()

    results: dict[str, dict] = {n: {"s": [], "dit": []} for n in names}
    if dev.type == "cuda":  # one full-size pipeline in memory at a time
        for name in names:
            pipe, prompt, clock = build(name, args.tiny, dev)
            for _ in range(args.warmup if args.warmup else 0):
                run(name, pipe, prompt, clock, steps=2)
            reset_peak(dev)
            for _ in range(max(1, args.iters // 5)):
                s, d, fr = run(name, pipe, prompt, clock)
                results[name]["s"].append(s)
                results[name]["dit"].append(d)
            results[name]["frames"], results[name]["peak"] = fr, peak_memory_gb(dev)
            del pipe
            torch.cuda.empty_cache()
    else:
        built = {n: build(n, args.tiny, dev) for n in names}
        for _ in range(args.warmup):
            for n in names:
                run(n, *built[n], steps=2)
        for _ in range(max(1, args.iters)):
            for n in names:
                s, d, fr = run(n, *built[n])
                results[n]["s"].append(s)
                results[n]["dit"].append(d)
                results[n]["frames"], results[n]["peak"] = fr, peak_memory_gb(dev)
    ref = results["baseline"]["frames"].astype(np.float64)
    base_ms = stats([s * 1e3 for s in results["baseline"]["s"]])["ms"]
    for name in names:
        r = results[name]
        st = stats([s * 1e3 for s in r["s"]])
        diff = np.abs(r["frames"].astype(np.float64) - ref)
        mse = float((diff**2).mean())
        rep.emit(case=name, device=str(dev), height=h, width=w, frames_per_clip=frames, clips=args.clips,
                 steps=args.steps, cfg=args.guidance > 1, s_total=st["ms"] / 1e3, s_min=st["ms_min"] / 1e3,
                 s_max=st["ms_max"] / 1e3, dit_s=float(np.median(r["dit"])),
                 s_per_video_s=st["ms"] / 1e3 / (r["frames"].shape[0] / 25.0), speedup_vs_baseline=base_ms / st["ms"],
                 frames_mean_abs_diff=float(diff.mean()), frames_max_abs_diff=float(diff.max()),
                 psnr_db=float("inf") if mse == 0 else 10 * math.log10(255**2 / mse), peak_mem_gb=r["peak"], n=st["n"])
    rep.write_table()


if __name__ == "__main__":
    main()
