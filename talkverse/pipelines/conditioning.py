"""What the clip loop needs that is computed once per video, and the per-clip random generators (inference.md §7).

Seeds. Clip r draws its noise from its own generator, so a clip's noise does not depend on how many clips came before:
``generator`` given as one ``torch.Generator`` with initial seed s gives clip r a generator seeded s + r (on the same
device); a list gives one generator per clip, used as it is; None uses torch's global RNG.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .timeline import ClipPlan


@dataclass
class VideoConditioning:
    """The encoded inputs of one video (the host computes them; other ranks receive a copy).

    ref_latents [1, C, 1, h, w]; context [L, text_dim] and context_null [L', text_dim] (trimmed prompt embeddings);
    audio [1, 25, C_a, R F] conditioning features (clip r's columns: [rF, (r+1)F)); the plan; the pixel size;
    ``pose``: S2V-14B's pose latents, one [1, C, F/4, h, w] per clip (talkverse.pipelines.pose), or None.
    """

    ref_latents: torch.Tensor
    context: torch.Tensor
    context_null: torch.Tensor
    audio: torch.Tensor
    plan: ClipPlan
    height: int
    width: int
    pose: list[torch.Tensor] | None = None

    def clip_audio(self, clip: int) -> torch.Tensor:
        f = self.plan.frames_per_clip
        return self.audio[..., clip * f:(clip + 1) * f]

    def clip_pose(self, clip: int) -> torch.Tensor | None:
        return None if self.pose is None else self.pose[clip]


@dataclass(frozen=True)
class SamplingSettings:
    """How every clip of one video is sampled (the host's call arguments, shared with the other ranks)."""

    num_inference_steps: int
    guidance_scale: float
    cfg_batch: bool
    first_clip_motion: str  # "drop" | "zeros" | "reference"
    start_from_ref: bool
    dub_strength: float | None  # None: not a dub
    masked: bool = False  # masked dubbing (dub_mask given): RePaint blending after every step
    cfg_truncation: float = 1.0  # the fraction of the steps (from the first) that run the unconditional pass


def clip_generator(generator: torch.Generator | list[torch.Generator] | None, clip: int) -> torch.Generator | None:
    """Clip ``clip``'s generator (module docstring)."""
    if generator is None:
        return None
    if isinstance(generator, (list, tuple)):
        return generator[clip]
    return torch.Generator(device=generator.device).manual_seed(generator.initial_seed() + clip)


def clip_noise(generator: torch.Generator | None, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """fp32 standard normal noise of ``shape`` drawn on the generator's device, returned on ``device``."""
    where = generator.device if generator is not None else device
    return torch.randn(shape, generator=generator, device=where, dtype=torch.float32).to(device)
