"""Dubbing: regenerate a talking video from an existing video and new audio (inference.md §10, ours).

SDEdit-style: each clip starts from the source clip's latents noised to the first kept step of the truncated schedule,
x = (1 - sigma_0) x0 + sigma_0 eps (``mix="sigma"``), or (1 - s) x0 + s eps as the reference (``mix="strength"``).

Alignment: the source is resampled to 25 fps by timestamp, and output frame p <-> source frame p <-> audio frame p:
clip 0 (motion dropped) encodes source frames [0, F-3) into F/4 latents; a continuation clip encodes
concat(motion buffer (73 generated frames), source frames of its output range) into 19 + F/4 latents and keeps the
last F/4, the same layout its decode uses. Source frames past the end repeat the last frame.

Reference frame: ``ref_mode="first"`` (default) = source frame 0; ``"segment-random"`` = a frame of the clip's own
segment drawn from ``numpy.random.default_rng(seed + r)``, so a seed reproduces the video (the reference's choice is
unseeded). Nothing is written next to the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .scheduling import dub_init, dub_schedule, make_scheduler
from .timeline import clip_output_range


class DubSource:
    """Lazy 25 fps access to the source video's frames, fitted to the output size ([1, 3, T, H, W] in [-1, 1])."""

    def __init__(self, path: str | Path, height: int, width: int, steps: int, shift: float, strength: float = 0.95,
                 ref_mode: str = "first", image_fit: str = "cover", mix: str = "sigma"):
        from ..video.reader import iter_frames, probe_video

        if ref_mode not in ("first", "segment-random"):
            raise ValueError(f"dub_ref must be 'first' or 'segment-random', got {ref_mode!r}")
        self.path = Path(path)
        self.info = probe_video(self.path)  # clear VideoError for a missing/unreadable file
        self.height, self.width, self.image_fit = height, width, image_fit
        self.strength, self.ref_mode, self.mix = float(strength), ref_mode, mix
        self.schedule = dub_schedule(make_scheduler(shift), steps, self.strength)
        self._it = iter_frames(self.path, fps=25.0)
        self._frames: dict[int, torch.Tensor] = {}
        self._next = 0
        self._last: torch.Tensor | None = None
        self._exhausted = False

    def _fit(self, frame: np.ndarray) -> torch.Tensor:
        from ..video.image import fit_image

        return fit_image(frame, self.height, self.width, mode=self.image_fit)  # [3, H, W]

    def _get(self, index: int) -> torch.Tensor:
        while self._next <= index and not self._exhausted:
            try:
                frame = next(self._it)
            except StopIteration:
                self._exhausted = True
                break
            self._last = self._fit(frame)
            self._frames[self._next] = self._last
            self._next += 1
        if index in self._frames:
            return self._frames[index]
        if self._last is None:
            raise ValueError(f"{self.path}: the video has no decodable frames")
        return self._last  # past the end: repeat the last frame

    def release_before(self, index: int) -> None:
        for k in [k for k in self._frames if k < index]:
            del self._frames[k]

    def frames(self, start: int, end: int) -> torch.Tensor:
        """Source frames [start, end) as [1, 3, n, H, W]."""
        return torch.stack([self._get(i) for i in range(start, end)], dim=1)[None]

    def frame_tensor(self, index: int) -> torch.Tensor:
        return self.frames(index, index + 1)

    @torch.no_grad()
    def source_latents(self, pipe, clip: int, buffer: torch.Tensor | None, inputs, start_from_ref: bool = False
                       ) -> torch.Tensor:
        """x0 of clip r: [1, 48, F/4, h, w]."""
        start, end = clip_output_range(clip, inputs.frames_per_clip, start_from_ref)
        src = self.frames(start, end)
        self.release_before(start)
        if buffer is None:
            return pipe.encode_video(src)
        z = pipe.encode_video(torch.cat([buffer.to(src), src], dim=2))
        return z[:, :, -(inputs.frames_per_clip // 4):]

    def init(self, x0: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return dub_init(x0.to(eps), eps, self.schedule, mode=self.mix)

    @torch.no_grad()
    def segment_ref(self, pipe, clip: int, seed: int, inputs, start_from_ref: bool = False) -> torch.Tensor:
        start, end = clip_output_range(clip, inputs.frames_per_clip, start_from_ref)
        k = int(np.random.default_rng(seed + clip).integers(start, end))
        return pipe.encode_video(self.frame_tensor(k))
