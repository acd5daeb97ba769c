"""Build a TalkVersePipeline from what users have on disk (checkpoints.md §1-§2).

* A folder written by ``TalkVersePipeline.save_pretrained`` (``model_index.json`` naming TalkVersePipeline), and
  optionally a TalkVerse file trained from it (``lora_ckpt``: a ``step-N.safetensors`` of ``talkverse-train
  --ckpt_dir <that folder>``), merged on top of its transformer.
* The original Wan2.2-TI2V-5B directory or its Diffusers layout plus the TalkVerse file (``lora_ckpt``):
  ``talkverse.loaders.components``.

The scheduler is always the reference recipe with the requested flow ``shift`` and ``solver`` (``make_scheduler``); a
saved folder's ``scheduler/`` config is not used for sampling.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..convert.errors import CheckpointError
from ..loaders.components import load_wan_components
from ..loaders.layout import is_talkverse_folder
from .pipeline_talkverse import TalkVersePipeline
from .scheduling import make_scheduler


def load_pipeline(ckpt_dir: str | Path, lora_ckpt: str | Path | None = None, wav2vec_dir: str | Path | None = None,
                  *, config: str | dict = "s2v_5b", dit_dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu", t5_cpu: bool = False, lora_alpha: float | None = None,
                  vae_config=None, t5_config=None, dit_only: bool = False, profile: str | None = None,
                  perf: dict | None = None, shift: float = 5.0, solver: str = "unipc") -> TalkVersePipeline:
    """The pipeline on ``device`` (umT5 stays on the CPU with ``t5_cpu``).

    DiT weights in ``dit_dtype`` (fp32 islands kept); VAE and wav2vec2 in fp32; umT5 in bf16 as shipped.
    ``config`` / ``vae_config`` / ``t5_config`` name the architectures of original-layout files (defaults: the real 5B
    model, Wan2.2 VAE, umT5-XXL). ``dit_only`` loads just the transformer (the non-host ranks of a multi-rank run).
    ``profile`` ("default", "fast", "low_vram") and ``perf`` (single options, e.g. ``{"fp8": True}``) apply
    :mod:`talkverse.perf.optimize`; with group offloading the DiT weights never move to ``device`` as a whole.
    ``shift`` / ``solver``: the sampler (``make_scheduler``)."""
    from ..perf.optimize import PerfOptions, apply_optimizations, cast_dit, resolve_profile

    root = Path(ckpt_dir)
    if not root.exists():
        raise CheckpointError(f"{root}: checkpoint folder not found")
    scheduler = make_scheduler(shift, solver)
    if is_talkverse_folder(root):
        if wav2vec_dir is not None and (root / "audio_encoder").is_dir():
            raise CheckpointError(f"{root} is a saved TalkVersePipeline with its own audio_encoder/: a separate "
                                  f"wav2vec2 folder ({wav2vec_dir}) would be ignored")
        skip = dict(vae=None, text_encoder=None, tokenizer=None, audio_encoder=None, feature_extractor=None) \
            if dit_only else {}
        if lora_ckpt is not None:  # the saved transformer is the base, the TalkVerse file goes on top
            from ..loaders.layout import saved_transformer_config
            from ..loaders.transformer import load_transformer

            skip["transformer"] = load_transformer(root, lora_ckpt, config=saved_transformer_config(root),
                                                   torch_dtype=dit_dtype, lora_alpha=lora_alpha)
        pipe = TalkVersePipeline.from_pretrained(str(root), local_files_only=True, scheduler=scheduler, **skip)
        cast_dit(pipe.transformer, dit_dtype)  # not .to(dtype): the fp32 islands stay fp32
        if pipe.audio_encoder is None and wav2vec_dir is not None and not dit_only:
            from ..loaders.wav2vec import load_wav2vec

            w2v = load_wav2vec(wav2vec_dir)
            pipe.register_modules(audio_encoder=w2v.model, feature_extractor=w2v.feature_extractor)
    else:
        parts = load_wan_components(root, lora_ckpt, wav2vec_dir, config=config, dit_dtype=dit_dtype,
                                    lora_alpha=lora_alpha, vae_config=vae_config, t5_config=t5_config,
                                    dit_only=dit_only)
        parts.setdefault("vae", None)
        pipe = TalkVersePipeline(scheduler=scheduler, **parts)
    opts = resolve_profile(profile, **(perf or {}))
    t5_cpu = bool(t5_cpu or opts.t5_cpu)
    dev = torch.device(device)
    for name in ("transformer", "vae", "audio_encoder"):
        m = getattr(pipe, name)
        if m is not None:
            m.eval()
            if not (name == "transformer" and opts.group_offload):
                m.to(dev)
    if pipe.text_encoder is not None:
        pipe.text_encoder.to("cpu" if t5_cpu else dev).eval()
    pipe.t5_cpu = t5_cpu
    if opts != PerfOptions():
        apply_optimizations(pipe, opts, dev)
    return pipe
