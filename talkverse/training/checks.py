"""The checks ``talkverse-train`` runs on a :class:`~talkverse.training.config.TrainConfig` before torch is imported or
any model loads (training.md §5-§12): each failure is one ``TrainingSetupError`` line naming the flag, the file and the
problem."""

from __future__ import annotations

import os
from pathlib import Path

from ..data.files import NULL_EMBEDDING_FILES, cached_windows, null_embedding_file
from ..loaders.layout import is_talkverse_folder
from ..media.paths import nearest_existing
from ..media.sizes import check_size_spec
from .config import NO_RESUME, TrainConfig, TrainingSetupError, canonical_strategy, parse_sampling

# (field, smallest allowed value) of the counts and rates that must be positive or non-negative.
AT_LEAST = (("batch_size", 1), ("gradient_accumulation_steps", 1), ("max_steps", 1), ("save_steps", 1),
            ("log_interval", 1), ("keep_last", 1), ("lora_rank", 1), ("warmup_steps", 0), ("num_frames", 4))
POSITIVE = ("max_grad_norm", "lora_alpha")
NON_NEGATIVE = ("learning_rate", "lora_lr_scale", "framepack_lr_scale", "weight_decay")  # 0 freezes (a baseline run)
PROBABILITIES = ("text_dropout", "audio_dropout", "ref_dropout", "motion_dropout")


def _exists(flag: str, value) -> Path:
    p = Path(value)
    if not p.exists():
        raise TrainingSetupError(f"--{flag} {value}: not found")
    return p


def check_numbers(cfg: TrainConfig) -> None:
    for name, low in AT_LEAST:
        if getattr(cfg, name) < low:
            raise TrainingSetupError(f"--{name} {getattr(cfg, name)}: must be at least {low}")
    for name in POSITIVE:
        if not getattr(cfg, name) > 0:
            raise TrainingSetupError(f"--{name} {getattr(cfg, name)}: must be positive")
    for name in NON_NEGATIVE:
        if not getattr(cfg, name) >= 0:
            raise TrainingSetupError(f"--{name} {getattr(cfg, name)}: must be >= 0")
    for name in PROBABILITIES:
        if not 0 <= getattr(cfg, name) <= 1:
            raise TrainingSetupError(f"--{name} {getattr(cfg, name)}: a probability, in [0, 1]")
    if cfg.num_frames % 4:
        raise TrainingSetupError(f"--num_frames {cfg.num_frames}: must be a multiple of 4 (the VAE's time stride)")
    for flag, check in (("unfreeze_strategy", lambda: canonical_strategy(cfg.strategy)),
                        ("timestep_sampling", lambda: parse_sampling(cfg.timestep_sampling)),
                        ("size_bucket", lambda: check_size_spec(cfg.size_bucket))):
        try:
            check()
        except ValueError as e:
            raise TrainingSetupError(f"--{flag}: {e}") from None


def check_model(cfg: TrainConfig) -> None:
    from ..configs import config_path

    if not _exists("ckpt_dir", cfg.ckpt_dir).is_dir():
        raise TrainingSetupError(f"--ckpt_dir {cfg.ckpt_dir}: not a folder (the Wan2.2-TI2V-5B directory, original or "
                                 "Diffusers layout, or a saved TalkVersePipeline folder)")
    if cfg.model_config is not None:
        try:
            config_path(cfg.model_config)
        except FileNotFoundError as e:
            raise TrainingSetupError(f"--model_config: {e}") from None
        if is_talkverse_folder(cfg.ckpt_dir):
            raise TrainingSetupError(f"--model_config {cfg.model_config}: {cfg.ckpt_dir} is a saved pipeline with its "
                                     "own transformer config; drop --model_config")
    if cfg.init_ckpt is not None:
        _exists("init_ckpt", cfg.init_ckpt)


def check_data(cfg: TrainConfig) -> None:
    if cfg.latent_cache:
        folder = _exists("latent_cache", cfg.latent_cache)
        if not cached_windows(folder):
            raise TrainingSetupError(f"--latent_cache {folder}: no cached windows (<clip_id>.safetensors written by "
                                     "scripts/precache.py)")
        if cfg.text_cache is None and null_embedding_file(folder) is None:
            raise TrainingSetupError(f"--latent_cache {folder}: no null text embedding ({NULL_EMBEDDING_FILES[0]}, "
                                     "written by scripts/precache.py); pass --text_cache with the folder that holds it")
    elif not cfg.csv:
        raise TrainingSetupError("pass --latent_cache (scripts/precache.py), or --csv with --data_root, --text_cache "
                                 "and --wav2vec_dir")
    else:
        for csv in cfg.csv:
            _exists("csv", csv)
        _exists("data_root", cfg.data_root)
        if not (cfg.text_cache or cfg.text_encoder):
            raise TrainingSetupError("--csv needs --text_cache (cached umT5 embeddings) or --text_encoder (encode the "
                                     "captions on the fly)")
        if not cfg.wav2vec_dir:
            raise TrainingSetupError("--csv needs --wav2vec_dir (wav2vec2 runs online on the clips' audio)")
    for flag in ("text_cache", "text_encoder", "tokenizer", "vae", "wav2vec_dir"):
        if getattr(cfg, flag) is not None:
            _exists(flag, getattr(cfg, flag))
    if cfg.text_cache is not None and cfg.latent_cache is None and null_embedding_file(cfg.text_cache) is None:
        raise TrainingSetupError(f"--text_cache {cfg.text_cache}: no null text embedding "
                                 f"({' or '.join(NULL_EMBEDDING_FILES)})")


def check_run_folder(cfg: TrainConfig) -> None:
    out = Path(cfg.output_path)
    if out.exists() and not out.is_dir():
        raise TrainingSetupError(f"--output_path {out}: is a file, not a folder")
    ancestor = nearest_existing(out)
    if not ancestor.is_dir():
        raise TrainingSetupError(f"--output_path {out}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise TrainingSetupError(f"--output_path {out}: cannot write in {ancestor}")
    if cfg.resume not in ("auto", *NO_RESUME):
        state = _exists("resume", cfg.resume)
        missing = [n for n in ("trainables.pt", "state.pt") if not (state / n).is_file()]
        if missing:
            raise TrainingSetupError(f"--resume {state}: not a resume state (missing {', '.join(missing)}); use "
                                     "auto, none, or a folder under <output_path>/checkpoints/")


def check_config(cfg: TrainConfig) -> None:
    """Every check above, cheapest first."""
    check_numbers(cfg)
    check_model(cfg)
    check_data(cfg)
    check_run_folder(cfg)
