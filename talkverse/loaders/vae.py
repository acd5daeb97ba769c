"""Load the Wan2.2 VAE (``diffusers.AutoencoderKLWan``) from ``Wan2.2_VAE.pth`` or a Diffusers ``vae/`` folder,
strictly (checkpoints.md §4). The result is wrapped in :class:`talkverse.models.vae.TalkVerseVAE`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from diffusers import AutoencoderKLWan

from ..configs import load_config
from ..convert.errors import CheckpointError, key_report, map_keys
from ..convert.state_dict_io import LazyStateDict
from ..convert.vae_keys import original_to_diffusers
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
    """``Wan2.2_VAE.pth`` (or a .safetensors with the same keys, or diffusers-named keys), strictly."""
    sd = LazyStateDict(path)
    with torch.device("meta"):
        vae = AutoencoderKLWan(**vae_config(config))
    expected = {k: tuple(v.shape) for k, v in vae.state_dict().items()}
    mapped, problems = map_keys(path, sd, original_to_diffusers, expected, sd.shape)
    report = key_report(f"{path} does not match the Wan2.2 VAE (AutoencoderKLWan) layout:", *problems)
    if report:
        if not any(k.startswith(("encoder.", "decoder.")) for k in sd):
            report += "\n  (no encoder.*/decoder.* keys at all: this is not a VAE checkpoint; " \
                      "pass Wan2.2_VAE.pth or a Diffusers vae/ folder)"
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
