"""Clip and step progress of a running TalkVersePipeline call, for the page's progress bar.

The pipeline's ``callback_on_step_end`` reports denoising steps (``on_step(clip, num_clips, step)``) and the runner
the written frames (``on_frames``); both call ``report((done, total), description)``.
"""

from __future__ import annotations

from collections.abc import Callable

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
