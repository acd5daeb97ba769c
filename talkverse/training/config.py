"""``TrainConfig``: every training setting and its default, in one place (training.md §5-§12).

``talkverse-train`` (train_s2v_5b.py) derives its flags from these fields: the flag is ``--<field>`` unless the field's
metadata names the reference's flag(s), and the help text is the metadata's. Booleans parse "true"/"false".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .batch import Dropout

# The unfreeze strategies (talkverse.training.setup applies them) and the reference's names for two of them.
STRATEGIES = ("new_modules", "minimal", "lora", "full")
STRATEGY_ALIASES = {"framepack": "new_modules", "finetune_all": "full"}
NO_RESUME = ("none", "no", "false")  # --resume values that start afresh


class TrainingSetupError(ValueError):
    """A training run cannot start with these options or data; the message says which and why, in one line."""


def canonical_strategy(name: str) -> str:
    name = STRATEGY_ALIASES.get(name, name)
    if name not in STRATEGIES:
        raise ValueError(f"unknown unfreeze strategy {name!r}; choose one of {', '.join(STRATEGIES)} "
                         f"(aliases: {', '.join(STRATEGY_ALIASES)})")
    return name


def parse_sampling(spec: str) -> tuple[str, float]:
    """``--timestep_sampling`` as (kind, shift): uniform | logit_normal | shifted:<s> (talkverse.training.objective)."""
    if spec in ("uniform", "logit_normal"):
        return spec, 1.0
    if spec.startswith("shifted:"):
        try:
            s = float(spec.split(":", 1)[1])
        except ValueError:
            s = 0.0
        if s <= 0:
            raise ValueError(f"the shift must be a positive number in {spec!r}")
        return "shifted", s
    raise ValueError(f"unknown timestep sampling {spec!r}; use uniform, logit_normal or shifted:<s>")


def _f(default, help: str, group: str, flags: tuple[str, ...] = (), **extra):
    return field(default=default, metadata={"help": help, "group": group, "flags": flags, **extra})


MODEL, DATA, OPTIM, RUN = "model", "data", "optimisation", "distributed, checkpoints, logging"


@dataclass
class TrainConfig:
    # ---- model
    ckpt_dir: str | None = _f(None, "Wan2.2-TI2V-5B base (original or Diffusers layout), or a saved TalkVersePipeline "
                                    "folder (its model config is then read from it)", MODEL, required=True)
    model_config: str | None = _f(None, "transformer config preset (talkverse/configs/<name>.yaml or a YAML path); "
                                        "default: the saved folder's own config, else s2v_5b", MODEL)
    init_ckpt: str | None = _f(None, "optional TalkVerse file to start from (S2V modules, time/head, merged LoRA) "
                                     "instead of the spec init", MODEL)
    strategy: str = _f("lora", "new_modules (alias framepack) | minimal | lora | full", MODEL, ("--unfreeze_strategy",))
    finetune_all: bool = _f(False, "same as --unfreeze_strategy full", MODEL)
    lora_rank: int = _f(128, "LoRA rank", MODEL)
    lora_alpha: float = _f(128.0, "LoRA alpha (128: scale 1 at rank 128)", MODEL)
    reinit_time_head: bool = _f(False, "re-initialise time embedding/projection and head as the reference did", MODEL)
    enable_framepack: bool = _f(True, "use motion frames through FramePack (false: no motion tokens, frame_packer "
                                      "frozen)", MODEL)
    gradient_checkpointing: bool = _f(True, "per-block activation checkpointing, each block with its audio injector",
                                      MODEL)
    # ---- data
    csv: list[str] | None = _f(None, "metadata CSV file(s)", DATA, ("--csv", "--metadata_csv"), nargs="+")
    data_root: str = _f(".", "root the CSV's video_path is relative to", DATA)
    text_cache: str | None = _f(None, "folder of cached umT5 embeddings (<clip_id>.safetensors or <id>.pt, and the "
                                      "null embedding)", DATA)
    text_encoder: str | None = _f(None, "umT5 to encode captions on the fly instead of --text_cache: the "
                                        "models_t5_umt5-xxl-enc-bf16.pth file or a Diffusers text_encoder/ folder",
                                  DATA)
    tokenizer: str | None = _f(None, "tokenizer folder for --text_encoder (default: google/umt5-xxl inside "
                                     "--ckpt_dir)", DATA)
    latent_cache: str | None = _f(None, "folder written by scripts/precache.py (then --csv/--vae are not needed)", DATA)
    vae: str | None = _f(None, "Wan2.2_VAE.pth or a Diffusers vae/ folder (default: inside --ckpt_dir)", DATA)
    vae_config: str | None = _f(None, "VAE architecture preset/YAML for an original-layout file", DATA)
    wav2vec_dir: str | None = _f(None, "local wav2vec2-large-xlsr-53-english folder", DATA)
    size_bucket: str = _f("fasttalk-720", "fasttalk-720 | fasttalk-480 | a fixed WxH (width first)", DATA)
    num_frames: int = _f(72, "main frames per sample (multiple of 4)", DATA)
    always_use_motion_frames: bool = _f(False, "reject clips too short for 73 motion + main frames", DATA)
    # ---- optimisation
    batch_size: int = _f(1, "samples per GPU per micro-step", OPTIM)
    gradient_accumulation_steps: int = _f(8, "micro-steps per optimizer step", OPTIM)
    learning_rate: float = _f(1e-5, "base LR (new modules, time/head)", OPTIM)
    lora_lr_scale: float = _f(10.0, "LoRA LR multiplier", OPTIM)
    framepack_lr_scale: float = _f(1.0, "frame_packer LR multiplier", OPTIM)
    weight_decay: float = _f(0.01, "AdamW weight decay (every group)", OPTIM)
    warmup_steps: int = _f(1000, "linear warm-up in optimizer steps", OPTIM)
    max_grad_norm: float = _f(1.0, "per-group gradient clipping norm", OPTIM)
    max_steps: int = _f(10000, "optimizer steps to train to", OPTIM)
    timestep_sampling: str = _f("uniform", "uniform (reference) | logit_normal | shifted:<s>", OPTIM)
    enable_roi_loss: bool = _f(True, "ROI-weighted MSE (false: plain MSE)", OPTIM)
    text_dropout: float = _f(0.1, "probability of dropping the text condition per sample", OPTIM)
    audio_dropout: float = _f(0.1, "probability of dropping the audio condition per sample", OPTIM)
    ref_dropout: float = _f(0.1, "probability of dropping the reference condition per sample", OPTIM)
    motion_dropout: float = _f(0.1, "probability of dropping the motion condition per sample", OPTIM)
    mixed_precision: str = _f("auto", "bf16 autocast over fp32 master weights (auto: bf16 on CUDA, no on CPU)", OPTIM,
                              choices=("auto", "no", "bf16"))
    seed: int = _f(0, "seed of the data order and every per-sample draw", OPTIM)
    # ---- distributed, checkpoints, logging
    distributed_policy: str = _f("ddp", "DDP or FSDP2 per block", RUN, choices=("ddp", "fsdp"))
    device: str | None = _f(None, "cuda / cpu (default: cuda:LOCAL_RANK when available)", RUN)
    output_path: str = _f("outputs/train", "run folder (exports, resume states, log)", RUN)
    save_steps: int = _f(250, "save every N optimizer steps (and at the end)", RUN)
    keep_last: int = _f(3, "resume states kept", RUN)
    export_dtype: str = _f("bf16", "dtype of step-N.safetensors", RUN, choices=("bf16", "fp32"))
    log_interval: int = _f(10, "log every N optimizer steps (train_log.jsonl)", RUN)
    resume: str = _f("auto", "auto (newest complete state in output_path), a state folder, or none", RUN)

    @property
    def dropout(self) -> "Dropout":
        from .batch import Dropout

        return Dropout(self.text_dropout, self.audio_dropout, self.ref_dropout, self.motion_dropout)

    def resolved(self, device_type: str) -> "TrainConfig":
        """The canonical strategy and the mixed precision of ``auto`` on this device."""
        from dataclasses import replace

        try:
            strategy = "full" if self.finetune_all else canonical_strategy(self.strategy)
        except ValueError as e:
            raise TrainingSetupError(f"--unfreeze_strategy: {e}") from None
        mixed = self.mixed_precision if self.mixed_precision != "auto" else ("bf16" if device_type == "cuda" else "no")
        return replace(self, strategy=strategy, mixed_precision=mixed)

    def to_dict(self) -> dict:
        return asdict(self)


def config_fields():
    """The fields of :class:`TrainConfig`, in declaration order (for the CLI)."""
    return fields(TrainConfig)
