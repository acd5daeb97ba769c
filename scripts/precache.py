#!/usr/bin/env python
"""Pre-compute training windows offline (training.md §12): VAE latents, audio features, text embedding, ROI weights.

For every CSV row (rank r of a torchrun launch takes rows r::world) this picks the window and the reference frame
exactly as ``TalkVerseDataset`` does at epoch 0, encodes it as online training does (``encode_raw_sample``: the window
jointly, [motion 73 | main 72] -> 37 latents: motion = [:19], x0 = [19:]; a short clip encodes 72 main frames -> 18
latents and motion = zeros; the reference frame; wav2vec2 on the reference audio window, §6) and writes ``<out>/<clip_id>.safetensors`` with keys
x0, motion, ref, audio, context, roi_weight, has_motion (atomically), plus ``<out>/null.safetensors``, the text
cache's null embedding, so that the trainer needs only --latent_cache. Existing files are kept unless --overwrite.
Unusable rows (missing/corrupt video, no audio, too short, not 25 fps) are reported and skipped.

The encoders come from --vae / --wav2vec_dir / --text_cache, or all three from --ckpt_dir, a saved TalkVersePipeline
folder (its vae/, audio_encoder/ + feature_extractor/, and text_encoder/ + tokenizer/, which encodes the captions):

  python scripts/precache.py --csv data/metadata.csv --data_root data --ckpt_dir talkverse/demo/talkverse-tiny-demo \
      --bucket 128x128 --num_frames 24 --out cache
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from talkverse.cli.checks import OneLineParser  # noqa: E402
from talkverse.data.dataset import ClipSkip, TalkVerseDataset  # noqa: E402
from talkverse.data.rows import read_rows  # noqa: E402
from talkverse.data.text_cache import TextEmbeddingCache, atomic_save  # noqa: E402
from talkverse.models.geometry import ClipGeometry  # noqa: E402
from talkverse.training.batch import encode_raw_sample  # noqa: E402

logger = logging.getLogger("precache")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="precache.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--csv", nargs="+", required=True, help="metadata CSV(s): video_path, caption[, scenes, fps, ...]")
    p.add_argument("--data_root", required=True, help="folder the CSV video_path entries are relative to")
    p.add_argument("--ckpt_dir", default=None,
                   help="a saved TalkVersePipeline folder: the default of --vae and --wav2vec_dir, and its text "
                        "encoder encodes the captions when --text_cache is not given")
    p.add_argument("--text_cache", default=None,
                   help="text embedding folder (<clip_id>.safetensors, or the reference <id>.pt layout; default: "
                        "encode the captions with --ckpt_dir's text encoder)")
    p.add_argument("--vae", default=None, help="Wan2.2 VAE: the original .pth/.safetensors or a Diffusers (vae/) "
                                               "folder (default: --ckpt_dir's)")
    p.add_argument("--vae_config", default=None, help="VAE architecture preset or YAML (original layout only)")
    p.add_argument("--wav2vec_dir", default=None, help="local wav2vec2 folder (save_pretrained layout; default: "
                                                       "--ckpt_dir's audio_encoder/)")
    p.add_argument("--out", required=True, help="output folder for <clip_id>.safetensors")
    p.add_argument("--bucket", default="fasttalk-720", help="bucket table (fasttalk-720, fasttalk-480) or a fixed WxH "
                                                         "(width first)")
    p.add_argument("--num_frames", type=int, default=72, help="main frames per window (multiple of 4)")
    p.add_argument("--motion_frames", type=int, default=ClipGeometry.motion_frames,
                   help="motion frames before the main frames (the model's motion_frames)")
    p.add_argument("--always_use_motion_frames", action="store_true", help="reject clips too short for motion")
    p.add_argument("--seed", type=int, default=0, help="data seed (the window of epoch 0 with this seed is cached)")
    p.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16", help="storage dtype of latents/audio/context")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--overwrite", action="store_true", help="recompute files that already exist")
    return p


def resolve_sources(args, parser) -> None:
    """Fill --vae / --wav2vec_dir from --ckpt_dir; one line (exit 2) for what is missing, before any model loads."""
    from talkverse.loaders.layout import is_talkverse_folder

    if args.ckpt_dir is not None:
        if not is_talkverse_folder(args.ckpt_dir):
            parser.error(f"--ckpt_dir {args.ckpt_dir}: not a saved TalkVersePipeline folder (no model_index.json "
                         "naming TalkVersePipeline)")
        args.vae = args.vae or args.ckpt_dir
        args.wav2vec_dir = args.wav2vec_dir or args.ckpt_dir
    for flag in ("vae", "wav2vec_dir"):
        if getattr(args, flag) is None:
            parser.error(f"--{flag} is required (or --ckpt_dir, a saved pipeline folder that has one)")
    if args.text_cache is None and args.ckpt_dir is None:
        parser.error("--text_cache is required (or --ckpt_dir, whose text encoder then encodes the captions)")
    given = [("csv", v) for v in args.csv] + [(f, getattr(args, f)) for f in ("data_root", "text_cache", "vae",
                                                                          "wav2vec_dir")]
    for flag, value in given:
        if value is not None and not Path(value).exists():
            parser.error(f"--{flag} {value}: not found")


def caption_encoder(args):
    """None with --text_cache; else --ckpt_dir's umT5 (fp32), padded to its transformer's text_len."""
    if args.text_cache is not None:
        return None
    from talkverse.loaders.layout import saved_transformer_config
    from talkverse.loaders.text_encoder import load_text_encoder

    return load_text_encoder(args.ckpt_dir, text_len=saved_transformer_config(args.ckpt_dir)["text_len"],
                             torch_dtype=torch.float32, device=args.device)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    resolve_sources(args, parser)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    from talkverse.loaders.vae import load_vae
    from talkverse.loaders.wav2vec import load_wav2vec

    rows = read_rows(args.csv, args.data_root)
    text_cache = TextEmbeddingCache(args.text_cache) if args.text_cache else None
    ds = TalkVerseDataset(rows, bucket=args.bucket, num_frames=args.num_frames, motion_frames=args.motion_frames,
                          text_cache=text_cache, always_use_motion_frames=args.always_use_motion_frames,
                          seed=args.seed)
    vae = load_vae(args.vae, config=args.vae_config, device=args.device)
    w2v = load_wav2vec(args.wav2vec_dir, device=args.device)
    text = caption_encoder(args)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    out = Path(args.out)
    if rank == 0:  # the null text embedding travels with the latents: --latent_cache alone is enough to train
        null = text_cache.null() if text is None else text.encode([""], output_device="cpu")[0].float()
        TextEmbeddingCache(out, dtype=torch.float32).write_null(null)
    done = skipped = existing = 0
    for i in range(rank, len(rows), world):
        row = rows[i]
        path = out / f"{row.clip_id}.safetensors"
        if path.exists() and not args.overwrite:
            existing += 1
            continue
        try:
            item = ds.load_row(i, ds.rng_for(i, attempt=0, epoch=0))
        except ClipSkip as e:
            logger.warning("skip %s: %s", row.clip_id, e)
            skipped += 1
            continue
        if text is not None:
            item["context"] = text.encode([item["caption"]], output_device="cpu")[0].float()
        sample = encode_raw_sample(item, vae, w2v, args.num_frames, args.motion_frames)
        tensors = {k: sample[k].float().cpu().to(dtype) for k in ("x0", "motion", "ref", "audio", "context")}
        tensors.update(roi_weight=item["roi_weight"].float(), has_motion=torch.tensor(item["has_motion"]))
        meta = {"clip_id": row.clip_id, "size": json.dumps(list(item["size"])), "start": str(item["start"]),
                "ref_index": str(item["ref_index"]), "has_motion": "1" if item["has_motion"] else "0",
                "video_path": str(row.video_path), "seed": str(args.seed), "bucket": str(args.bucket)}
        atomic_save(tensors, path, metadata=meta)
        done += 1
    logger.info("rank %d/%d: wrote %d, kept %d existing, skipped %d", rank, world, done, existing, skipped)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
