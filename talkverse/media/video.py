"""The one video reader (PyAV): probing, streaming decode with timestamp-based fps resampling, and random access
(inference.md §10, training.md §2.2).

``VideoReader(path)`` opens the container once. ``info`` comes from its header; ``iter_frames(fps)`` streams RGB
frames (resampled to ``fps`` by timestamp, or the native frames with ``fps=None``); ``read(indices)`` returns native
frames by index, seeking once per run of nearby indices (a training window and its reference frame are two runs).
Every problem is a ``VideoError`` that names the file.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from .constants import FPS

PathLike = Union[str, os.PathLike]


class VideoError(ValueError):
    """A video is missing, unreadable, has no video stream or cannot be decoded. The message names the file."""


@dataclass
class VideoInfo:
    """Facts from the container header. ``num_frames`` is estimated from duration x fps if the container lacks it."""

    fps: float
    num_frames: int
    duration: float  # seconds
    width: int
    height: int
    has_audio: bool


def _stream_fps(stream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


class VideoReader:
    """An open video file; use as a context manager or call :meth:`close`."""

    def __init__(self, path: PathLike):
        import av

        self.path = Path(path)
        if not self.path.exists():
            raise VideoError(f"{self.path}: not found")
        if self.path.is_dir():
            raise VideoError(f"{self.path}: is a directory, not a video")
        try:
            self._container = av.open(str(self.path))
        except Exception as e:  # noqa: BLE001
            raise VideoError(f"{self.path}: not a readable video ({e})") from e
        if not self._container.streams.video:
            self._container.close()
            raise VideoError(f"{self.path}: has no video stream")
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._decoded = False  # once decoding moved the container, streaming from the start seeks back first
        self.info = self._probe()
        s = self._stream
        self._start = float(s.start_time * s.time_base) if s.start_time is not None else 0.0

    def _probe(self) -> VideoInfo:
        stream, container = self._stream, self._container
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
        return VideoInfo(fps=fps, num_frames=num_frames, duration=duration, width=stream.codec_context.width,
                         height=stream.codec_context.height, has_audio=bool(container.streams.audio))

    def close(self) -> None:
        if getattr(self, "_container", None) is not None:
            self._container.close()
            self._container = None

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _decode(self) -> Iterator:
        import av

        self._decoded = True
        try:
            yield from self._container.decode(self._stream)
        except av.FFmpegError as e:
            raise VideoError(f"{self.path}: decoding failed ({e})") from e

    # ------------------------------------------------------------------ streaming
    def iter_frames(self, fps: float | None = FPS) -> Iterator[np.ndarray]:
        """H x W x 3 uint8 RGB frames from the start, streaming.

        ``fps=None``: every decoded frame. Otherwise output frame k is the source frame on screen at t = k / fps, i.e.
        the last source frame with pts_time <= t (+1e-6), for k = 0 .. floor(duration * fps) - 1, where duration =
        last pts + one source frame period; timestamps are taken relative to the first decoded frame.
        """
        if self._decoded:
            self._container.seek(int(self._start / self._stream.time_base), stream=self._stream, backward=True,
                                 any_frame=False)
        if fps is None:
            n = 0
            for frame in self._decode():
                n += 1
                yield frame.to_ndarray(format="rgb24")
            if not n:
                raise VideoError(f"{self.path}: contains no video frames")
            return
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        eps, src_fps = 1e-6, self.info.fps
        t0 = prev = prev_t = prev_prev_t = None
        k = 0
        for frame in self._decode():
            if frame.pts is None:
                t = (prev_t + 1.0 / src_fps) if prev_t is not None and src_fps else 0.0
            else:
                t = float(frame.pts * frame.time_base)
            t0 = t if t0 is None else t0
            t -= t0
            while prev is not None and k / fps + eps < t:  # every output frame due before this source frame
                yield prev.to_ndarray(format="rgb24")
                k += 1
            prev, prev_prev_t, prev_t = frame, prev_t, t
        if prev is None:
            raise VideoError(f"{self.path}: no decodable video frames")
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

    # ------------------------------------------------------------------ random access
    def _index(self, frame) -> int:
        return int(round((float(frame.pts * frame.time_base) - self._start) * self.info.fps))

    def read(self, indices: Sequence[int]) -> np.ndarray:
        """Native frames ``indices`` (any order, repeats allowed) as uint8 [n, H, W, 3]."""
        n_total, fps = self.info.num_frames, self.info.fps
        idx = [int(i) for i in indices]
        bad = [i for i in idx if not 0 <= i < n_total]
        if bad:
            raise VideoError(f"{self.path}: frame index {bad[0]} outside [0, {n_total})")
        out = np.zeros((len(idx), self.info.height, self.info.width, 3), np.uint8)
        want: dict[int, list[int]] = {}
        for k, i in enumerate(idx):
            want.setdefault(i, []).append(k)
        todo = sorted(want)
        runs: list[list[int]] = []
        for i in todo:  # indices within 2 s of each other are decoded from one seek
            if runs and i - runs[-1][-1] <= 2 * int(fps):
                runs[-1].append(i)
            else:
                runs.append([i])
        s = self._stream
        for run in runs:
            pending = set(run)
            self._container.seek(int((self._start + run[0] / fps) / s.time_base), stream=s, backward=True,
                                 any_frame=False)
            for frame in self._decode():
                i = self._index(frame)
                if i in pending:
                    arr = frame.to_ndarray(format="rgb24")
                    for k in want[i]:
                        out[k] = arr
                    pending.discard(i)
                if i >= run[-1] or not pending:
                    break
            if pending:
                raise VideoError(f"{self.path}: frames {sorted(pending)[:3]}... could not be decoded")
        return out


def probe_video(path: PathLike) -> VideoInfo:
    """The header facts of a video file (fps, frame count, duration, size, whether it has audio)."""
    with VideoReader(path) as reader:
        return reader.info


def iter_frames(path: PathLike, fps: float | None = FPS) -> Iterator[np.ndarray]:
    """:meth:`VideoReader.iter_frames` of a file, closing it when the iteration ends."""
    with VideoReader(path) as reader:
        yield from reader.iter_frames(fps)


def read_video_frames(path: PathLike, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """The native frames as uint8 [T, H, W, 3] (at most ``max_frames``) and the stream's frame rate (25 if unknown).

    A file whose stream breaks off after some frames gives the frames before the break (an evaluated mp4 that was
    cut short is still measurable)."""
    with VideoReader(path) as reader:
        frames: list[np.ndarray] = []
        try:
            for f in reader.iter_frames(None):
                frames.append(f)
                if max_frames is not None and len(frames) >= max_frames:
                    break
        except VideoError:
            if not frames:
                raise
        return np.stack(frames), reader.info.fps or 25.0


def open_clip(path: PathLike, fps: float | None = FPS, tolerance: float = 0.01) -> VideoReader:
    """A training clip: a readable video with frames whose rate is within ``tolerance`` of ``fps`` (None: any)."""
    reader = VideoReader(path)
    if reader.info.num_frames <= 0:
        reader.close()
        raise VideoError(f"{reader.path}: no video frames")
    if fps is not None and abs(reader.info.fps - fps) >= tolerance:
        reader.close()
        raise VideoError(f"{reader.path}: frame rate {reader.info.fps:.3f} fps, expected {fps:g} (re-encode upstream)")
    return reader
