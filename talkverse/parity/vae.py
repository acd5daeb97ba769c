"""Tiny Wan2.2 VAE parity (``vae/``): strict loading from .pth and .safetensors, encode/decode per case, and the
streaming encoder/decoder against the same fixtures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..loaders.vae import load_original_vae
from .common import CaseResult, register

TOL = 1e-4  # relative, fp32


def fixture_config(folder: Path) -> dict:
    """``AutoencoderKLWan`` kwargs: ``diffusers_equivalent_config`` with the 48 mean/std values filled in."""
    cfg = json.loads((folder / "config.json").read_text())
    dc = dict(cfg["diffusers_equivalent_config"])
    dc["latents_mean"], dc["latents_std"] = cfg["latents_mean"], cfg["latents_std"]
    return dc


@register("vae", "vae", "config.json")
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    config = fixture_config(folder)
    models = {}
    for ext in ("pth", "safetensors"):
        res = CaseResult(f"vae/load_{ext}")
        try:
            models[ext] = load_original_vae(folder / f"Wan2.2_VAE_tiny.{ext}", config=config)
            n = sum(p.numel() for p in models[ext].vae.parameters())
            res.check_exact("num_parameters", torch.tensor([n]),
                            torch.tensor([json.loads((folder / "config.json").read_text())["num_parameters"]]))
        except Exception as e:
            res.error = f"{type(e).__name__}: {e}"
        yield res
    if len(models) == 2:
        res = CaseResult("vae/pth_equals_safetensors")
        a, b = models["pth"].vae.state_dict(), models["safetensors"].vae.state_dict()
        for k in a:
            res.check_exact(k, a[k], b[k])
        res.details = [("state_dict", max(e for _, e, _ in res.details), 0.0)]
        yield res
    vae = models.get("pth") or models.get("safetensors")
    if vae is None:
        return
    for f in sorted(folder.glob("expected_*.safetensors")):
        name = f.stem[len("expected_"):]
        res = CaseResult(f"vae/{name}")
        try:
            d = load_file(f)
            video, latent, decoded = d["video"][None], d["latent"][None], d["decoded"][None]
            res.check("latent", vae.encode(video), latent, TOL)
            res.check("decoded", vae.decode(latent), decoded, TOL)
            # Streaming: 3 pixel frames per push, 2 latent frames per chunk (chunk edges off the 1+4k grid).
            zs = torch.cat(list(vae.encode_stream(video.split(3, dim=2))), dim=2)
            res.check("latent_streamed", zs, latent, TOL)
            xs = torch.cat(list(vae.decode_stream(latent.split(2, dim=2))), dim=2)
            res.check("decoded_streamed", xs, decoded, TOL)
        except Exception as e:
            res.error = f"{type(e).__name__}: {e}"
        yield res
