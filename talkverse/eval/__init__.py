"""Offline evaluation: the AV-corr lip-sync proxy and model-free drift measures (docs: evaluation.md §2, §3, §6).

Everything here is an offline *proxy*; none of it is SyncNet's Sync-C/D, FID, FVD or CSIM.
CLI: ``python -m talkverse.eval VIDEO.mp4 [--audio A] [--method auto|synthetic|mediapipe] [--plot out.png] [--json]``.
"""

from ..vision.energy import speech_energy
from ..vision.mouth import (
    MEDIAPIPE_INSTALL_HINT,
    mediapipe_available,
    mediapipe_mouth_openness,
    mouth_openness,
    synthetic_mouth_openness,
)
from ..vision.sync import SyncResult, av_sync
from .drift import (
    DriftSummary,
    appearance_distance,
    chi2_distance,
    colour_chi2,
    drift_per_second,
    per_second_means,
    rgb_histogram,
    slope_per_minute,
)
from .plot import plot_evaluation
from .report import VideoEvaluation, evaluate_video

__all__ = [
    "DriftSummary",
    "MEDIAPIPE_INSTALL_HINT",
    "SyncResult",
    "VideoEvaluation",
    "appearance_distance",
    "av_sync",
    "chi2_distance",
    "colour_chi2",
    "drift_per_second",
    "evaluate_video",
    "mediapipe_available",
    "mediapipe_mouth_openness",
    "mouth_openness",
    "per_second_means",
    "plot_evaluation",
    "rgb_histogram",
    "slope_per_minute",
    "speech_energy",
    "synthetic_mouth_openness",
]
