#!/usr/bin/env python
"""Before/after strip of dubbing only the face (issue 20): source and output frames of the synthetic two-face case
(``talkverse.testing.dub_cases``), face 1 dubbed with the shipped demo model, the dilated region outlined in red on
the output, plus a 4x crop around the region.

    python scripts/face_dub_strip.py --out docs/face_dub_strip.png [--region face|mouth] [--steps 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/face_dub_strip.png")
    p.add_argument("--region", default="face", choices=["face", "mouth"])
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--seconds", type=float, default=0.6)
    args = p.parse_args(argv)

    from PIL import Image, ImageDraw

    from talkverse.demo import demo_model_dir
    from talkverse.media.video import iter_frames
    from talkverse.pipelines.pipeline_talkverse import TalkVersePipeline
    from talkverse.runner import GenerationOptions, generate_to_file, load_inputs
    from talkverse.testing.dub_cases import make_case, write_case

    pipe = TalkVersePipeline.from_pretrained(str(demo_model_dir()))
    pipe.set_progress_bar_config(disable=True)
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_case(make_case("two", args.seconds), Path(tmp) / "two")
        opts = GenerationOptions(size_bucket="128x128", frames_per_clip=8, num_inference_steps=args.steps,
                                 dub_strength=0.9, dub_region=args.region, dub_face_index=1,
                                 dub_track=str(paths["track"]), seed=3, progress=False).check()
        got = []
        inputs = load_inputs(None, paths["new"], paths["source"])
        try:
            result = generate_to_file(pipe, inputs, opts, Path(tmp) / "out.mp4", on_frames=lambda f: got.append(
                ((f.permute(1, 2, 3, 0) + 1) * 127.5).round().byte().numpy()))
        finally:
            inputs.close()
        out = np.concatenate(got)
        src = np.stack(list(iter_frames(paths["source"], 25)))[:len(out)]
    t = len(out) // 2
    from talkverse.models.geometry import ClipGeometry
    from talkverse.pipelines.timeline import clip_output_range

    r = next(k for k in range(len(result.face_regions)) if t < clip_output_range(k, ClipGeometry(8))[1])
    clip = result.face_regions[r]
    x0, y0, x1, y1 = (int(round(v)) for v in clip.region)
    panels = []
    for name, frame in (("source", src[t]), ("output (face 1 dubbed)", out[t])):
        img = Image.fromarray(frame)
        d = ImageDraw.Draw(img)
        d.rectangle([x0, y0, x1 - 1, y1 - 1], outline=(255, 0, 0), width=3)
        d.text((10, 10), f"{name}, frame {t}", fill=(255, 255, 255))
        panels.append(img.resize((640, 360)))
        zoom = img.crop((x0 - 20, y0 - 20, x1 + 20, y1 + 20))
        panels.append(zoom.resize((360 * zoom.width // zoom.height, 360)))
    width = sum(pn.width for pn in panels)
    strip = Image.new("RGB", (width, 360), "white")
    x = 0
    for pn in panels:
        strip.paste(pn, (x, 0))
        x += pn.width
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    strip.save(args.out)
    print(f"wrote {args.out} ({result.line()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
