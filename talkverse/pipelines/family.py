"""The two model families the pipeline runs, and what differs between them beyond the DiT config (inference.md;
s2v14b.md §4). No torch here: the CLIs read the defaults for ``--help`` and their checks without loading a model.

* ``s2v-5B`` (TalkVerse-5B): 25 fps video, wav2vec2 decimated to 25 fps (one column per frame), 120-frame clips, the
  first clip decoded from its own latents, Wan2.2 VAE; 50 steps, shift 5, guide 6.5 (its reference config).
* ``s2v-14B`` (Wan2.2-S2V-14B): 16 fps video, wav2vec2 interpolated to 30 fps then bucketed at 16 fps, 80-frame clips,
  the first clip decoded as [reference latent | latents] (keep the last N, drop 3), Wan2.1 VAE, a pose video
  (``cond_encoder``); 40 steps, shift 3, guide 4.5 and the S2V negative prompt (``wan/configs/wan_s2v_14B.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .prompts import DEFAULT_NEGATIVE_PROMPT, S2V_14B_NEGATIVE_PROMPT


@dataclass(frozen=True)
class ModelFamily:
    name: str
    config: str  # the DiT config preset of the full-size model
    vae_config: str  # the VAE config preset
    fps: int  # output video frames per second (one audio column per frame)
    feature_fps: int  # wav2vec2 feature rate before bucketing: 25 (decimated) or 30 (interpolated)
    frames_per_clip: int
    sample_steps: int
    sample_shift: float
    guide_scale: float
    negative_prompt: str
    first_clip_decode_ref: bool  # clip 0 decodes [ref latent | latents] (keep last N, drop the first 3 of them)
    pose: bool  # the DiT takes pose latents (cond_states)


S2V_5B = ModelFamily("s2v-5B", "s2v_5b", "vae_wan22", 25, 25, 120, 50, 5.0, 6.5, DEFAULT_NEGATIVE_PROMPT, False, False)
S2V_14B = ModelFamily("s2v-14B", "s2v_14b", "vae_wan21", 16, 30, 80, 40, 3.0, 4.5, S2V_14B_NEGATIVE_PROMPT, True, True)
FAMILIES = {f.name: f for f in (S2V_5B, S2V_14B)}


def family(name: str) -> ModelFamily:
    if name not in FAMILIES:
        raise ValueError(f"model family must be one of {', '.join(FAMILIES)}, got {name!r}")
    return FAMILIES[name]


def family_of(transformer_config) -> ModelFamily:
    """The family of a DiT config (a dict or a diffusers FrozenDict): a pose branch (``cond_dim``) means S2V-14B."""
    get = transformer_config.get if hasattr(transformer_config, "get") else lambda k, d=None: getattr(
        transformer_config, k, d)
    return S2V_14B if get("cond_dim", None) else S2V_5B
