"""Decoding one candidate clip: its frames resampled to 25 fps and its 16 kHz mono audio (moved by the row's
``audio_shift``), the way the encoded training clip will hold them."""

from __future__ import annotations

import numpy as np

from ..media.audio import load_audio
from ..media.constants import FPS, SAMPLE_RATE
from ..media.video import VideoReader


def clip_frame_range(row: dict, fps: float = FPS) -> tuple[int, int]:
    """[first, stop) output frame indices of the clip on the ``fps`` grid of the source."""
    return int(round(row["start"] * fps)), int(round(row["end"] * fps))


def read_clip_frames(row: dict, fps: float = FPS, every: int = 1) -> np.ndarray:
    """uint8 [T, H, W, 3]: the clip's frames resampled to ``fps`` (every ``every``-th of them)."""
    a, b = clip_frame_range(row, fps)
    out = []
    with VideoReader(row["input"]) as reader:
        for k, frame in enumerate(reader.iter_frames(fps)):
            if k >= b:
                break
            if k >= a and (k - a) % every == 0:
                out.append(frame)
    if not out:
        raise ValueError(f"{row['input']}: no frames in [{row['start']:.2f}, {row['end']:.2f}) s")
    return np.stack(out)


def read_clip_audio(row: dict, sr: int = SAMPLE_RATE, shift: float | None = None) -> np.ndarray:
    """float32 [round((end-start)*sr)]: the clip's audio from ``start + shift`` (zeros outside the source)."""
    wave = load_audio(row["input"], sr)
    shift = row.get("audio_shift", 0.0) if shift is None else shift
    a = int(round((row["start"] + shift) * sr))
    n = int(round((row["end"] - row["start"]) * sr))
    out = np.zeros(n, np.float32)
    lo, hi = max(a, 0), min(a + n, len(wave))
    if hi > lo:
        out[lo - a:hi - a] = wave[lo:hi]
    return out
