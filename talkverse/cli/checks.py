"""The checks ``talkverse-generate`` runs on its arguments before anything heavy is imported or loaded: each failure is
one line naming the flag (or the file) and the problem, exit status 2."""

from __future__ import annotations

import argparse
import os
import re
import sys

# Exit statuses of talkverse-generate (and talkverse-train), documented in --help.
OK, FAILED, USAGE, INTERRUPTED = 0, 1, 2, 130
EXIT_STATUS_HELP = ("exit status: 0 written; 1 generation failed, or some batch items failed (the summary lists "
                    "them); 2 a bad argument, input file, output path or checkpoint (nothing is loaded or written); "
                    "130 interrupted (Ctrl-C): nothing written")
TRAIN_EXIT_STATUS_HELP = ("exit status: 0 trained to --max_steps; 1 training failed (one line; the traceback is in "
                          "<output_path>/error-rank<N>.log); 2 a bad argument, data folder or checkpoint (checked "
                          "before anything loads); 130 interrupted (Ctrl-C): --resume auto continues from the newest "
                          "complete checkpoint")


class UsageError(ValueError):
    """A command line that cannot run; the message is the one line to print after "error: "."""


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one line (``error: <problem> (<prog> --help lists the flags)``), exit status 2."""

    def error(self, message: str):
        print(f"error: {message} ({self.prog} --help lists the flags)", file=sys.stderr)
        sys.exit(USAGE)


def _given(args, parser, name: str) -> bool:
    return getattr(args, name) != parser.get_default(name)


# Flags each mode ignores, so a user who gives one is told instead of silently getting something else.
SINGLE_ONLY = ("image", "audio", "dub_video", "pose_video", "save_file", "save_frames_npy")
DUB_ONLY = ("dub_strength", "dub_ref", "dub_region", "dub_face_index", "dub_face_order", "dub_track", "dub_feather")


def check_flag_combinations(args, parser) -> None:
    for flag in ("use_prompt_extend", "enable_tts"):
        if getattr(args, flag, False):
            raise UsageError(f"--{flag} is accepted for Wan2.2's CLI but not supported here (no prompt extension or "
                             "TTS model); pass the final --prompt and an --audio file")
    if args.batch_file:
        for name in SINGLE_ONLY:
            if getattr(args, name) is not None:
                raise UsageError(f"--{name} is not used with --batch_file (each batch item names its own inputs and "
                                 "the output is <output_dir>/<name>.mp4)")
    if args.dub_video is None and not args.batch_file:
        for name in DUB_ONLY:
            if _given(args, parser, name):
                raise UsageError(f"--{name} only applies to dubbing; pass --dub_video too")
    if args.dit_fsdp and args.ulysses_size <= 1 and not args.cfg_parallel:
        raise UsageError("--dit_fsdp shards the DiT over the ranks of one video: use it with --ulysses_size N "
                         "and/or --cfg_parallel under torchrun")
    if args.cfg_parallel and args.sample_guide_scale <= 1:
        raise UsageError("--cfg_parallel needs CFG (--sample_guide_scale > 1)")


def check_model_flags(args, parser) -> None:
    """Flags the chosen checkpoint folder would ignore."""
    from pathlib import Path

    from ..loaders.layout import is_talkverse_folder

    if not (args.ckpt_dir and is_talkverse_folder(args.ckpt_dir)):
        return
    if _given(args, parser, "model_config"):
        raise UsageError(f"--model_config {args.model_config}: {args.ckpt_dir} is a saved pipeline with its own "
                         "transformer config; drop --model_config")
    if args.wav2vec_dir is not None and (Path(args.ckpt_dir) / "audio_encoder").is_dir():
        raise UsageError(f"--wav2vec_dir {args.wav2vec_dir}: {args.ckpt_dir} is a saved pipeline with its own "
                         "audio_encoder/; drop --wav2vec_dir")


def check_device(name: str | None) -> None:
    """A device name torch understands, and CUDA present when it is asked for (without importing torch)."""
    if name is None:
        return
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise UsageError(f"--device {name!r}: use cpu, cuda or cuda:N")
    if name.startswith("cuda") and not (os.path.exists("/dev/nvidiactl") or os.path.exists("/dev/dxg")):
        raise UsageError(f"--device {name}: no CUDA device on this machine (use --device cpu)")


def check_cuda_with_torch(name: str | None) -> None:
    """The device check that needs torch (run just before the model loads)."""
    if name is None or not name.startswith("cuda"):
        return
    import torch

    if not torch.cuda.is_available():
        raise UsageError(f"--device {name}: CUDA is not available to torch ({torch.__version__}); use --device cpu")
    index = int(name.split(":")[1]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise UsageError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
