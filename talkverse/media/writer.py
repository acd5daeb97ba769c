"""Streaming H.264 + AAC mp4 writer (inference.md §11), written atomically; the audio is muxed from decoded samples."""

from __future__ import annotations

import os
from collections import deque
from fractions import Fraction
from pathlib import Path
from typing import Optional, Union

import av
import numpy as np
import torch

from .audio import DecodedAudio, read_audio
from .constants import FPS

# Sample rates the AAC encoder accepts; anything else is resampled to 48 kHz.
_AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350)
# ffmpeg's default layout of each channel count (av_channel_layout_default), for decoded samples without one.
_LAYOUTS = {1: "mono", 2: "stereo", 3: "2.1", 4: "4.0", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}
_CHUNK = 1 << 16  # samples per frame handed to the resampler (it re-cuts them into AAC frames)


def frames_to_uint8(frames: torch.Tensor, rounding: str = "nearest") -> torch.Tensor:
    """Map float frames in [-1, 1] to uint8 by (x + 1) / 2 * 255, clamped to [0, 255].

    rounding="nearest" rounds (ours); rounding="truncate" floors like the reference's uint8 cast.
    Any shape is accepted; the output has the same shape.
    """
    x = (frames.float() + 1.0) / 2.0 * 255.0
    x = x.clamp(0.0, 255.0)
    if rounding == "nearest":
        x = x.round()
    elif rounding == "truncate":
        x = x.floor()  # == truncation, since x >= 0 after the clamp
    else:
        raise ValueError(f"unknown rounding {rounding!r}; valid: nearest, truncate")
    return x.to(torch.uint8)


def _fps_fraction(fps: Union[int, float, Fraction]) -> Fraction:
    return Fraction(fps).limit_denominator(1001)


