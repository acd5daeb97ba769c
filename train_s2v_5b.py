#!/usr/bin/env python
"""Train TalkVerse-S2V-5B (or a smaller config) on TalkVerse-format data, on one or many GPUs.

    torchrun --nproc_per_node=8 train_s2v_5b.py --ckpt_dir ckpts/Wan2.2-TI2V-5B --wav2vec_dir ckpts/wav2vec2 \\
        --csv data/train.csv --data_root data --text_cache data/text_embeddings --output_path runs/s2v \\
        --batch_size 1 --gradient_accumulation_steps 8 --learning_rate 1e-5 --unfreeze_strategy lora \\
        --enable_roi_loss true --distributed_policy fsdp --mixed_precision bf16

Data: the metadata CSV(s) + mp4 clips with audio + DWPose npz + cached umT5 embeddings (--text_cache), with the VAE and
wav2vec2 run online; or latents pre-computed by scripts/precache.py (--latent_cache), which removes the VAE from the
step. Checkpoints: <output_path>/step-N.safetensors (TalkVerse format, usable as generate.py --lora_ckpt) and
<output_path>/checkpoints/ (full resume state; --resume auto continues from the newest complete one).
The reference's flag names are accepted, and booleans parse "false"/"true" as such.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def str2bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "y", "on"):
        return True
    if s in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {v!r}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    m = p.add_argument_group("model")
    m.add_argument("--ckpt_dir", required=True, help="Wan2.2-TI2V-5B base (original or Diffusers layout)")
    m.add_argument("--model_config", default="s2v_5b", help="transformer config preset (configs/<name>.yaml)")
    m.add_argument("--init_ckpt", default=None, help="optional TalkVerse file to start from (S2V modules, time/head, "
                                                     "merged LoRA) instead of the spec init")
    m.add_argument("--unfreeze_strategy", default="lora", help="new_modules (alias framepack) | minimal | lora | full")
    m.add_argument("--finetune_all", type=str2bool, default=False, help="same as --unfreeze_strategy full")
    m.add_argument("--lora_rank", type=int, default=128, help="LoRA rank (default 128)")
    m.add_argument("--lora_alpha", type=float, default=128.0, help="LoRA alpha (default 128: scale 1)")
    m.add_argument("--reinit_time_head", type=str2bool, default=False,
                   help="re-initialise time embedding/projection and head as the reference did (default off)")
    m.add_argument("--enable_framepack", type=str2bool, default=True,
                   help="use motion frames through FramePack (false: no motion tokens, frame_packer frozen)")
    m.add_argument("--gradient_checkpointing", type=str2bool, default=True,
                   help="per-block activation checkpointing, each block with its audio injector")

    d = p.add_argument_group("data")
    d.add_argument("--csv", "--metadata_csv", dest="csv", nargs="+", help="metadata CSV file(s)")
    d.add_argument("--data_root", default=".", help="root the CSV's video_path is relative to")
    d.add_argument("--text_cache", help="folder of cached umT5 embeddings (<clip_id>.safetensors or <id>.pt, and the "
                                        "null embedding)")
    d.add_argument("--text_encoder", help="umT5 to encode captions on the fly instead of --text_cache: the "
                                          "models_t5_umt5-xxl-enc-bf16.pth file or a Diffusers text_encoder/ folder")
    d.add_argument("--tokenizer", help="tokenizer folder for --text_encoder (default: google/umt5-xxl inside --ckpt_dir)")
    d.add_argument("--latent_cache", help="folder written by scripts/precache.py (then --csv/--vae are not needed)")
    d.add_argument("--vae", help="Wan2.2_VAE.pth or a Diffusers vae/ folder (default: inside --ckpt_dir)")
    d.add_argument("--vae_config", default=None, help="VAE architecture preset/YAML for an original-layout file")
    d.add_argument("--wav2vec_dir", help="local wav2vec2-large-xlsr-53-english folder")
    d.add_argument("--size_bucket", default="fasttalk-720", help="fasttalk-720 | fasttalk-480 | a fixed HxW")
    d.add_argument("--num_frames", type=int, default=72, help="main frames per sample (multiple of 4)")
    d.add_argument("--always_use_motion_frames", type=str2bool, default=False,
                   help="reject clips too short for 73 motion + main frames")

    o = p.add_argument_group("optimisation")
    o.add_argument("--batch_size", type=int, default=1, help="samples per GPU per micro-step")
    o.add_argument("--gradient_accumulation_steps", type=int, default=8, help="micro-steps per optimizer step")
    o.add_argument("--learning_rate", type=float, default=1e-5, help="base LR (new modules, time/head)")
    o.add_argument("--lora_lr_scale", type=float, default=10.0, help="LoRA LR multiplier (default 10)")
    o.add_argument("--framepack_lr_scale", type=float, default=1.0, help="frame_packer LR multiplier (default 1)")
    o.add_argument("--weight_decay", type=float, default=0.01, help="AdamW weight decay (every group)")
    o.add_argument("--warmup_steps", type=int, default=1000, help="linear warm-up in optimizer steps")
    o.add_argument("--max_grad_norm", type=float, default=1.0, help="per-group gradient clipping norm")
    o.add_argument("--max_steps", type=int, default=10000, help="optimizer steps to train to")
    o.add_argument("--timestep_sampling", default="uniform", help="uniform (reference) | logit_normal | shifted:<s>")
    o.add_argument("--enable_roi_loss", type=str2bool, default=True, help="ROI-weighted MSE (false: plain MSE)")
    for name in ("text", "audio", "ref", "motion"):
        o.add_argument(f"--{name}_dropout", type=float, default=0.1, help=f"probability of dropping the {name} "
                                                                          "condition per sample")
    o.add_argument("--mixed_precision", default="auto", choices=["auto", "no", "bf16"],
                   help="bf16 autocast over fp32 master weights (auto: bf16 on CUDA, no on CPU)")
    o.add_argument("--seed", type=int, default=0, help="seed of the data order and every per-sample draw")

    r = p.add_argument_group("distributed, checkpoints, logging")
    r.add_argument("--distributed_policy", default="ddp", choices=["ddp", "fsdp"], help="DDP or FSDP2 per block")
    r.add_argument("--device", default=None, help="cuda / cpu (default: cuda:LOCAL_RANK when available)")
    r.add_argument("--output_path", default="outputs/train", help="run folder (exports, resume states, log)")
    r.add_argument("--save_steps", type=int, default=250, help="save every N optimizer steps (and at the end)")
    r.add_argument("--keep_last", type=int, default=3, help="resume states kept")
    r.add_argument("--export_dtype", default="bf16", choices=["bf16", "fp32"], help="dtype of step-N.safetensors")
    r.add_argument("--log_interval", type=int, default=10, help="log every N optimizer steps (train_log.jsonl)")
    r.add_argument("--resume", default="auto", help="auto (newest complete state in output_path), a state folder, "
                                                    "or none")
    return p


def build_data(args, model_text_len: int, device, rank: int, world: int):
    """(BatchSource, null context [1, D])."""
    import torch

    from talkverse.training.batch import collate_latent, encode_raw_sample
    from talkverse.training.trainer import BatchSource

    if args.latent_cache:
        from talkverse.data.cached import CachedLatentDataset
        from talkverse.data.text_cache import TextEmbeddingCache

        ds = CachedLatentDataset(args.latent_cache)

        class Indexed:
            def __len__(self):
                return len(ds)

            def __getitem__(self, i):
                item = dict(ds[i])
                item["index"] = i
                return item

        data = Indexed()
        key_fn = ds.bucket_of
        null_src = Path(args.text_cache or args.latent_cache)
        null = TextEmbeddingCache(null_src).null()
        collate = lambda s: collate_latent(s, model_text_len)  # noqa: E731
    else:
        if not args.csv:
            raise SystemExit("error: pass --csv (with --data_root, --text_cache, --wav2vec_dir) or --latent_cache")
        from talkverse.audio.wav2vec import Wav2Vec2Features
        from talkverse.data.dataset import TalkVerseDataset
        from talkverse.data.rows import read_rows
        from talkverse.data.text_cache import TextEmbeddingCache
        from talkverse.models.vae import TalkVerseVAE

        text = None
        if args.text_cache:
            cache = TextEmbeddingCache(args.text_cache)
        elif args.text_encoder:
            from talkverse.models.text_encoder import TextEncoder

            cache = None
            tok = args.tokenizer or (Path(args.ckpt_dir) / "google" / "umt5-xxl")
            text = TextEncoder.load(args.text_encoder, tokenizer=tok, device=device)
        else:
            raise SystemExit("error: pass --text_cache (cached umT5 embeddings) or --text_encoder (encode on the fly)")
        ds = TalkVerseDataset(read_rows(args.csv, args.data_root), bucket=args.size_bucket,
                              num_frames=args.num_frames, text_cache=cache, seed=args.seed,
                              always_use_motion_frames=args.always_use_motion_frames)
        vae_path = args.vae or (Path(args.ckpt_dir) / "Wan2.2_VAE.pth")
        vae = TalkVerseVAE.load(vae_path, config=args.vae_config, device=device)
        if not args.wav2vec_dir:
            raise SystemExit("error: --wav2vec_dir is required for online audio features")
        w2v = Wav2Vec2Features.from_pretrained(args.wav2vec_dir, device=device)

        class Encoded:
            def __len__(self):
                return len(ds)

            def set_epoch(self, e):
                ds.set_epoch(e)

            def __getitem__(self, i):
                item = ds[i]
                if "context" not in item:  # captions through umT5 on the fly
                    item["context"] = text.encode([item["caption"]], output_device="cpu")[0].float()
                return {k: (v.cpu() if torch.is_tensor(v) else v)
                        for k, v in encode_raw_sample(item, vae, w2v, args.num_frames).items()}

        data = Encoded()
        key_fn = ds.key_of
        null = cache.null() if cache is not None else text.encode([""], output_device="cpu")[0].float()
        collate = lambda s: collate_latent(s, model_text_len)  # noqa: E731
    source = BatchSource(data, args.batch_size, collate, key_fn=key_fn, seed=args.seed, rank=rank, world_size=world)
    return source, null


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    import torch
    import torch.distributed as dist

    from talkverse import TalkVerseTransformer3DModel
    from talkverse.training.batch import Dropout
    from talkverse.training.setup import apply_strategy, canonical_strategy, reinit_time_head, trainable_count
    from talkverse.training.trainer import Trainer, TrainConfig, init_distributed, seed_everything, world

    strategy = "full" if args.finetune_all else canonical_strategy(args.unfreeze_strategy)
    device = init_distributed(args.device)
    rank, world_size = world()
    # The same seed on every rank while the model is built: the spec init of the S2V modules and the LoRA A matrices
    # must be identical everywhere (FSDP2 shards each rank's own copy; DDP would broadcast rank 0's).
    seed_everything(args.seed, 0)
    mixed = args.mixed_precision if args.mixed_precision != "auto" else ("bf16" if device.type == "cuda" else "no")
    model = TalkVerseTransformer3DModel.from_wan(args.ckpt_dir, args.init_ckpt, config=args.model_config,
                                                 torch_dtype=torch.float32)
    if args.reinit_time_head:
        reinit_time_head(model)
    apply_strategy(model, strategy, args.lora_rank, args.lora_alpha)
    if not args.enable_framepack:
        model.frame_packer.requires_grad_(False)
    seed_everything(args.seed, rank)
    if rank == 0:
        logging.info("strategy %s: %s trainable parameters", strategy, f"{trainable_count(model):,}")
    cfg = TrainConfig(output_path=args.output_path, strategy=strategy, lora_rank=args.lora_rank,
                      lora_alpha=args.lora_alpha, learning_rate=args.learning_rate, lora_lr_scale=args.lora_lr_scale,
                      framepack_lr_scale=args.framepack_lr_scale, weight_decay=args.weight_decay,
                      warmup_steps=args.warmup_steps, max_grad_norm=args.max_grad_norm, batch_size=args.batch_size,
                      gradient_accumulation_steps=args.gradient_accumulation_steps, max_steps=args.max_steps,
                      timestep_sampling=args.timestep_sampling,
                      dropout=Dropout(args.text_dropout, args.audio_dropout, args.ref_dropout, args.motion_dropout),
                      enable_roi_loss=args.enable_roi_loss, enable_framepack=args.enable_framepack,
                      mixed_precision=mixed, gradient_checkpointing=args.gradient_checkpointing,
                      distributed_policy=args.distributed_policy, save_steps=args.save_steps,
                      keep_last=args.keep_last, log_interval=args.log_interval, seed=args.seed,
                      export_dtype=args.export_dtype)
    source, null = build_data(args, model.config.text_len, device, rank, world_size)
    trainer = Trainer(model, cfg, source, null, device)
    trainer.resume(args.resume)
    last = trainer.train()
    if rank == 0:
        print(f"done: step {trainer.step}, last log {last}", flush=True)
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
