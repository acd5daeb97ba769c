"""Dubbing: regenerate a talking video from an existing video and new audio (inference.md §10, ours).

SDEdit-style: each clip starts from the source clip's latents noised to the first kept step of the truncated schedule,
x = (1 - sigma_0) x0 + sigma_0 eps (``mix="sigma"``), or (1 - s) x0 + s eps as the reference (``mix="strength"``).

Alignment: the source frames arrive at 25 fps (the runner resamples by timestamp), and output frame p <-> source frame
p <-> audio frame p: clip 0 (motion dropped) encodes source frames [0, F-3) into F/4 latents; a continuation clip
encodes concat(motion buffer (73 generated frames), source frames of its output range) into 19 + F/4 latents and keeps
the last F/4, the same layout its decode uses. Source frames past the end repeat the last frame.

Reference frame: ``ref_mode="first"`` (default) = source frame 0; ``"segment-random"`` = a frame of the clip's own
segment drawn from ``numpy.random.default_rng(seed + r)`` (clip r's generator seed), so a seed reproduces the video
(the reference's choice is unseeded).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np
import torch

from ..media.fitting import fit_image
from .scheduling import DubSchedule, dub_init
from .timeline import ClipGeometry, clip_output_range

DUB_REF_MODES = ("first", "segment-random")


class DubSource:
    """Lazy access to the source frames, fitted to the output size ([1, 3, T, H, W] in [-1, 1]); frames before the
    current clip are released, so memory stays bounded in the video's length."""

    def __init__(self, frames: Iterable, height: int, width: int, schedule: DubSchedule, ref_mode: str = "first",
                 image_fit: str = "cover", mix: str = "sigma"):
        if ref_mode not in DUB_REF_MODES:
            raise ValueError(f"dub_ref must be one of {', '.join(DUB_REF_MODES)}, got {ref_mode!r}")
        self.height, self.width, self.image_fit = height, width, image_fit
        self.schedule, self.ref_mode, self.mix = schedule, ref_mode, mix
        self._it: Iterator = iter(frames)
        self._frames: dict[int, torch.Tensor] = {}
        self._next = 0
        self._last: torch.Tensor | None = None
        self.x0: torch.Tensor | None = None  # the last clip's clean source latents (masked denoising keeps them)

    def _get(self, index: int) -> torch.Tensor:
        while self._next <= index and self._it is not None:
            try:
                frame = next(self._it)
            except StopIteration:
                self._it = None
                break
            self._last = fit_image(frame, self.height, self.width, mode=self.image_fit)  # [3, H, W]
            self._frames[self._next] = self._last
            self._next += 1
        if index in self._frames:
            return self._frames[index]
        if self._last is None:
            raise ValueError("dub_video: the video has no frames")
        return self._last  # past the end: repeat the last frame

    def frames(self, start: int, end: int) -> torch.Tensor:
        """Source frames [start, end) as [1, 3, n, H, W]; frames before ``start`` are released."""
        out = torch.stack([self._get(i) for i in range(start, end)], dim=1)[None]
        for k in [k for k in self._frames if k < start]:
            del self._frames[k]
        return out

    def frame_tensor(self, index: int) -> torch.Tensor:
        return self.frames(index, index + 1)

    @torch.no_grad()
    def init_latents(self, encode: Callable[[torch.Tensor], torch.Tensor], clip: int, buffer: torch.Tensor | None,
                     geometry: ClipGeometry, eps: torch.Tensor, start_from_ref: bool = False) -> torch.Tensor:
        """The noised source latents [1, C, F/4, h, w] that clip r starts from (``buffer``: the motion frames of a
        continuation clip, None for the first)."""
        start, end = clip_output_range(clip, geometry, start_from_ref)
        src = self.frames(start, end)
        if buffer is None:
            x0 = encode(src)
        else:
            x0 = encode(torch.cat([buffer.to(src), src], dim=2))[:, :, -geometry.latent_frames:]
        self.x0 = x0.to(eps)
        return dub_init(x0.to(eps), eps, self.schedule, mode=self.mix)

    def reference_index(self, clip: int, clip_seed: int | None, geometry: ClipGeometry,
                        start_from_ref: bool = False) -> int:
        """``segment-random``: a frame of clip r's own segment, drawn from default_rng(clip r's seed)."""
        start, end = clip_output_range(clip, geometry, start_from_ref)
        return int(np.random.default_rng(clip_seed).integers(start, end))
