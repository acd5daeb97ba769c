"""Load a TalkVersePipeline from parsed command-line options (shared by generate.py and the web app).

``args`` needs ``ckpt_dir``; ``lora_ckpt``, ``wav2vec_dir``, ``model_config``, ``lora_alpha``, ``convert_model_dtype``,
``t5_cpu``, ``offload_model`` and the performance flags (``profile``, ``attention_backend``, ``compile``, ``fp8``,
``group_offload``; talkverse.perf.optimize) are read when present (generate.py's flag names), else their defaults.
"""

from __future__ import annotations

import os

import torch


def default_device(name: str | None = None) -> torch.device:
    """``name`` when given, else cuda:LOCAL_RANK when CUDA is available, else the CPU."""
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def load_pipeline_from_args(args, device: torch.device, dit_only: bool = False):
    from .loading import load_pipeline

    dtype = torch.bfloat16 if getattr(args, "convert_model_dtype", False) else torch.float32
    pipe = load_pipeline(args.ckpt_dir, getattr(args, "lora_ckpt", None), getattr(args, "wav2vec_dir", None),
                         config=getattr(args, "model_config", "s2v_5b"), dit_dtype=dtype, device=device,
                         t5_cpu=getattr(args, "t5_cpu", False), lora_alpha=getattr(args, "lora_alpha", None),
                         dit_only=dit_only, profile=getattr(args, "profile", None), perf=perf_options_from_args(args))
    pipe.offload_encoders = pipe.offload_encoders or getattr(args, "offload_model", False)
    return pipe


def perf_options_from_args(args) -> dict:
    """generate.py's single performance flags (--attention_backend, --compile, --fp8, --group_offload), when present."""
    return dict(attention_backend=getattr(args, "attention_backend", None), compile=getattr(args, "compile", False),
                fp8=getattr(args, "fp8", False), group_offload=getattr(args, "group_offload", False))
