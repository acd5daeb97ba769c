#!/usr/bin/env python
"""Fewer DiT evaluations (issue 21): step caching and CFG truncation against plain sampling, on the tiny demo model.

Methods (``--methods``, comma list; ``none`` always runs first and is the reference):

    none            every step runs both CFG branches in full (the pipeline's defaults: batched CFG)
    first_block     FirstBlockCache at --threshold (talkverse.pipelines.caching)
    taylorseer      TaylorSeerCache (lite) with one full step every --interval steps after 3 warm-up steps
    cfg_trunc       CFG truncation: the unconditional pass in the first --truncation of the steps only
    first_block+cfg_trunc   both

Inputs: the demo portrait and speech (``--seconds`` of it) at the demo model's settings (128x128, 24 frames per clip,
20 steps, CFG 4, seed 0). The methods are timed interleaved (none, A, B, ..., none, A, B, ...) for ``--rounds`` rounds
on one pipeline (the cache is enabled and disabled around each run). Each row: DiT evaluations per clip (a batch row
counted when the last block runs in full), the median wall time per second of video and its ratio to ``none`` (the
VAE decode does not get faster), the median seconds inside the DiT's forward as a ratio to ``none``'s, the
PSNR of the frames against ``none``'s, and the lip-sync AV-corr (best over +-10 frames) and its lag, from the
model-free mouth readout (talkverse.eval.demo.score).

    python benchmarks/bench_step_cache.py --rounds 3 --table benchmarks/results_step_cache.md
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch

import common  # noqa: F401  (repo import path)
from talkverse.perf.timing import Reporter, environment

METHODS = ("none", "first_block", "taylorseer", "cfg_trunc", "first_block+cfg_trunc")


def parse():
    p = common.base_parser(__doc__)
    p.add_argument("--methods", default="first_block,cfg_trunc,first_block+cfg_trunc",
                   help=f"comma list of {', '.join(METHODS)} (none always runs)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved timing rounds")
    p.add_argument("--seconds", type=float, default=2.0, help="seconds of the demo speech")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--threshold", type=float, default=0.1, help="first_block threshold")
    p.add_argument("--interval", type=int, default=3, help="taylorseer full-step interval")
    p.add_argument("--truncation", type=float, default=0.5, help="cfg_trunc: fraction of steps with the uncond pass")
    return p.parse_args()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def main() -> None:
    args = parse()
    from talkverse.demo import demo_face, demo_model_dir, demo_speech
    from talkverse.eval.demo import score
    from talkverse.media.audio import load_audio
    from talkverse.media.constants import FPS, SAMPLE_RATE
    from talkverse.media.image import load_image
    from talkverse.media.writer import frames_to_uint8
    from talkverse.pipelines.caching import step_cache_config
    from talkverse.pipelines.loading import load_pipeline

    if args.threads:
        torch.set_num_threads(args.threads)
    methods = ["none"] + [m for m in args.methods.split(",") if m and m != "none"]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"error: --methods: unknown {sorted(unknown)}; choose from {', '.join(METHODS)}")
    pipe = load_pipeline(demo_model_dir())
    pipe.set_progress_bar_config(disable=True)
    image = load_image(demo_face())
    wave = np.asarray(load_audio(demo_speech()), np.float32)[: int(args.seconds * SAMPLE_RATE)]
    tr = pipe.transformer
    rows, dit = [0], [0.0, 0.0]  # full rows; DiT seconds (total, start of the running call)
    tr.blocks[-1].ffn.register_forward_pre_hook(lambda m, a: rows.__setitem__(0, rows[0] + a[0].shape[0]))
    tr.register_forward_pre_hook(lambda m, a: dit.__setitem__(1, time.perf_counter()))
    tr.register_forward_hook(lambda m, a, o: dit.__setitem__(0, dit[0] + time.perf_counter() - dit[1]))

    def run(method: str):
        cache = "first_block" if method.startswith("first_block") else "taylorseer" if method == "taylorseer" else None
        if cache:
            tr.enable_cache(step_cache_config(cache, args.steps, threshold=args.threshold, interval=args.interval))
        rows[0], dit[0] = 0, 0.0
        t0 = time.perf_counter()
        try:
            clips = list(pipe.iter_clips(image, wave, height=128, width=128, frames_per_clip=24,
                                         num_inference_steps=args.steps, guidance_scale=4.0,
                                         cfg_truncation=args.truncation if "cfg_trunc" in method else 1.0,
                                         generator=torch.Generator().manual_seed(0), progress=False))
        finally:
            if cache:
                tr.disable_cache()
        wall = time.perf_counter() - t0
        frames = frames_to_uint8(torch.cat(clips, dim=1).permute(1, 2, 3, 0)).numpy()
        return frames, wall, dit[0], rows[0] / pipe.num_clips

    out, walls, dits, evals = {}, {m: [] for m in methods}, {m: [] for m in methods}, {}
    for _ in range(args.rounds):
        for m in methods:
            frames, wall, dit_s, evals[m] = run(m)
            out[m] = frames
            walls[m].append(wall / (len(frames) / FPS))
            dits[m].append(dit_s)
    rep = Reporter("bench_step_cache", args.table)
    env = environment(torch.device("cpu"))
    base, dit_base = statistics.median(walls["none"]), statistics.median(dits["none"])
    for m in methods:
        lag, best, _ = score(out[m], wave)
        rep.emit(method=m, dit_evals_per_clip=evals[m], s_per_video_s=statistics.median(walls[m]),
                wall_ratio=statistics.median(walls[m]) / base,
                dit_s_ratio=statistics.median(dits[m]) / dit_base, psnr_vs_none=psnr(out[m], out["none"]),
                av_corr=best, best_lag=lag, frames=len(out[m]), clips=pipe.num_clips, rounds=args.rounds, torch=env["torch"])
    rep.write_table()


if __name__ == "__main__":
    main()
