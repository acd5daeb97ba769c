"""Load the Wan VAE (``diffusers.AutoencoderKLWan``) from ``Wan2.2_VAE.pth`` (TalkVerse-5B), ``Wan2.1_VAE.pth``
(S2V-14B, with its 2.1 config ``vae_wan21``) or a Diffusers ``vae/`` folder, strictly (checkpoints.md §4, s2v14b.md
§4.2). The config decides which key map applies: ``is_residual`` (Wan2.2) or not (Wan2.1); a file of the other
layout is reported as the wrong VAE. The result is wrapped in :class:`talkverse.models.vae.TalkVerseVAE`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan

from ..configs import load_config
from ..convert import vae21_keys, vae_keys
from ..convert.errors import CheckpointError, key_report, map_keys
from ..convert.state_dict_io import LazyStateDict
from ..models.vae import TalkVerseVAE

DEFAULT_CONFIG = "vae_wan22"


def vae_config(config: str | Path | dict[str, Any] | None = None) -> dict[str, Any]:
    """``AutoencoderKLWan`` keyword arguments: a preset name / YAML path (its ``vae:`` section) or a dict."""
    if config is None:
        config = DEFAULT_CONFIG
    if isinstance(config, dict):
        return dict(config)
    cfg = load_config(str(config))
    return dict(cfg.get("vae", cfg))


def load_original_vae(path: str | Path, config=None, torch_dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> TalkVerseVAE:
    """``Wan2.2_VAE.pth`` / ``Wan2.1_VAE.pth`` (or a .safetensors with the same keys, or diffusers-named keys) for
    the VAE of ``config`` (default Wan2.2), strictly."""
    sd = LazyStateDict(path)
    cfg = vae_config(config)
    with torch.device("meta"):
        vae = AutoencoderKLWan(**cfg)
    wan21 = not vae.config.is_residual
    name, file_name = ("Wan2.1", "Wan2.1_VAE.pth") if wan21 else ("Wan2.2", "Wan2.2_VAE.pth")
    if any(k.startswith(("encoder.", "decoder.")) for k in sd) and vae21_keys.is_wan21_layout(sd) != wan21 \
            and not any(".down_blocks." in k for k in sd):
        other = "Wan2.1" if not wan21 else "Wan2.2"
        raise CheckpointError(f"{path}: a {other} VAE, but this model needs the {name} VAE ({file_name})")
    expected = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    key_fn = vae21_keys.original_to_diffusers if wan21 else vae_keys.original_to_diffusers
    mapped, problems = map_keys(path, sd, key_fn, expected, sd.shape)
    report = key_report(f"{path} does not match the {name} VAE (AutoencoderKLWan) layout:", *problems)
    if report:
        if not any(k.startswith(("encoder.", "decoder.")) for k in sd):
            report += "\n  (no encoder.*/decoder.* keys at all: this is not a VAE checkpoint; " \
                      f"pass {file_name} or a Diffusers vae/ folder)"
        raise CheckpointError(report)
    state = {k: sd.load(src, dtype=torch_dtype, device=device) for k, src in mapped.items()}
    vae.load_state_dict(state, strict=True, assign=True)
    return TalkVerseVAE(vae.to(device).eval())


def load_diffusers_vae(path: str | Path, torch_dtype: torch.dtype = torch.float32,
                       device: str | torch.device = "cpu") -> TalkVerseVAE:
    """A Diffusers pipeline folder (uses its ``vae/``) or the ``vae/`` folder itself."""
    p = Path(path)
    if (p / "vae" / "config.json").exists():
        p = p / "vae"
    if not (p / "config.json").exists():
        raise CheckpointError(f"{path} is neither a Diffusers pipeline folder with vae/ nor a vae/ folder "
                              "(no config.json)")
    vae = AutoencoderKLWan.from_pretrained(str(p), torch_dtype=torch_dtype, local_files_only=True)
    return TalkVerseVAE(vae.to(device).eval())


def load_vae(path: str | Path, config=None, torch_dtype: torch.dtype = torch.float32,
             device: str | torch.device = "cpu") -> TalkVerseVAE:
    """Either layout: a folder with config.json (or vae/config.json) is Diffusers, anything else original."""
    p = Path(path)
    if p.is_dir() and ((p / "config.json").exists() or (p / "vae" / "config.json").exists()):
        return load_diffusers_vae(p, torch_dtype, device)
    return load_original_vae(p, config, torch_dtype, device)
