"""The one lip-sync measure (evaluation.md §2; docs/curation.md "A/V sync"): mouth opening from face-mesh lip
landmarks correlated with the band-passed speech envelope over a lag scan.

``python -m talkverse.eval`` and the curation's sync stage both call :func:`lip_sync`, so a curated clip's recorded
sync score and the evaluator's score on that clip come from the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .energy import speech_energy
from .mouth import mouth_openness
from .sync import SyncResult, av_sync


@dataclass
class LipSync:
    """``sync`` (offset, corr0, best, conf, curve), the two signals [T] it came from, and the mouth readout used."""

    sync: SyncResult
    mouth: np.ndarray
    energy: np.ndarray
    method: str


def lip_sync(frames, wave, sr: int, fps: float, max_lag: int = 10, method: str = "auto",
             mouth: np.ndarray | None = None) -> LipSync:
    """AV-corr of RGB uint8 frames [T, H, W, 3] at ``fps`` against a mono waveform [n] at ``sr`` Hz.

    ``mouth`` [T] reuses an already measured mouth signal (the curation re-scores a clip after shifting its audio
    without running the face mesh again); ``method`` is then only reported.
    """
    if mouth is None:
        mouth, method = mouth_openness(frames, method)
    energy = speech_energy(wave, sr, len(mouth), fps=fps)
    return LipSync(av_sync(mouth, energy, max_lag=max_lag), np.asarray(mouth, np.float64), energy, method)
