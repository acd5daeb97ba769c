#!/usr/bin/env python
"""talkverse generate: (portrait image, speech audio, prompt) -> lip-synced mp4.

Accepts the reference TalkVerse ``generate.py`` flag names. In this release only the transformer and its checkpoint
loading are implemented; the clip-by-clip pipeline lands with the generation milestone. Until then this script
validates the checkpoint flags (``--check_ckpt``) and says plainly that generation is not available yet.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="s2v-5B", help="model preset; s2v-5B is the TalkVerse S2V-5B model")
    p.add_argument("--ckpt_dir", help="Wan2.2-TI2V-5B directory (original layout) or a Diffusers-layout folder")
    p.add_argument("--lora_ckpt", help="TalkVerse checkpoint (.safetensors): S2V modules, time/head and LoRA pairs")
    p.add_argument("--lora_alpha", type=float, default=None, help="LoRA alpha (default: file metadata, else 128)")
    p.add_argument("--check_ckpt", action="store_true",
                   help="load the transformer from --ckpt_dir and --lora_ckpt on the CPU and report its size or the checkpoint problem")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.check_ckpt:
        if not args.ckpt_dir:
            print("error: --check_ckpt needs --ckpt_dir", file=sys.stderr)
            return 2
        from talkverse import TalkVerseTransformer3DModel
        from talkverse.convert.errors import CheckpointError

        try:
            model = TalkVerseTransformer3DModel.from_wan(args.ckpt_dir, args.lora_ckpt, lora_alpha=args.lora_alpha)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        n = sum(p.numel() for p in model.parameters())
        print(f"loaded TalkVerseTransformer3DModel: {n:,} parameters")
        return 0
    print("talkverse 0.1.0: video generation is not implemented yet (the pipeline is the next milestone); "
          "use --check_ckpt to validate checkpoints.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
