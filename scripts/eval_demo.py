#!/usr/bin/env python
"""Score a demo pipeline on held-out synthetic clips (talkverse.eval.demo): lip-sync AV-corr per clip, the
shuffled-audio control, and long-clip sync/colour drift. Prints JSON and writes it with --out.

    python scripts/eval_demo.py --pipeline talkverse/demo/talkverse-tiny-demo --heldout demo_work/heldout \
        --long demo_work/long --minute demo_work/minute

Held-out clips also get their fidelity: PSNR against the exact ground truth, the VAE round trip's PSNR (the ceiling)
and the eye readout; ``--minute`` clips (60 s) the PSNR and AV-corr of their first and last 10 s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", default="talkverse/demo/talkverse-tiny-demo", help="TalkVersePipeline folder")
    ap.add_argument("--heldout", default=None, help="synthetic dataset folder (metadata.csv + videos/)")
    ap.add_argument("--long", default=None, help="synthetic dataset of long clips (several chained clips)")
    ap.add_argument("--minute", default=None, help="synthetic dataset of minute-long clips (first vs last 10 s)")
    ap.add_argument("--frames", type=int, default=24, help="frames per clip")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--guide", type=float, default=4.0)
    ap.add_argument("--first_clip_motion", default=None, choices=["drop", "zeros", "reference"],
                    help="first clip's motion tokens (default: the pipeline's setting; the demo model's is zeros)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N clips")
    ap.add_argument("--out", default=None, help="write the JSON here")
    args = ap.parse_args(argv)
    from talkverse.eval.demo import evaluate_heldout, evaluate_long, evaluate_minute
    from talkverse.pipelines.loading import load_pipeline

    pipe = load_pipeline(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    if args.first_clip_motion:  # override the model's default for every call
        pipe.register_to_config(first_clip_motion=args.first_clip_motion)
    t0 = time.time()
    res = {}
    if args.heldout:
        res["heldout"] = evaluate_heldout(pipe, Path(args.heldout), args.frames, args.steps, args.guide,
                                          limit=args.limit)
    if args.long:
        res["long"] = evaluate_long(pipe, Path(args.long), args.frames, args.steps, args.guide, limit=args.limit)
    if args.minute:
        res["minute"] = evaluate_minute(pipe, Path(args.minute), args.frames, args.steps, args.guide,
                                        limit=args.limit)
    res["settings"] = {"frames": args.frames, "steps": args.steps, "guide": args.guide,
                       "first_clip_motion": pipe.config.first_clip_motion, "seconds": time.time() - t0}
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
