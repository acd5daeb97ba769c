"""The components of a Wan2.2-TI2V-5B checkpoint folder plus the TalkVerse file (checkpoints.md §1-§2), or of a
Wan2.2-S2V-14B folder (the whole model; docs/s2v14b.md).

* The original Wan2.2-TI2V-5B directory: sharded DiT safetensors + index, ``Wan2.2_VAE.pth``,
  ``models_t5_umt5-xxl-enc-bf16.pth`` and ``google/umt5-xxl/``. The original Wan2.2-S2V-14B directory is the same
  with ``Wan2.1_VAE.pth`` and ``wav2vec2-large-xlsr-53-english/`` (chosen by the ``s2v_14b`` config: ``cond_dim``).
* Either model in the Diffusers layout: ``transformer/``, ``vae/``, ``text_encoder/``, ``tokenizer/``.

wav2vec2 (``wav2vec2-large-xlsr-53-english``) comes from ``wav2vec_dir``, else from ``<ckpt_dir>/audio_encoder`` or
``<ckpt_dir>/wav2vec2-large-xlsr-53-english`` (where the reference expects it). Every missing piece is reported in one
``CheckpointError`` naming the folder and what was looked for. A folder saved by ``TalkVersePipeline.save_pretrained``
is the pipelines layer's to load (``talkverse.pipelines.loading``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ..convert.errors import CheckpointError

WAV2VEC_NAMES = ("audio_encoder", "wav2vec2-large-xlsr-53-english")
ORIGINAL_VAE = ("Wan2.2_VAE.pth", "Wan2.2_VAE.safetensors")
ORIGINAL_VAE_21 = ("Wan2.1_VAE.pth", "Wan2.1_VAE.safetensors")  # S2V-14B
ORIGINAL_T5 = ("models_t5_umt5-xxl-enc-bf16.pth", "models_t5_umt5-xxl-enc-bf16.safetensors")
ORIGINAL_TOKENIZER = ("google/umt5-xxl", "tokenizer")


def first_existing(folder: Path, names) -> Path | None:
    return next((folder / n for n in names if (folder / n).exists()), None)


def find_wav2vec(ckpt_dir: Path, wav2vec_dir: str | Path | None) -> Path:
    if wav2vec_dir is not None:
        return Path(wav2vec_dir)
    found = first_existing(ckpt_dir, WAV2VEC_NAMES)
    if found is None:
        raise CheckpointError(f"{ckpt_dir}: no wav2vec2 folder; give wav2vec_dir (a local "
                              f"wav2vec2-large-xlsr-53-english folder) or put it in {ckpt_dir}/{WAV2VEC_NAMES[1]}")
    return found


def load_wan_components(root: str | Path, lora_ckpt: str | Path | None = None, wav2vec_dir: str | Path | None = None,
                        *, config: str | dict = "s2v_5b", dit_dtype: torch.dtype = torch.float32,
                        lora_alpha: float | None = None, vae_config=None, t5_config=None,
                        dit_only: bool = False) -> dict:
    """The pipeline components (CPU) of a Wan2.2 folder in either layout plus the TalkVerse file ``lora_ckpt``:
    ``transformer``, and unless ``dit_only`` also ``vae``, ``text_encoder``, ``tokenizer``, ``audio_encoder`` and
    ``feature_extractor``. ``config`` / ``vae_config`` / ``t5_config`` name the architectures of original-layout files
    (defaults: the real 5B model, the Wan2.2 VAE, umT5-XXL)."""
    from ..configs import model_config
    from .text_encoder import load_diffusers_text_encoder, load_original_text_encoder
    from .transformer import load_transformer
    from .vae import load_diffusers_vae, load_original_vae
    from .wav2vec import load_wav2vec

    root = Path(root)
    s2v14b = bool((model_config(config) if isinstance(config, str) else config).get("cond_dim"))
    vae_names, model_name = (ORIGINAL_VAE_21, "Wan2.2-S2V-14B") if s2v14b else (ORIGINAL_VAE, "Wan2.2-TI2V-5B")
    if s2v14b and vae_config is None:
        vae_config = "vae_wan21"
    parts = {"transformer": load_transformer(root, lora_ckpt, config=config, torch_dtype=dit_dtype, device="cpu",
                                             lora_alpha=lora_alpha)}
    if dit_only:
        return parts
    if (root / "vae" / "config.json").exists():  # Diffusers layout
        vae, text = load_diffusers_vae(root), load_diffusers_text_encoder(root)
    else:
        vae_file, t5_file = first_existing(root, vae_names), first_existing(root, ORIGINAL_T5)
        tok = first_existing(root, ORIGINAL_TOKENIZER)
        missing = [what for what, f in (("/".join(vae_names), vae_file), ("/".join(ORIGINAL_T5), t5_file),
                                        ("/".join(ORIGINAL_TOKENIZER) + "/", tok)) if f is None]
        if missing:
            raise CheckpointError(f"{root}: not a complete {model_name} directory; missing {', '.join(missing)}")
        vae = load_original_vae(vae_file, config=vae_config)
        text = load_original_text_encoder(t5_file, tokenizer=tok, config=t5_config)
    z_dim, channels = vae.vae.config.z_dim, parts["transformer"].config.in_channels
    if z_dim != channels:
        raise CheckpointError(f"{root}: the VAE has {z_dim} latent channels, but the {model_name} DiT takes {channels} "
                              f"(it needs the {'Wan2.1' if channels == 16 else 'Wan2.2'} VAE)")
    w2v = load_wav2vec(find_wav2vec(root, wav2vec_dir))
    parts.update(vae=vae.vae, text_encoder=text.model, tokenizer=text.tokenizer, audio_encoder=w2v.model,
                 feature_extractor=w2v.feature_extractor)
    return parts
