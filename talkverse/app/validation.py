"""Checks of the web app's uploads and settings, each failing with one plain sentence for the page.

They reuse the repository's loaders (``talkverse.media.image.load_image`` -> ``ImageError``,
``talkverse.media.audio.load_audio`` -> ``AudioError``) and rephrase their errors without the server's temporary paths.
No Gradio here: the UI turns ``InputError`` into ``gr.Error``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media.audio import AudioError, DecodedAudio, read_audio
from ..media.image import MIN_SIDE, ImageError, load_image
from ..media.sizes import check_size_spec
from ..models.geometry import ClipGeometry

IMAGE_KINDS = "a PNG, JPEG or WebP photo"
AUDIO_KINDS = "a WAV, MP3, FLAC, OGG or M4A file, or record one with the microphone"


class InputError(ValueError):
    """A problem with what the user gave the page; the message is one sentence meant for them."""


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


def check_audio(path: str | Path | None, max_seconds: float, display_name: str | None = None) -> DecodedAudio:
    """The speech, decoded once (the model and the muxed track both use it), or InputError (not audio, empty, too
    long)."""
    if path is None or str(path) == "":
        raise InputError("Please upload a speech recording or record one with the microphone.")
    name = _name(path, display_name)
    try:
        audio = read_audio(path)
    except AudioError as e:
        if "no audio stream" in e.problem:
            raise InputError(f"The file “{name}” has no audio track. Please upload {AUDIO_KINDS}.") from None
        if "no audio samples" in e.problem:
            raise InputError(f"The audio “{name}” is empty (0 seconds). Please upload {AUDIO_KINDS}.") from None
        raise InputError(f"The file “{name}” is not audio that can be read. Please upload {AUDIO_KINDS}.") from None
    seconds = audio.seconds
    if seconds > max_seconds:
        raise InputError(f"The audio “{name}” is {seconds:.1f} seconds long; this page accepts at most "
                         f"{max_seconds:g} seconds. Please upload a shorter clip (or use generate.py for long videos).")
    return audio


def check_settings(size_bucket: str, infer_frames, steps, guide_scale, seed, num_clips) -> dict:
    """The advanced settings as pipeline keyword arguments, or InputError naming the setting."""
    size_bucket = (size_bucket or "").strip()
    try:
        check_size_spec(size_bucket)
    except ValueError:
        raise InputError(f"The size bucket “{size_bucket}” is not valid; choose fasttalk-720, fasttalk-480 or a size "
                         "such as 128x128 (width x height, multiples of 32).") from None
    frames = _int(infer_frames, "Frames per clip")
    geometry = ClipGeometry(frames)
    try:
        geometry.check()
    except ValueError:
        raise InputError(f"Frames per clip must be a multiple of {geometry.temporal_factor} between "
                         f"{geometry.temporal_factor} and {geometry.max_frames}, not {frames}.") from None
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
