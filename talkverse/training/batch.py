"""Training samples in latent form, and the per-sample randomness of a step.

A *latent sample* (what ``scripts/precache.py`` stores, or what ``encode_raw_sample`` computes online):
  x0 [48, T, h, w] (T = 18 for 72 main frames), motion [48, 19, h, w] (zeros without motion frames),
  ref [48, 1, h, w], audio [25, C_a, 4T] (wav2vec2 states, one column per main frame), context [L, D],
  roi_weight [T, h, w] (or absent), has_motion (bool), index (dataset index).

Every random draw of a sample at a step (timestep, noise, modality dropout) comes from a generator seeded with
(seed, optimizer step, micro step, dataset index). A sample therefore gets the same draws whichever rank or batch
position it lands on, which makes DDP/FSDP runs equal a single-process run on the same global batch, and a resumed run
equal an uninterrupted one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from ..models.text_encoder import pad_context


def sample_generator(seed: int, step: int, micro: int, index: int) -> torch.Generator:
    digest = hashlib.sha256(f"{seed}/{step}/{micro}/{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & ((1 << 63) - 1))


@dataclass
class Dropout:
    text: float = 0.1
    audio: float = 0.1
    ref: float = 0.1
    motion: float = 0.1


@torch.no_grad()
def encode_raw_sample(item: dict, vae, w2v, main_frames: int, motion_frames: int) -> dict:
    """A raw dataset item (``talkverse.data.TalkVerseDataset``) -> a latent sample (online training and precache).

    With motion the [73 motion | 72 main] window is encoded jointly (37 latents: motion = [:19], x0 = [19:]); without,
    the 72 main frames give 18 latents (frames 69-71 dropped by the 1 + 4k chunking, as the reference) and motion is
    19 zero latents (``motion_frames`` in the VAE's temporal chunking: 1 + (73 - 1) // 4)."""
    from ..data.audio_window import window_features

    video = item["video"][None]  # [1, 3, T, H, W]
    z = vae.encode(video)[0]
    motion_latents = 1 + (motion_frames - 1) // vae.vae.config.scale_factor_temporal
    if item["has_motion"]:
        motion, x0 = z[:, :motion_latents], z[:, motion_latents:]
    else:
        x0 = z
        motion = torch.zeros(z.shape[0], motion_latents, *z.shape[2:])
    ref = vae.encode(item["ref"][None])[0]
    window = video.shape[2]
    main = slice(window - main_frames, window)
    audio = window_features(w2v, item["audio"], window, main)
    out = {"x0": x0, "motion": motion, "ref": ref, "audio": audio, "has_motion": bool(item["has_motion"]),
           "index": int(item["index"])}
    if "context" in item:
        out["context"] = item["context"]
    if item.get("roi_weight") is not None:
        out["roi_weight"] = item["roi_weight"]
    return out


def collate_latent(samples: list[dict], text_len: int) -> dict:
    """Stack latent samples of one bucket; contexts zero-padded to ``text_len`` -> [B, text_len, D]."""
    out = {k: torch.stack([s[k].float() for s in samples]) for k in ("x0", "motion", "ref", "audio")}
    out["context"] = pad_context([s["context"].float() for s in samples], text_len)
    out["has_motion"] = torch.tensor([bool(s["has_motion"]) for s in samples])
    out["index"] = torch.tensor([int(s["index"]) for s in samples])
    if all("roi_weight" in s for s in samples):
        out["roi_weight"] = torch.stack([s["roi_weight"].float() for s in samples])
    return out
