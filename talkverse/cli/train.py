"""talkverse-train (train_s2v_5b.py): train TalkVerse-S2V-5B (or a smaller config) on TalkVerse-format data, on one or
many GPUs.

    torchrun --nproc_per_node=8 train_s2v_5b.py --ckpt_dir ckpts/Wan2.2-TI2V-5B --wav2vec_dir ckpts/wav2vec2 \\
        --csv data/train.csv --data_root data --text_cache data/text_embeddings --output_path runs/s2v \\
        --batch_size 1 --gradient_accumulation_steps 8 --learning_rate 1e-5 --unfreeze_strategy lora \\
        --enable_roi_loss true --distributed_policy fsdp --mixed_precision bf16

Data: the metadata CSV(s) + mp4 clips with audio + DWPose npz + cached umT5 embeddings (--text_cache), with the VAE and
wav2vec2 run online; or latents pre-computed by scripts/precache.py (--latent_cache), which removes the VAE from the
step. Checkpoints: <output_path>/step-N.safetensors (TalkVerse format, usable as generate.py --lora_ckpt) and
<output_path>/checkpoints/ (full resume state; --resume auto continues from the newest complete one).
The reference's flag names are accepted, and booleans parse "false"/"true" as such. Every default is TrainConfig's
(talkverse/training/config.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
import typing
from pathlib import Path

from .checks import FAILED, INTERRUPTED, OK, TRAIN_EXIT_STATUS_HELP, USAGE, OneLineParser, UsageError, check_device


def str2bool(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in ("1", "true", "yes", "y", "on"):
        return True
    if s in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {v!r}")


def _kind(annotation: str):
    """argparse type of a TrainConfig annotation (they are strings under ``from __future__ import annotations``)."""
    base = annotation.replace(" | None", "")
    return {"bool": str2bool, "int": int, "float": float}.get(base, str)


def build_parser() -> argparse.ArgumentParser:
    from ..training.config import config_fields

    p = OneLineParser(prog="talkverse-train", description=__doc__, epilog=TRAIN_EXIT_STATUS_HELP,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    groups: dict[str, argparse._ArgumentGroup] = {}
    for f in config_fields():
        meta = f.metadata
        group = groups.setdefault(meta["group"], p.add_argument_group(meta["group"]))
        kw = {k: meta[k] for k in ("choices", "nargs", "required") if k in meta}
        shown = "" if f.default is None or meta.get("required") else f" (default: {f.default})"
        group.add_argument(*(meta["flags"] or (f"--{f.name}",)), dest=f.name, default=f.default,
                           type=_kind(typing.cast(str, f.type)), help=meta["help"] + shown, **kw)
    return p


def main(argv: list[str] | None = None) -> int:
    from ..training.checks import check_config
    from ..training.config import TrainConfig, TrainingSetupError

    cfg = TrainConfig(**vars(build_parser().parse_args(argv)))
    try:  # every flag and folder, before torch is imported
        check_device(cfg.device)
        check_config(cfg)
    except (UsageError, TrainingSetupError) as e:
        return _error(str(e))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from ..convert.errors import CheckpointError
    from ..parallel.distributed import close_distributed
    from ..training.run import prepare_training

    try:
        trainer = prepare_training(cfg)
    except (CheckpointError, TrainingSetupError, OSError, ValueError) as e:
        return _error(str(e))
    try:
        last = trainer.train()
    except KeyboardInterrupt:
        print(f"interrupted at step {trainer.step}; --resume auto continues from the newest complete checkpoint",
              file=sys.stderr)
        return INTERRUPTED
    except Exception as e:  # noqa: BLE001 - one line; the traceback goes to a file in the run folder
        log = Path(cfg.output_path) / f"error-rank{trainer.rank}.log"
        log.write_text(traceback.format_exc())
        msg = " ".join(str(e).split())
        print(f"error: training failed at step {trainer.step}: {type(e).__name__}: {msg} (traceback: {log})",
              file=sys.stderr)
        return FAILED
    close_distributed()
    if trainer.rank == 0:
        print(f"done: step {trainer.step}, last log {last}", flush=True)
    return OK


def _error(message: str) -> int:
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return USAGE


if __name__ == "__main__":
    sys.exit(main())
