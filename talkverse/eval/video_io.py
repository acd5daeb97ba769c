"""Read an evaluated video's frames (PyAV) and its audio (16 kHz mono)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from talkverse.video.reader import VideoError

PathLike = Union[str, os.PathLike]


def read_video_frames(path: PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """All decoded frames as uint8 RGB [T, H, W, 3] (no fps resampling) and the stream's frame rate.

    Raises ``VideoError`` (a ValueError) naming the file when it is missing, unreadable or has no video frames.
    """
    import av

    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: not found")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    try:
        container = av.open(str(path))
    except Exception as e:  # noqa: BLE001
        raise VideoError(f"{path}: not a readable video ({type(e).__name__}: {e})") from None
    frames = []
    try:
        if not container.streams.video:
            raise VideoError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 25.0
        try:
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except Exception as e:  # noqa: BLE001
            if not frames:
                raise VideoError(f"{path}: video stream cannot be decoded ({type(e).__name__}: {e})") from None
    finally:
        container.close()
    if not frames:
        raise VideoError(f"{path}: contains no video frames")
    return np.stack(frames), fps


def read_audio(path: PathLike, sr: int = 16000) -> np.ndarray:
    """Mono float32 audio at ``sr`` from an audio file or a video's audio track (``talkverse.audio.io.load_audio``).

    Raises ``talkverse.audio.errors.AudioError`` (a ValueError) when there is no readable audio.
    """
    from talkverse.audio.io import load_audio

    return load_audio(path, sr=sr)
