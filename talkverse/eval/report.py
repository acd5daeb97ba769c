"""One-call evaluation of a video file: AV-corr lip-sync proxy plus colour/appearance drift."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import numpy as np

from ..media.audio import load_audio
from ..media.constants import SAMPLE_RATE
from ..media.video import read_video_frames
from ..vision.lipsync import lip_sync
from ..vision.sync import SyncResult
from .drift import DriftSummary, drift_per_second


@dataclass
class VideoEvaluation:
    video: str
    audio: Optional[str]  # the audio source used ("<video track>" or a path); None when there was none
    audio_error: Optional[str]  # why the lip-sync proxy was skipped, if it was
    num_frames: int
    height: int
    width: int
    fps: float
    method: Optional[str]  # mouth readout used
    mouth: Optional[np.ndarray]  # [T]
    energy: Optional[np.ndarray]  # [T]
    sync: Optional[SyncResult]
    drift: DriftSummary

    def to_dict(self) -> dict:
        return {
            "video": self.video,
            "audio": self.audio,
            "audio_error": self.audio_error,
            "num_frames": self.num_frames,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "lip_sync_proxy": None
            if self.sync is None
            else {"name": "AV-corr (offline proxy, not Sync-C/Sync-D)", "method": self.method, **self.sync.to_dict()},
            "drift": self.drift.to_dict(),
        }


def evaluate_video(
    video: Union[str, os.PathLike],
    audio: Union[str, os.PathLike, None] = None,
    method: str = "auto",
    max_lag: int = 10,
) -> VideoEvaluation:
    """Read ``video`` (and its audio track, or ``audio``), run the AV-corr scan and the drift measures.

    A missing/unreadable video raises ``VideoError``; an explicitly given but unreadable ``audio`` raises
    ``AudioError``; a video without an audio track (and no ``audio``) just skips the lip-sync part.
    """
    from talkverse.media.audio import AudioError

    frames, fps = read_video_frames(video)
    drift = drift_per_second(frames, fps=fps)
    audio_src, audio_err, wave = None, None, None
    if audio is not None:
        wave = load_audio(audio, SAMPLE_RATE)  # errors propagate: the user asked for this file
        audio_src = str(audio)
    else:
        try:
            wave = load_audio(video, SAMPLE_RATE)
            audio_src = "<video track>"
        except AudioError as e:
            audio_err = f"no usable audio ({e}); pass --audio"
    sync = mouth = energy = used = None
    if wave is not None:
        ls = lip_sync(frames, wave, SAMPLE_RATE, fps, max_lag=max_lag, method=method)
        sync, mouth, energy, used = ls.sync, ls.mouth, ls.energy, ls.method
    return VideoEvaluation(
        video=str(Path(video)),
        audio=audio_src,
        audio_error=audio_err,
        num_frames=int(frames.shape[0]),
        height=int(frames.shape[1]),
        width=int(frames.shape[2]),
        fps=float(fps),
        method=used,
        mouth=mouth,
        energy=energy,
        sync=sync,
        drift=drift,
    )
