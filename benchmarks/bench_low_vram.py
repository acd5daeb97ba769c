#!/usr/bin/env python
"""The 24 GB profile (``--profile low_vram``): peak GPU memory of a multi-clip 704x1280 video with the full-size model.

CUDA: the process is capped at 24 GiB (``torch.cuda.set_per_process_memory_fraction``), the full-size random-weight
pipeline (benchmarks/common.py; DiT built on the CPU and never moved to the GPU whole) gets the low_vram profile
(bf16 compute, fp8 weight storage, block-level group offloading with streams, wav2vec2 offloaded after its pass,
streaming decode) and generates 3 clips of 120 frames at 704x1280 (--steps 50 by default; peak memory does not depend
on the step count, so --steps 4 is a quick memory check). Reports peak allocated/reserved memory, time, and whether it
fit. ``--compare_default`` also runs the default profile (bf16, resident) under the same cap.

CPU (automatic, or --tiny): the tiny pipeline through the same code path (enable_optimizations("low_vram")).

    python benchmarks/bench_low_vram.py --steps 4
"""

from __future__ import annotations

import time

import torch

import common
from talkverse.media.sizes import parse_width_height
from talkverse.perf.timing import Reporter, environment, peak_memory_gb, reset_peak, sync

CAP_GB = 24.0


def parse():
    p = common.base_parser(__doc__)
    p.add_argument("--clips", type=int, default=3)
    p.add_argument("--steps", type=int, default=None, help="sampling steps per clip (default 50 CUDA, 4 CPU)")
    p.add_argument("--frames", type=int, default=None, help="frames per clip (default 120 CUDA, 8 CPU)")
    p.add_argument("--size", default=None, help="WxH, width first (default 1280x704 CUDA, 128x128 CPU)")
    p.add_argument("--cap_gb", type=float, default=CAP_GB, help="CUDA memory cap (GiB)")
    p.add_argument("--compare_default", action="store_true", help="also run the default profile under the cap")
    return p.parse_args()


def main() -> None:
    args = parse()
    dev = common.setup(args)
    rep = Reporter("bench_low_vram", args.table)
    print("# env " + " ".join(f"{k}={v}" for k, v in environment(dev).items()), flush=True)
    if dev.type == "cuda":
        total = torch.cuda.get_device_properties(dev).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, args.cap_gb * 2**30 / total), dev)
    frames = args.frames or (8 if args.tiny else 120)
    steps = args.steps or (4 if args.tiny else 50)
    h, w = parse_width_height(args.size or ("128x128" if args.tiny else "1280x704"))
    img, wave = common.test_media(h, w, args.clips * frames / 25.0)
    for profile in ["low_vram"] + (["default"] if args.compare_default else []):
        offload = profile == "low_vram"
        pipe, prompt = common.random_pipeline(args.tiny, dev, dit_device="cpu" if offload else None)
        pipe.enable_optimizations(profile, device=dev)
        reset_peak(dev)
        row = dict(case=profile, device=str(dev), cap_gb=args.cap_gb if dev.type == "cuda" else None, height=h,
                   width=w, frames_per_clip=frames, clips=args.clips, steps=steps)
        try:
            sync(dev)
            t0 = time.perf_counter()
            out = pipe(img, wave, **prompt, **common.call_kwargs(h, w, frames, args.clips, steps))
            sync(dev)
            secs = time.perf_counter() - t0
            row.update(fits=True, s_total=secs, s_per_clip=secs / args.clips, output_frames=int(out.frames.shape[1]))
        except torch.cuda.OutOfMemoryError as e:
            row.update(fits=False, error=str(e).splitlines()[0][:200])
        row["peak_mem_gb"] = peak_memory_gb(dev)
        row["peak_kind"] = "cuda_allocated" if dev.type == "cuda" else "host_rss_process"
        if dev.type == "cuda":
            row["peak_reserved_gb"] = torch.cuda.max_memory_reserved(dev) / 2**30
        opts = pipe.perf_options
        row.update(fp8=opts.fp8, group_offload=opts.group_offload, t5_cpu=pipe.t5_cpu,
                   offload_encoders=pipe.offload_encoders, dit_dtype="bf16" if opts.dtype == "bf16" else "loader")
        rep.emit(**row)
        del pipe
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    rep.write_table()


if __name__ == "__main__":
    main()
