"""wav2vec2 hidden states -> per-video-frame audio columns (architecture.md §5, inference.md §4; s2v14b.md §4.1).

TalkVerse-5B: 50 -> 25 fps by decimation, one column per 25 fps video frame. S2V-14B: 50 -> 30 fps by linear
interpolation, then video frame k (16 fps) takes the 30 fps frame ``round(k * 30 / 16)`` (half to even). Both are
:func:`bucket_fps` with (feature fps, video fps) = (25, 25) or (30, 16); past the audio's end a column is zero.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

HOP = 320  # samples per 50 Hz frame at 16 kHz
RECEPTIVE_FIELD = 400  # samples of the conv stack


def num_frames_50hz(num_samples: int) -> int:
    """T50 = floor((N - 400) / 320) + 1 (0 for inputs shorter than the receptive field)."""
    return 0 if num_samples < RECEPTIVE_FIELD else (num_samples - RECEPTIVE_FIELD) // HOP + 1


def decimate_25fps(hidden_states: torch.Tensor) -> torch.Tensor:
    """[L+1, T50, C] -> [L+1, ceil(T50/2), C]: every second frame starting at frame 0, no interpolation."""
    return hidden_states[:, ::2]


def interpolate_30fps(hidden_states: torch.Tensor) -> torch.Tensor:
    """[L+1, T50, C] -> [L+1, int(T50 / 50.0 * 30), C]: linear, ``align_corners=True`` (S2V-14B)."""
    n = int(hidden_states.shape[1] / 50.0 * 30)
    out = F.interpolate(hidden_states.transpose(1, 2), size=n, mode="linear", align_corners=True)
    return out.transpose(1, 2)


def features_at(hidden_states: torch.Tensor, feature_fps: int) -> torch.Tensor:
    """50 Hz states -> the model's feature rate: 25 (decimated, 5B) or 30 (interpolated, S2V-14B)."""
    if feature_fps == 25:
        return decimate_25fps(hidden_states)
    if feature_fps == 30:
        return interpolate_30fps(hidden_states)
    raise ValueError(f"feature_fps must be 25 or 30, got {feature_fps}")


def bucket_indices(num_columns: int, feature_fps: int = 25, video_fps: int = 25) -> np.ndarray:
    """int64 [num_columns]: the feature frame of video frame k, ``np.round(k * feature_fps / video_fps)``."""
    return np.round(np.arange(num_columns) * feature_fps / video_fps).astype(np.int64)


def bucket_fps(feat: torch.Tensor, num_columns: int, feature_fps: int = 25, video_fps: int = 25) -> torch.Tensor:
    """[L+1, A, C] at ``feature_fps`` -> [1, L+1, C, num_columns] at ``video_fps``: column k = frame
    :func:`bucket_indices`[k] if that frame exists, else zeros."""
    if feature_fps == video_fps:
        return bucket_columns(feat, num_columns)
    idx = torch.from_numpy(bucket_indices(num_columns, feature_fps, video_fps))
    valid = idx < feat.shape[1]
    out = feat.new_zeros(1, feat.shape[0], feat.shape[2], num_columns)
    out[0, :, :, valid] = feat[:, idx[valid]].transpose(1, 2)
    return out


def reference_num_clips_fps(num_feature_frames: int, frames_per_clip: int, feature_fps: int = 25,
                            video_fps: int = 25) -> int:
    """The reference's clip count int(A / (N * feature_fps / video_fps)) + 1 (= A // N + 1 at equal rates)."""
    if feature_fps == video_fps:
        return reference_num_clips(num_feature_frames, frames_per_clip)
    return int(num_feature_frames / (frames_per_clip * feature_fps / video_fps)) + 1


def reference_num_clips(num_feature_frames: int, frames_per_clip: int) -> int:
    """The reference's clip count: floor(A / N) + 1, so an exact multiple still gets an extra all-padding clip."""
    return num_feature_frames // frames_per_clip + 1


def bucket_columns(feat_25fps: torch.Tensor, num_columns: int) -> torch.Tensor:
    """[L+1, A, C] -> [1, L+1, C, num_columns]: column k = frame k for k < A, zeros past the end (window m = 0).

    Frames beyond ``num_columns`` are dropped.
    """
    layers, a, c = feat_25fps.shape
    out = feat_25fps.new_zeros(1, layers, c, num_columns)
    n = min(a, num_columns)
    out[0, :, :, :n] = feat_25fps[:, :n].transpose(1, 2)
    return out


def bucket_clips(feat_25fps: torch.Tensor, frames_per_clip: int, num_clips: int | None = None) -> torch.Tensor:
    """[1, L+1, C, num_clips * frames_per_clip]; ``num_clips`` defaults to the reference rule floor(A/N) + 1."""
    if frames_per_clip <= 0:
        raise ValueError(f"frames_per_clip must be positive, got {frames_per_clip}")
    if num_clips is None:
        num_clips = reference_num_clips(feat_25fps.shape[1], frames_per_clip)
    return bucket_columns(feat_25fps, num_clips * frames_per_clip)


def clip_slice(audio_emb: torch.Tensor, clip: int, frames_per_clip: int) -> torch.Tensor:
    """Clip r's columns [r*N, (r+1)*N) of a bucketed [1, L+1, C, T] tensor."""
    return audio_emb[..., clip * frames_per_clip:(clip + 1) * frames_per_clip]
