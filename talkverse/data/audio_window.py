"""The reference training audio window and its wav2vec2 features (training.md §6)."""

from __future__ import annotations

import numpy as np
import torch

from ..media.constants import FPS, SAMPLE_RATE
from ..models.audio_columns import bucket_columns
from ..models.geometry import ClipGeometry

_GEOMETRY = ClipGeometry()  # the 5B's motion frames


def window_samples(start_frame: int, window_frames: int) -> tuple[int, int]:
    """(start_sample, n_samples) = (int(start/25*16000), int((window-1)/25*16000)); 145 -> 92,160; 72 -> 45,440."""
    return int(start_frame / FPS * SAMPLE_RATE), int((window_frames - 1) / FPS * SAMPLE_RATE)


def segment(wave16k: np.ndarray, start_frame: int, window_frames: int) -> np.ndarray:
    """float32 [n_samples] of the window. Short: padded with the last available sample (zeros if none).

    Silence is valid; NaN/inf raises ValueError.
    """
    start, n = window_samples(start_frame, window_frames)
    seg = np.asarray(wave16k[start:start + n], dtype=np.float32)
    if seg.shape[0] < n:
        fill = seg[-1] if seg.shape[0] else 0.0
        seg = np.concatenate([seg, np.full(n - seg.shape[0], fill, np.float32)])
    if not np.isfinite(seg).all():
        raise ValueError("audio segment contains NaN/inf")
    return np.ascontiguousarray(seg)


def main_slice(has_motion: bool, main: int = 72, motion: int = _GEOMETRY.motion_frames) -> slice:
    """Columns of the main frames in the window: [73:145] with motion, else [0:72]."""
    return slice(motion, motion + main) if has_motion else slice(0, main)


def window_features(w2v, seg: np.ndarray, window_frames: int, keep: slice) -> torch.Tensor:
    """float32 [L+1, C, len(keep)]: normalise the segment, layer-wise 25 fps states, one column per window frame
    (zeros past the end, so the last frame is zero), keep the main frames."""
    feats = w2v.layerwise_features_25fps(w2v.normalize(seg))  # [L+1, T25, C]
    return bucket_columns(feats, window_frames)[0][..., keep].contiguous()
