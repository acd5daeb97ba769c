"""Build a TalkVersePipeline from what users have on disk (checkpoints.md §1-§2).

* A folder written by ``TalkVersePipeline.save_pretrained`` (``model_index.json`` naming TalkVersePipeline).
* The original Wan2.2-TI2V-5B directory (sharded DiT safetensors + ``Wan2.2_VAE.pth`` +
  ``models_t5_umt5-xxl-enc-bf16.pth`` + ``google/umt5-xxl/``) plus the TalkVerse file (``--lora_ckpt``).
* Wan2.2-TI2V-5B in the Diffusers layout (``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``) plus the
  TalkVerse file.

wav2vec2 (``wav2vec2-large-xlsr-53-english``) comes from ``wav2vec_dir``, else from ``<ckpt_dir>/audio_encoder`` or
``<ckpt_dir>/wav2vec2-large-xlsr-53-english`` (where the reference expects it). Every missing piece is reported in one
``CheckpointError`` naming the folder and what was looked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..convert.errors import CheckpointError

WAV2VEC_NAMES = ("audio_encoder", "wav2vec2-large-xlsr-53-english")
ORIGINAL_VAE = ("Wan2.2_VAE.pth", "Wan2.2_VAE.safetensors")
ORIGINAL_T5 = ("models_t5_umt5-xxl-enc-bf16.pth", "models_t5_umt5-xxl-enc-bf16.safetensors")
ORIGINAL_TOKENIZER = ("google/umt5-xxl", "tokenizer")


def _first(folder: Path, names) -> Path | None:
    for n in names:
        if (folder / n).exists():
            return folder / n
    return None


def is_talkverse_folder(path: str | Path) -> bool:
    index = Path(path) / "model_index.json"
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("_class_name") == "TalkVersePipeline"
    except (OSError, ValueError):
        return False


def find_wav2vec(ckpt_dir: Path, wav2vec_dir: str | Path | None) -> Path:
    if wav2vec_dir is not None:
        return Path(wav2vec_dir)
    found = _first(ckpt_dir, WAV2VEC_NAMES)
    if found is None:
        raise CheckpointError(f"{ckpt_dir}: no wav2vec2 folder; pass --wav2vec_dir (a local "
                              f"wav2vec2-large-xlsr-53-english folder) or put it in {ckpt_dir}/{WAV2VEC_NAMES[1]}")
    return found


def load_pipeline(ckpt_dir: str | Path, lora_ckpt: str | Path | None = None, wav2vec_dir: str | Path | None = None,
                  *, config: str = "s2v_5b", dit_dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu", t5_cpu: bool = False, lora_alpha: float | None = None,
                  vae_config: dict | str | None = None, t5_config: dict | str | None = None, dit_only: bool = False,
                  profile: str | None = None, perf: dict | None = None):
    """The pipeline on ``device`` (umT5 stays on the CPU with ``t5_cpu``). DiT weights in ``dit_dtype`` (fp32
    islands kept); VAE and wav2vec2 in fp32; umT5 in bf16 as shipped. ``config`` / ``vae_config`` / ``t5_config``
    name the architectures of original-layout files (defaults: the real 5B model, Wan2.2 VAE, umT5-XXL).
    ``dit_only`` loads just the transformer (the non-host ranks of a multi-rank run). ``profile`` ("default",
    "fast", "low_vram") and ``perf`` (single options, e.g. ``{"fp8": True}``) apply :mod:`talkverse.perf.optimize`;
    with group offloading the DiT weights never move to ``device`` as a whole."""
    from ..audio.wav2vec import Wav2Vec2Features
    from ..models.text_encoder import TextEncoder
    from ..models.transformer_talkverse import TalkVerseTransformer3DModel
    from ..models.vae import TalkVerseVAE
    from ..perf.optimize import PerfOptions, apply_optimizations, cast_dit, resolve_profile
    from .pipeline_talkverse import TalkVersePipeline
    from .scheduling import make_scheduler

    root = Path(ckpt_dir)
    if not root.exists():
        raise CheckpointError(f"--ckpt_dir {root}: not found")
    if is_talkverse_folder(root):
        if lora_ckpt is not None:
            raise CheckpointError(f"{root} is a saved TalkVersePipeline (LoRA already merged); drop --lora_ckpt")
        skip = dict(vae=None, text_encoder=None, tokenizer=None, audio_encoder=None, feature_extractor=None) \
            if dit_only else {}
        pipe = TalkVersePipeline.from_pretrained(str(root), local_files_only=True, **skip)
        cast_dit(pipe.transformer, dit_dtype)  # not .to(dtype): the fp32 islands stay fp32
    else:
        transformer = TalkVerseTransformer3DModel.from_wan(str(root), None if lora_ckpt is None else str(lora_ckpt),
                                                           config=config, torch_dtype=dit_dtype, device="cpu",
                                                           lora_alpha=lora_alpha)
        diffusers_layout = (root / "vae" / "config.json").exists()
        if dit_only:
            pipe = TalkVersePipeline(transformer=transformer, vae=None, scheduler=make_scheduler(5.0))
        else:
            if diffusers_layout:
                vae = TalkVerseVAE.from_diffusers(root).vae
                text = TextEncoder.from_diffusers(root)
            else:
                vae_file, t5_file, tok = _first(root, ORIGINAL_VAE), _first(root, ORIGINAL_T5), \
                    _first(root, ORIGINAL_TOKENIZER)
                missing = [what for what, f in (("/".join(ORIGINAL_VAE), vae_file), ("/".join(ORIGINAL_T5), t5_file),
                                                ("/".join(ORIGINAL_TOKENIZER) + "/", tok)) if f is None]
                if missing:
                    raise CheckpointError(f"{root}: not a complete Wan2.2-TI2V-5B directory; missing "
                                          f"{', '.join(missing)}")
                vae = TalkVerseVAE.from_original(vae_file, config=vae_config).vae
                text = TextEncoder.from_original(t5_file, tokenizer=tok, config=t5_config)
            w2v = Wav2Vec2Features.from_pretrained(find_wav2vec(root, wav2vec_dir))
            pipe = TalkVersePipeline(transformer=transformer, vae=vae, scheduler=make_scheduler(5.0),
                                     text_encoder=text.model, tokenizer=text.tokenizer, audio_encoder=w2v.model,
                                     feature_extractor=w2v.feature_extractor)
    if pipe.audio_encoder is None and wav2vec_dir is not None and not dit_only:
        w2v = Wav2Vec2Features.from_pretrained(wav2vec_dir)
        pipe.register_modules(audio_encoder=w2v.model, feature_extractor=w2v.feature_extractor)
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
