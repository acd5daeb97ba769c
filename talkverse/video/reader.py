"""Video probing and streaming frame decoding with timestamp-based fps resampling (inference.md §10)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Union

import av
import numpy as np
from PIL import Image


class VideoError(ValueError):
    """A video is missing, unreadable or has no video stream. The message names the file and the problem."""


@dataclass
class VideoInfo:
    """Basic facts about a video file. num_frames is estimated from duration × fps if the container lacks it."""

    fps: float
    num_frames: int
    duration: float  # seconds
    width: int
    height: int
    has_audio: bool


def _open(path: Union[str, os.PathLike]):
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: not found")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video")
    try:
        container = av.open(str(path))
    except Exception as e:  # noqa: BLE001
        raise VideoError(f"{path}: not a readable video ({e})") from e
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: has no video stream")
    return container


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def probe_video(path: Union[str, os.PathLike]) -> VideoInfo:
    """Read the container header: fps, frame count, duration (s), size and whether there is an audio track."""
    with _open(path) as container:
        stream = container.streams.video[0]
        fps = _stream_fps(stream)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000  # AV_TIME_BASE
        else:
            duration = 0.0
        num_frames = int(stream.frames or 0)
        if num_frames <= 0 and fps > 0:
            num_frames = int(round(duration * fps))
        if duration <= 0 and num_frames > 0 and fps > 0:
            duration = num_frames / fps
        return VideoInfo(
            fps=fps,
            num_frames=num_frames,
            duration=duration,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            has_audio=bool(container.streams.audio),
        )


def iter_frames(path: Union[str, os.PathLike], fps: float = 25.0) -> Iterator[np.ndarray]:
    """Decode a video as H×W×3 uint8 RGB frames resampled to ``fps`` by timestamp, streaming.

    Output frame k is the source frame on screen at t = k / fps, i.e. the last source frame with pts_time <= t (+1e-6),
    for k = 0 .. floor(duration · fps) - 1, where duration = last pts + one source frame period. Timestamps are taken
    relative to the first decoded frame.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    eps = 1e-6
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        src_fps = _stream_fps(stream)
        t0 = None
        prev = None  # last decoded source frame (av.VideoFrame), converted only when emitted
        prev_t = prev_prev_t = None
        k = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    t = (prev_t + 1.0 / src_fps) if prev_t is not None and src_fps else 0.0
                else:
                    t = float(frame.pts * frame.time_base)
                if t0 is None:
                    t0 = t
                t -= t0
                # emit every output frame whose time falls before this source frame
                while prev is not None and k / fps + eps < t:
                    yield prev.to_ndarray(format="rgb24")
                    k += 1
                prev, prev_prev_t, prev_t = frame, prev_t, t
        except av.FFmpegError as e:
            raise VideoError(f"{path}: decoding failed ({e})") from e
        if prev is None:
            raise VideoError(f"{path}: no decodable video frames")
        if src_fps > 0:
            period = 1.0 / src_fps
        elif prev_prev_t is not None:
            period = prev_t - prev_prev_t
        else:
            period = 1.0 / fps
        n_out = int(math.floor((prev_t + period) * fps + eps))
        last = None
        while k < n_out:
            if last is None:
                last = prev.to_ndarray(format="rgb24")
            yield last.copy()
            k += 1


def first_frame(path: Union[str, os.PathLike]) -> Image.Image:
    """The first decoded frame of a video as an RGB PIL image."""
    with _open(path) as container:
        try:
            for frame in container.decode(container.streams.video[0]):
                return frame.to_image().convert("RGB")
        except av.FFmpegError as e:
            raise VideoError(f"{path}: decoding failed ({e})") from e
    raise VideoError(f"{path}: no decodable video frames")
