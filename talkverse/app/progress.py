"""Clip and step progress of a running TalkVersePipeline call, for the page's progress bar.

The pipeline reports denoising steps through ``denoise_clip(..., step_callback=)`` (which ``iter_clips`` calls once per
clip with the clip index and the per-video inputs, ``inputs.num_clips``) and the written frames through
``frame_callback``. ``ClipProgress.attach(pipe)`` wraps that pipeline's ``denoise_clip`` for the duration of one call,
chaining any step callback the pipeline passes, and calls ``report((done, total), description)``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

Report = Callable[[tuple[int, int], str], None]


class ClipProgress:
    def __init__(self, report: Report | None, steps: int, total_frames: int):
        self.report, self.steps, self.total_frames = report, max(int(steps), 1), int(total_frames)
        self.clip, self.num_clips, self.frames = 0, 1, 0

    def _send(self, done: int, desc: str) -> None:
        if self.report is not None:
            self.report((done, self.num_clips * self.steps), desc)

    def on_step(self, clip: int, num_clips: int, step: int) -> None:
        self.clip, self.num_clips = clip, max(int(num_clips), 1)
        self._send(clip * self.steps + step, f"Clip {clip + 1}/{self.num_clips} · step {step + 1}/{self.steps}")

    def on_frames(self, frames) -> None:
        """The pipeline's frame_callback: frames [3, n, H, W] were written."""
        self.frames += int(frames.shape[1])
        self._send((self.clip + 1) * self.steps, f"Clip {self.clip + 1}/{self.num_clips} · writing frames "
                                                 f"{min(self.frames, self.total_frames)}/{self.total_frames}")

    @contextlib.contextmanager
    def attach(self, pipe) -> Iterator["ClipProgress"]:
        original = pipe.denoise_clip

        def denoise_clip(latents, inputs, clip, *args, step_callback=None, **kwargs):
            def on_step(i, tensors):
                self.on_step(clip, inputs.num_clips, i)
                if step_callback is not None:
                    step_callback(i, tensors)

            return original(latents, inputs, clip, *args, step_callback=on_step, **kwargs)

        pipe.denoise_clip = denoise_clip  # an instance attribute: shadows the method for this call only
        try:
            yield self
        finally:
            del pipe.denoise_clip
