"""The sizes of one clip, as the model's configs fix them (architecture.md §4, inference.md §8): frames per clip, the
73 motion frames and their 19 latents, the VAE's temporal factor and the reference RoPE slot. No torch here: the CLIs
check ``--infer_frames`` with it before any model loads."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClipGeometry:
    """The sizes of one clip. Defaults are the s2v-5B's; the pipeline builds it from the loaded model's configs
    (:meth:`from_configs`): ``motion_frames``/``motion_latents`` from the DiT, ``temporal_factor`` from the VAE, and
    ``max_latent_frames`` = the DiT's reference RoPE slot (``ref_rope_t``), which a clip's latents must stay below, and
    ``fps`` = the model family's video rate (25 for the 5B, 16 for S2V-14B; one audio column per frame)."""

    frames_per_clip: int = 120
    motion_frames: int = 73
    motion_latents: int = 19
    temporal_factor: int = 4
    max_latent_frames: int = 40
    fps: int = 25

    @classmethod
    def from_configs(cls, frames_per_clip: int, transformer_config, vae_config=None, fps: int = 25) -> "ClipGeometry":
        temporal = vae_config.scale_factor_temporal if vae_config is not None else cls.temporal_factor
        return cls(frames_per_clip, transformer_config.motion_frames, transformer_config.motion_latents, temporal,
                   transformer_config.ref_rope_t, fps)

    @property
    def samples_per_frame(self) -> int:
        """16 kHz audio samples per video frame: 640 at 25 fps, 1000 at 16 fps."""
        from ..media.constants import SAMPLE_RATE

        return SAMPLE_RATE // self.fps

    @property
    def max_frames(self) -> int:
        return self.temporal_factor * self.max_latent_frames

    @property
    def latent_frames(self) -> int:
        return self.frames_per_clip // self.temporal_factor

    @property
    def first_clip_lost_frames(self) -> int:
        """F/4 latents decode to F - 3 frames: the first latent gives one frame, not four."""
        return self.temporal_factor - 1

    def check(self, name: str = "frames_per_clip") -> "ClipGeometry":
        f, t = self.frames_per_clip, self.temporal_factor
        if f % t != 0 or not t <= f <= self.max_frames:
            raise ValueError(f"{name} must be a multiple of {t} in [{t}, {self.max_frames}], got {f}")
        return self
