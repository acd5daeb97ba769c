"""The pose video of S2V-14B (s2v14b.md §4.3): DWPose-style skeleton frames -> per-clip pose latents (``cond_states``).

The frames arrive at the model's 16 fps (the runner samples by timestamp) from the start of the video, are fitted to
the output size like the reference image (pixels p/255*2-1), and padded with -1 (black) frames to R N. Clip r takes
frames [rN, (r+1)N), prepends its first frame (N+1 frames, so the VAE's single first-frame latent is that copy), is
encoded, and drops the first latent: [1, C, N/4, h, w]. The frames are read clip by clip, so at most N+1 of them are
held as pixels. Without a pose video the DiT gets no ``cond_states`` (zeros: its ``cond_encoder`` adds the bias alone),
which is what the reference computes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from ..media.fitting import fit_image


def encode_pose(frames: Iterable, encode: Callable[[torch.Tensor], torch.Tensor], height: int, width: int,
                num_clips: int, frames_per_clip: int, image_fit: str = "cover") -> list[torch.Tensor]:
    """One pose latent [1, C, N/4, h, w] per clip from ``frames`` (HxWx3 uint8 arrays, PIL images or [3, H, W] float
    tensors in [0, 1]), consumed lazily. ValueError if there is no frame at all."""
    it, out, seen = iter(frames), [], 0
    for _ in range(num_clips):
        seg = torch.full((1, 3, frames_per_clip, height, width), -1.0)
        for k in range(frames_per_clip):
            frame = next(it, None)
            if frame is None:
                break
            seg[0, :, k] = fit_image(frame, height, width, mode=image_fit)
            seen += 1
        if seen == 0:
            raise ValueError("pose_video: the video has no frames")
        out.append(encode(torch.cat([seg[:, :, :1], seg], dim=2))[:, :, 1:].cpu())
    return out
