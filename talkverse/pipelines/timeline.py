"""Clip and frame bookkeeping of the clip loop (inference.md §8, §9), as pure functions of integers.

Conventions. F = frames per clip (``frames_per_clip``, a multiple of the VAE's temporal factor 4), M = 73 motion
frames, L_m = 19 motion latents: :class:`ClipGeometry` holds them, read from the model's configs. Output frame p is the
p-th frame of the mp4 (25 fps; S2V-14B: 16 fps, ``geometry.fps``, 1000 samples a frame). Audio column c is the c-th 25 fps column of the *conditioning* features, i.e. of the
audio after ``shift`` frames of silence were prepended (``shift`` = ``sync_shift_frames``).

* First clip (motion tokens dropped): its F/4 latents decode alone to F - 3 frames (latent 0 -> 1 frame).
* Continuation clip r >= 1: decodes concat(19 motion latents, F/4 new) and keeps the last F frames.
* With ``start_from_ref`` clip 0 is decoded like a continuation clip (F frames).

Which audio column did output frame p's latent see? Clip r's latents see columns [rF, (r+1)F) and latent i of the clip
covers its columns 4i..4i+3. Clip 0's latent 0 decodes to output frame 0 and latent i >= 1 to output frames 4i-3..4i, so
output frame 4i-3+j of clip 0 shows the content trained against column 4i+j: frame p <-> column p + 3 (the
reference's 3-frame lead); a continuation clip placed at output frame 117 + 120(r-1) gives the same p + 3. Prepending 3
frames of silence makes that column hold original audio frame p.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..media.constants import FPS, SAMPLE_RATE
from ..models.geometry import ClipGeometry


def audio_frames(num_samples: int, sample_rate: int = SAMPLE_RATE, fps: int = FPS) -> int:
    """A0 = ceil(fps * duration): the number of video frames the audio covers (25 fps, or the model's)."""
    return math.ceil(num_samples * fps / sample_rate - 1e-9)


def frames_produced(num_clips: int, geometry: ClipGeometry, start_from_ref: bool = False) -> int:
    """(F - 3) + F (R - 1), or F R with ``start_from_ref``."""
    if num_clips <= 0:
        return 0
    lost = 0 if start_from_ref else geometry.first_clip_lost_frames
    return geometry.frames_per_clip * num_clips - lost


def auto_num_clips(target_frames: int, geometry: ClipGeometry, start_from_ref: bool = False) -> int:
    """The fewest clips whose output covers ``target_frames`` frames: ceil((A0 + 3) / F) (ceil(A0 / F) from ref)."""
    lost = 0 if start_from_ref else geometry.first_clip_lost_frames
    return max(1, math.ceil((target_frames + lost) / geometry.frames_per_clip))


@dataclass(frozen=True)
class ClipPlan:
    """What one video needs: clips, frames to write and the conditioning waveform's length."""

    num_clips: int
    geometry: ClipGeometry
    output_frames: int  # frames written (trimmed to the audio, or all produced when the clip count is capped)
    produced_frames: int
    sync_shift_frames: int
    conditioning_samples: int  # 16 kHz samples of the conditioning waveform after shift + tail padding
    audio_samples: int = 0  # 16 kHz samples of the input audio (0: planned from features, nothing to trim to)
    start_from_ref: bool = False

    @property
    def frames_per_clip(self) -> int:
        return self.geometry.frames_per_clip

    @property
    def audio_columns(self) -> int:
        return self.num_clips * self.frames_per_clip

    @property
    def capped(self) -> bool:
        """The clip count was capped, so the video ends before the audio does."""
        return self.output_frames < audio_frames(self.audio_samples, fps=self.geometry.fps)

    def output_range(self, clip: int) -> tuple[int, int]:
        return clip_output_range(clip, self.geometry, self.start_from_ref)


def plan_clips(num_samples: int, geometry: ClipGeometry, num_clips: int | None = None, sync_shift_frames: int = 3,
               start_from_ref: bool = False) -> ClipPlan:
    """Plan a video for ``num_samples`` of 16 kHz audio. ``num_clips`` caps the automatic count (None = whole audio).

    The conditioning waveform = ``sync_shift_frames`` * 640 (1000 at 16 fps) samples of silence + the audio + silence up to R F * 640
    samples, which gives exactly R F feature columns (T50 = 2RF - 1, A = RF), so no clip is fed zero feature vectors.
    """
    geometry.check()
    if sync_shift_frames < 0:
        raise ValueError(f"sync_shift_frames must be >= 0, got {sync_shift_frames}")
    a0 = audio_frames(num_samples, fps=geometry.fps)
    spf = geometry.samples_per_frame
    r = auto_num_clips(a0, geometry, start_from_ref)
    if num_clips is not None:
        if num_clips <= 0:
            raise ValueError(f"num_clips must be positive, got {num_clips}")
        r = min(r, num_clips)
    produced = frames_produced(r, geometry, start_from_ref)
    needed = max(r * geometry.frames_per_clip * spf, sync_shift_frames * spf + num_samples)
    return ClipPlan(num_clips=r, geometry=geometry, output_frames=min(a0, produced), produced_frames=produced,
                    sync_shift_frames=sync_shift_frames, conditioning_samples=needed, audio_samples=num_samples,
                    start_from_ref=start_from_ref)


def plan_from_features(num_columns: int, geometry: ClipGeometry, start_from_ref: bool = False) -> ClipPlan:
    """The plan of already-encoded conditioning features with ``num_columns`` = R F columns: every produced frame."""
    geometry.check()
    if num_columns <= 0 or num_columns % geometry.frames_per_clip:
        raise ValueError(f"audio_features has {num_columns} columns, not a positive multiple of frames_per_clip "
                         f"{geometry.frames_per_clip}")
    r = num_columns // geometry.frames_per_clip
    produced = frames_produced(r, geometry, start_from_ref)
    return ClipPlan(num_clips=r, geometry=geometry, output_frames=produced, produced_frames=produced,
                    sync_shift_frames=0, conditioning_samples=num_columns * geometry.samples_per_frame,
                    start_from_ref=start_from_ref)


def clip_output_range(clip: int, geometry: ClipGeometry, start_from_ref: bool = False) -> tuple[int, int]:
    """[start, end) output frames of clip r."""
    f = geometry.frames_per_clip
    if start_from_ref:
        return clip * f, (clip + 1) * f
    first = f - geometry.first_clip_lost_frames
    if clip == 0:
        return 0, first
    start = first + f * (clip - 1)
    return start, start + f


def conditioning_column(output_frame: int, geometry: ClipGeometry, start_from_ref: bool = False) -> int:
    """The conditioning-audio column whose content output frame p shows (module docstring).

    In training latent i of a clip covers frames 4i..4i+3 and is conditioned on columns 4i..4i+3, frame-wise. A
    continuation clip keeps exactly its new latents' frames, so kept frame k <-> clip column k. Clip 0 without motion
    decodes latent 0 to one frame (its group's last, column 3) and latent i >= 1 to frames 4i-3..4i (columns 4i..4i+3).
    """
    f, t, lost = geometry.frames_per_clip, geometry.temporal_factor, geometry.first_clip_lost_frames
    if not start_from_ref and output_frame < f - lost:
        latent = math.ceil(output_frame / t)
        j = lost if latent == 0 else output_frame - (t * latent - lost)
        return t * latent + j
    clip = output_frame // f if start_from_ref else (output_frame - (f - lost)) // f + 1
    return clip * f + output_frame - clip_output_range(clip, geometry, start_from_ref)[0]


def video_lead_frames(geometry: ClipGeometry, start_from_ref: bool = False) -> int:
    """How many frames the video leads the audio without a shift: 3 normally, 0 with ``start_from_ref``
    (clip 0 is then decoded like a continuation clip). ``sync_shift_frames=None`` ("auto") uses this value."""
    return 0 if start_from_ref else geometry.first_clip_lost_frames
