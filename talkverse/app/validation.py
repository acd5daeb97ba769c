"""Checks of the web app's uploads and settings, each failing with one plain sentence for the page.

They reuse the repository's loaders (``talkverse.video.image.load_image`` -> ``ImageError``,
``talkverse.audio.io.load_audio`` -> ``AudioError``) and rephrase their errors without the server's temporary paths.
No Gradio here: the UI turns ``InputError`` into ``gr.Error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.errors import AudioError
from ..audio.io import SAMPLE_RATE, load_audio
from ..video.image import MIN_SIDE, ImageError, load_image

IMAGE_KINDS = "a PNG, JPEG or WebP photo"
AUDIO_KINDS = "a WAV, MP3, FLAC, OGG or M4A file, or record one with the microphone"


class InputError(ValueError):
    """A problem with what the user gave the page; the message is one sentence meant for them."""


@dataclass
class CheckedAudio:
    waveform: np.ndarray  # 16 kHz mono float32
    seconds: float


def _name(path: str | Path, display_name: str | None) -> str:
    return display_name or Path(path).name


def check_image(path: str | Path | None, display_name: str | None = None):
    """The portrait as an RGB PIL image, or InputError."""
    if path is None or str(path) == "":
        raise InputError("Please upload a portrait image.")
    name = _name(path, display_name)
    try:
        return load_image(path)
    except ImageError as e:
        if "too small" in str(e):
            raise InputError(f"The image “{name}” is too small; it needs at least {MIN_SIDE} pixels on each side.") \
                from None
        raise InputError(f"The file “{name}” is not an image that can be read. Please upload {IMAGE_KINDS}.") \
            from None


def check_audio(path: str | Path | None, max_seconds: float, display_name: str | None = None) -> CheckedAudio:
    """The speech decoded to 16 kHz mono with its duration, or InputError (not audio, silent-length, too long)."""
    if path is None or str(path) == "":
        raise InputError("Please upload a speech recording or record one with the microphone.")
    name = _name(path, display_name)
    try:
        wave = load_audio(path)
    except AudioError as e:
        if "no audio stream" in e.problem:
            raise InputError(f"The file “{name}” has no audio track. Please upload {AUDIO_KINDS}.") from None
        if "no audio samples" in e.problem:
            raise InputError(f"The audio “{name}” is empty (0 seconds). Please upload {AUDIO_KINDS}.") from None
        raise InputError(f"The file “{name}” is not audio that can be read. Please upload {AUDIO_KINDS}.") from None
    seconds = len(wave) / SAMPLE_RATE
    if seconds > max_seconds:
        raise InputError(f"The audio “{name}” is {seconds:.1f} seconds long; this page accepts at most "
                         f"{max_seconds:g} seconds. Please upload a shorter clip (or use generate.py for long videos).")
    return CheckedAudio(waveform=wave, seconds=seconds)


def check_settings(size_bucket: str, infer_frames, steps, guide_scale, seed, num_clips) -> dict:
    """The advanced settings as pipeline keyword arguments, or InputError naming the setting."""
    from ..pipelines.pipeline_talkverse import resolve_bucket

    size_bucket = (size_bucket or "").strip()
    try:
        resolve_bucket(1, 1, size_bucket)
    except ValueError:
        raise InputError(f"The size bucket “{size_bucket}” is not valid; choose fasttalk-720, fasttalk-480 or a size "
                         "such as 128x128 (height x width, multiples of 32).") from None
    frames = _int(infer_frames, "Frames per clip")
    if frames % 4 or not 4 <= frames <= 160:
        raise InputError(f"Frames per clip must be a multiple of 4 between 4 and 160, not {frames}.")
    steps = _int(steps, "Steps")
    if not 1 <= steps <= 1000:
        raise InputError(f"Steps must be between 1 and 1000, not {steps}.")
    try:
        guide = float(guide_scale)
    except (TypeError, ValueError):
        raise InputError("Guide scale must be a number.") from None
    if not np.isfinite(guide) or guide < 0:
        raise InputError(f"Guide scale must be a number of 0 or more, not {guide_scale}.")
    seed = _int(seed, "Seed")
    clips = _int(num_clips, "Number of clips")
    if clips < 0:
        raise InputError("Number of clips must be 0 (the whole audio) or a positive number.")
    return dict(size_bucket=size_bucket, infer_frames=frames, num_inference_steps=steps, guidance_scale=guide,
                seed=None if seed < 0 else seed, num_clips=clips or None)


def _int(value, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a whole number.") from None
    if not np.isfinite(f) or f != int(f):
        raise InputError(f"{what} must be a whole number, not {value}.")
    return int(f)
