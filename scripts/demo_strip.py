#!/usr/bin/env python
"""A frame strip of a one-minute generation: the input portrait, then the frames at 0, 1, 30 and 60 s.

    python scripts/demo_strip.py --out docs/demo_strip.png
    python scripts/demo_strip.py --clip demo_work/minute/videos/clip_00000.mp4 --out docs/demo_strip_minute.png

Default: the shipped demo model on the demo portrait (talkverse/demo/face.png) with a minute of synthetic babble
(seeded, like the demo's speech.wav), at the demo settings. With ``--clip`` (a synthetic clip written by
``talkverse.testing.synthetic``) the portrait is the clip identity's reference image, the audio is the clip's own, and
a second row shows the exact ground-truth frames at the same times, each generated frame labelled with its PSNR
against them. Panels are upscaled x``--scale`` (nearest) and labelled.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TIMES = (0.0, 1.0, 30.0, 60.0)


def label(panel: np.ndarray, text: str, scale: int):
    from PIL import Image, ImageDraw

    img = Image.fromarray(panel).resize((panel.shape[1] * scale, panel.shape[0] * scale), Image.NEAREST)
    canvas = Image.new("RGB", (img.width, img.height + 18), "white")
    canvas.paste(img, (0, 0))
    ImageDraw.Draw(canvas).text((4, img.height + 3), text, fill="black")
    return np.asarray(canvas)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="docs/demo_strip.png", help="PNG to write")
    ap.add_argument("--pipeline", default=None, help="TalkVersePipeline folder (default: the shipped demo model)")
    ap.add_argument("--image", default=None, help="portrait (default: the demo face)")
    ap.add_argument("--audio", default=None, help="speech (default: a minute of seeded synthetic babble)")
    ap.add_argument("--clip", default=None, help="a synthetic clip mp4 with its .gt.npz: adds the ground-truth row")
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the generation")
    ap.add_argument("--scale", type=int, default=2, help="panel upscaling (nearest)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    import torch
    from PIL import Image

    from talkverse.cli.demo_task import demo_defaults
    from talkverse.demo import demo_face, demo_model_dir
    from talkverse.eval.demo import ground_truth_frames
    from talkverse.eval.fidelity import psnr_per_frame
    from talkverse.media.audio import load_audio
    from talkverse.media.constants import FPS, SAMPLE_RATE
    from talkverse.media.image import load_image
    from talkverse.media.writer import frames_to_uint8
    from talkverse.pipelines.loading import load_pipeline
    from talkverse.testing.synthetic import babble_audio, load_ground_truth, reference_image

    settings = demo_defaults()
    truth = None
    if args.clip:
        gt = Path(args.clip).with_suffix(".gt.npz")
        image = reference_image(load_ground_truth(gt)["identity"], 128)
        wave = load_audio(args.clip)
        truth, _ = ground_truth_frames(gt, 128)
    else:
        image = np.asarray(load_image(args.image or demo_face()))
        wave = load_audio(args.audio) if args.audio else babble_audio(args.seconds, 4_000_003)[0]
    wave = np.asarray(wave, np.float32)[: int(args.seconds * SAMPLE_RATE)]
    pipe = load_pipeline(args.pipeline or demo_model_dir())
    pipe.set_progress_bar_config(disable=True)
    side = int(settings["size_bucket"].split("x")[0])
    want = {min(int(round(t * FPS)), int(len(wave) / SAMPLE_RATE * FPS) - 1): t for t in TIMES}
    got, seen = {}, 0
    for clip in pipe.iter_clips(image, wave, height=side, width=side, frames_per_clip=settings["infer_frames"],
                                num_inference_steps=settings["sample_steps"],
                                guidance_scale=settings["sample_guide_scale"],
                                generator=torch.Generator().manual_seed(args.seed), progress=True):
        frames = frames_to_uint8(clip.permute(1, 2, 3, 0)).numpy()
        for k in range(len(frames)):
            if seen + k in want:
                got[seen + k] = frames[k]
        seen += len(frames)
    portrait = np.asarray(Image.fromarray(np.asarray(image)).resize((side, side)))
    top = [label(portrait, "input", args.scale)]
    bottom = [label(np.full_like(portrait, 255), "ground truth:", args.scale)] if truth is not None else []
    for idx in sorted(got):
        text = f"{want[idx]:.0f} s"
        if truth is not None:
            text += f"  {float(psnr_per_frame(got[idx], truth[idx])[0]):.1f} dB"
            bottom.append(label(truth[idx], f"{want[idx]:.0f} s", args.scale))
        top.append(label(got[idx], text, args.scale))
    rows = [np.concatenate(top, axis=1)] + ([np.concatenate(bottom, axis=1)] if bottom else [])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate(rows, axis=0)).save(out)
    print(f"wrote {out} ({seen} frames generated)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
