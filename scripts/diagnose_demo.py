#!/usr/bin/env python
"""Where a demo pipeline loses the reference's appearance (issue 18; docs/demo.md "Diagnosis").

    python scripts/diagnose_demo.py --pipeline talkverse/demo/talkverse-tiny-demo --heldout demo_work/heldout

Measures, on held-out synthetic clips (exact ground truth):
1. the VAE ceiling: PSNR of the VAE round trip of the ground-truth frames, and the eye readout before/after;
2. the reference latent of training vs inference: the latent ``scripts/precache.py`` stores for a frame
   (``encode_raw_sample``: the dataset's cover crop, the VAE wrapper) against the one the pipeline makes from the same
   frame given as the portrait (``prepare_conditioning``): max |difference|;
3. what the DiT takes the picture from: the error of its x0 prediction (x_t - sigma v) at sigma 0.95 and 0.7 on
   precache-style windows with the motion latents and the reference latent each present or zeroed (zeroed = what the
   trainer's modality dropout feeds, and what the first clip sees for motion);
4. the first clip: PSNR against the ground truth of the first 24 frames with first_clip_motion "zeros", "drop" and
   "reference".
Prints JSON (and writes it with --out).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch


def x0_errors(pipe, root: Path, clips: int) -> dict:
    from talkverse.data.dataset import TalkVerseDataset
    from talkverse.data.rows import read_rows
    from talkverse.models.text_encoder import pad_context
    from talkverse.training.batch import encode_raw_sample

    tr = pipe.transformer
    rows = read_rows([str(root / "metadata.csv")], str(root))
    ds = TalkVerseDataset(rows, bucket="128x128", num_frames=24, seed=0)
    vae, w2v = pipe.vae_codec, pipe.audio_codec  # the wrappers precache builds from the same folders
    ctx = pad_context([pipe.encode_prompt("a person is speaking to the camera")[0]], tr.config.text_len)
    cases = {"motion + reference": (1, 1), "motion only": (1, 0), "reference only": (0, 1), "neither": (0, 0)}
    err = {k: [] for k in cases}
    ref_diff = []
    for i in range(min(clips, len(rows))):
        item = ds.load_row(i, ds.rng_for(i, 0, 0))
        s = encode_raw_sample(item, vae, w2v, 24, 73)
        portrait = ((item["ref"][:, 0].permute(1, 2, 0) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
        cond, _ = pipe.prepare_conditioning(portrait, None, None, None, 128, 128, "128x128", "cover", 24, None, None,
                                            False, ctx[0], ctx[0], s["audio"][None])
        ref_diff.append(float((cond.ref_latents[0] - s["ref"]).abs().max()))
        x0 = s["x0"][None]
        g = torch.Generator().manual_seed(i)
        for sigma in (0.95, 0.7):
            x_t = (1 - sigma) * x0 + sigma * torch.randn(x0.shape, generator=g)
            for name, (m, r) in cases.items():
                with torch.no_grad():
                    v = tr(hidden_states=x_t, timestep=torch.tensor([sigma * 1000]), encoder_hidden_states=ctx,
                           ref_latents=s["ref"][None] * r, audio_features=s["audio"][None],
                           motion_latents=s["motion"][None] * m).sample
                err[name].append(float(((x_t - sigma * v - x0) ** 2).mean() / (x0**2).mean()))
    return {"reference_latent_max_abs_diff": max(ref_diff),
            "x0_relative_error": {k: float(np.mean(v)) for k, v in err.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipeline", default="talkverse/demo/talkverse-tiny-demo", help="TalkVersePipeline folder")
    ap.add_argument("--heldout", required=True, help="synthetic dataset folder (seed 2 in the recipe)")
    ap.add_argument("--clips", type=int, default=6, help="clips to measure")
    ap.add_argument("--out", default=None, help="write the JSON here")
    args = ap.parse_args(argv)
    from talkverse.eval.demo import clips_of, fidelity, generate_for_clip, ground_truth_frames, vae_round_trip
    from talkverse.eval.fidelity import psnr_per_frame
    from talkverse.pipelines.loading import load_pipeline
    from talkverse.testing.synthetic.faces import eye_readout

    pipe = load_pipeline(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    root = Path(args.heldout)
    clips = clips_of(root)[: args.clips]
    vae, eyes = [], []
    for _, _, gt in clips:
        truth, kp = ground_truth_frames(gt)
        rec = vae_round_trip(pipe, truth)
        vae.append(float(np.median(psnr_per_frame(rec, truth[:len(rec)]))))
        eyes.append((float(np.median(eye_readout(truth, kp))), float(np.median(eye_readout(rec, kp[:len(rec)])))))
    res = {"vae_psnr_median": float(np.median(vae)), "vae_psnr_per_clip": vae, "eye_readout_truth_vs_vae": eyes}
    res.update(x0_errors(pipe, root, args.clips))
    first = {}
    for mode in ("zeros", "drop", "reference"):
        pipe.register_to_config(first_clip_motion=mode)
        scores = []
        for _, mp4, gt in clips:
            frames, _ = generate_for_clip(pipe, mp4, gt, 24, 20, 4.0, 0, max_seconds=0.96)
            scores.append(fidelity(pipe, frames, gt)["psnr"])
        first[mode] = float(np.median(scores))
    res["first_clip_psnr"] = first
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
