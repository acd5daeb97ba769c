"""Stage 7, re-encode (docs/curation.md): an accepted clip becomes ``videos/<clip_id>.mp4``: its frames resampled
to 25 fps (timestamp-based), H.264 (yuv420p, ``crf``), with its audio (moved by ``audio_shift``) as AAC at 16 kHz
mono. Written to a partial file and renamed (media.writer.VideoWriter). The source fps stays in the row."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..media.audio import DecodedAudio
from .clipio import read_clip_audio, read_clip_frames
from .records import add_scores, reject

STAGE = "encode"


def video_path(out: Path, clip_id: str) -> Path:
    return Path(out) / "videos" / f"{clip_id}.mp4"


def encode_row(row: dict, cfg, out: Path) -> dict:
    from ..media.writer import VideoWriter

    c = cfg.encode
    frames = read_clip_frames(row, fps=c.fps)
    h, w = frames.shape[1:3]
    frames = frames[:, : h - h % 2, : w - w % 2]  # yuv420p needs even sides
    wave = read_clip_audio(row, sr=c.audio_rate)[: round(len(frames) * c.audio_rate / c.fps)]
    path = video_path(out, row["clip_id"])
    audio = DecodedAudio(path, np.ascontiguousarray(wave[None], np.float32), int(c.audio_rate))
    with VideoWriter(path, fps=c.fps, crf=c.crf, audio=audio, metadata={"comment": f"source={row['input']}"}) as wr:
        wr.write(frames)
    return add_scores(row, frames=len(frames))


class EncodeStage:
    def __init__(self, cfg, out: str):
        self.cfg, self.out = cfg, Path(out)

    def __call__(self, row: dict) -> dict:
        if row["stage"]:
            return row
        try:
            return encode_row(row, self.cfg, self.out)
        except Exception as e:  # noqa: BLE001
            return reject(row, STAGE, "encode_failed", f"{type(e).__name__}: {e}")