class VideoWriter:
    """Write frames to an H.264 (yuv420p) mp4 as they come, optionally muxing an audio file as AAC-LC.

    The file is written to ``.<stem>.partial<suffix>`` in the target directory and renamed onto ``path`` only by a
    successful :meth:`close`; an exception inside the ``with`` block (or :meth:`abort`) deletes the temporary file.

    Args:
        path: final output path (parent directories are created).
        fps: frame rate.
        crf: libx264 constant rate factor.
        audio: the decoded track to mux as AAC-LC (``talkverse.media.audio.read_audio``), or a file path to decode.
        audio_bitrate: AAC bit rate, e.g. "192k".
        max_frames: frames beyond this count are dropped silently (trims the video to the audio length).
        rounding: "nearest" (ours) or "truncate" (reference) for the float → uint8 conversion.
        metadata: container metadata, e.g. {"comment": "seed=123"}.
    """

    def __init__(
        self,
        path: Union[str, os.PathLike],
        fps: float = FPS,
        crf: int = 10,
        audio: Optional[Union[DecodedAudio, str, os.PathLike]] = None,
        audio_bitrate: str = "192k",
        max_frames: Optional[int] = None,
        rounding: str = "nearest",
        metadata: Optional[dict] = None,
        max_audio_seconds: Optional[float] = None,
    ):
        if rounding not in ("nearest", "truncate"):
            raise ValueError(f"unknown rounding {rounding!r}; valid: nearest, truncate")
        self.path = Path(path)
        self.fps = _fps_fraction(fps)
        self.crf = crf
        self.rounding = rounding
        self.max_frames = max_frames
        self._frames_written = 0
        self._closed = False
        self._audio_packets: deque = deque()
        self.max_audio_seconds = max_audio_seconds  # cut the muxed audio (AAC-frame granularity), e.g. a capped clip count

        self.path.parent.mkdir(parents=True, exist_ok=True)
        suffix = self.path.suffix or ".mp4"
        self.tmp_path = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        fmt = None if self.path.suffix else "mp4"

        self._container = av.open(str(self.tmp_path), mode="w", format=fmt)
        try:
            for k, v in (metadata or {}).items():
                self._container.metadata[str(k)] = str(v)
            self._vstream = self._container.add_stream("libx264", rate=self.fps)
            self._vstream.pix_fmt = "yuv420p"
            self._vstream.options = {"crf": str(crf)}
            self._vstream.codec_context.time_base = 1 / self.fps
            self._astream = None
            if audio is not None:
                self._prepare_audio(audio if isinstance(audio, DecodedAudio) else read_audio(audio), audio_bitrate)
        except BaseException:
            self.abort()
            raise

    # ------------------------------------------------------------------ audio
    def _prepare_audio(self, audio: DecodedAudio, bitrate: str) -> None:
        """Add the AAC stream and encode the whole decoded track now (compressed packets are small), so that
        :meth:`write` can interleave audio packets with video packets by timestamp."""
        rate = audio.sample_rate if audio.sample_rate in _AAC_RATES else 48000
        layout = "mono" if audio.channels == 1 else "stereo"
        astream = self._container.add_stream("aac", rate=rate)
        astream.layout = layout
        astream.bit_rate = _parse_bitrate(bitrate)
        astream.codec_context.time_base = Fraction(1, rate)
        self._astream = astream
        cc = astream.codec_context
        cc.open()  # to learn frame_size
        resampler = av.AudioResampler(format=cc.format.name, layout=layout, rate=rate, frame_size=cc.frame_size)
        limit = None if self.max_audio_seconds is None else int(round(self.max_audio_seconds * rate))
        pts = 0

        def encode(frame) -> None:
            nonlocal pts
            if frame is not None and limit is not None and pts >= limit:
                return
            if frame is not None:
                frame.pts = pts
                frame.time_base = Fraction(1, rate)
                pts += frame.samples
            self._audio_packets.extend(astream.encode(frame))

        src_layout = _LAYOUTS.get(audio.channels)
        if src_layout is None:
            raise ValueError(f"{audio.path}: {audio.channels} audio channels (at most 8 can be muxed)")
        samples = np.ascontiguousarray(audio.samples, dtype=np.float32)
        for s0 in range(0, samples.shape[1], _CHUNK):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, s0:s0 + _CHUNK]), format="fltp",
                                               layout=src_layout)
            frame.sample_rate = audio.sample_rate
            for out in resampler.resample(frame):
                encode(out)
        for out in resampler.resample(None):
            encode(out)
        encode(None)
        if pts == 0:
            raise ValueError(f"{audio.path}: audio track is empty")

    def _mux_audio_until(self, t: Optional[float]) -> None:
        """Mux queued audio packets up to time t seconds (all of them if t is None)."""
        while self._audio_packets:
            pkt = self._audio_packets[0]
            if t is not None and pkt.pts is not None and float(pkt.pts * pkt.time_base) > t:
                break
            self._audio_packets.popleft()
            pkt.stream = self._astream
            self._container.mux(pkt)

    def _mux_video(self, packets) -> None:
        for pkt in packets:
            self._container.mux(pkt)
            if self._astream is not None and pkt.dts is not None:
                self._mux_audio_until(float(pkt.dts * pkt.time_base))

    # ------------------------------------------------------------------ video
    @property
    def frames_written(self) -> int:
        """Number of frames encoded so far (after the max_frames trim)."""
        return self._frames_written

    def write(self, frames: Union[torch.Tensor, np.ndarray]) -> None:
        """Encode frames now.

        Args:
            frames: float tensor [3, T, H, W] or [1, 3, T, H, W] in [-1, 1], or a uint8 numpy array [T, H, W, 3].
        """
        if self._closed:
            raise RuntimeError("VideoWriter is closed")
        if isinstance(frames, np.ndarray):
            if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"expected a uint8 [T, H, W, 3] array, got {frames.dtype} {frames.shape}")
            u8 = frames
            per_frame = lambda i: np.ascontiguousarray(u8[i])  # noqa: E731
            t, h, w = u8.shape[:3]
        else:
            if frames.ndim == 5:
                if frames.shape[0] != 1:
                    raise ValueError(f"expected batch size 1, got frames of shape {tuple(frames.shape)}")
                frames = frames[0]
            if frames.ndim != 4 or frames.shape[0] != 3:
                raise ValueError(f"expected frames [3, T, H, W], got {tuple(frames.shape)}")
            t, h, w = frames.shape[1:]
            src = frames.detach()
            # convert one frame at a time so host memory stays bounded
            per_frame = lambda i: frames_to_uint8(src[:, i].cpu(), self.rounding).permute(1, 2, 0).contiguous().numpy()  # noqa: E731
        if h % 2 or w % 2:
            raise ValueError(f"frame size {w}x{h} must be even for yuv420p")
        if self._frames_written == 0:
            self._vstream.width, self._vstream.height = w, h
        elif (self._vstream.width, self._vstream.height) != (w, h):
            raise ValueError(f"frame size changed from {self._vstream.width}x{self._vstream.height} to {w}x{h}")
        if self.max_frames is not None:
            t = min(t, max(self.max_frames - self._frames_written, 0))
        for i in range(t):
            vf = av.VideoFrame.from_ndarray(per_frame(i), format="rgb24")
            vf.pts = self._frames_written
            vf.time_base = 1 / self.fps
            self._mux_video(self._vstream.encode(vf))
            self._frames_written += 1

    def close(self) -> Path:
        """Flush the encoders, mux the rest of the audio, and move the file into place. Returns the final path."""
        if self._closed:
            return self.path
        try:
            if self._frames_written == 0:
                raise ValueError(f"{self.path}: no frames were written")
            self._mux_video(self._vstream.encode(None))
            if self._astream is not None:
                self._mux_audio_until(None)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        os.replace(self.tmp_path, self.path)
        return self.path

    def abort(self) -> None:
        """Discard the output: close the container and delete the temporary file. The final path is untouched."""
        self._closed = True
        self._audio_packets.clear()
        container = getattr(self, "_container", None)
        if container is not None:
            try:
                container.close()
            except Exception:  # noqa: BLE001  (already failing; the temp file is deleted below)
                pass
        try:
            self.tmp_path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


def _parse_bitrate(bitrate: Union[str, int]) -> int:
    """'192k' → 192000."""
    if isinstance(bitrate, int):
        return bitrate
    s = str(bitrate).strip().lower()
    mult = {"k": 1000, "m": 1000000}.get(s[-1:], 1)
    return int(float(s.rstrip("km")) * mult)
