"""50 -> 25 fps decimation and per-clip bucketing of wav2vec2 hidden states (architecture.md §5, inference.md §4)."""

from __future__ import annotations

import torch

HOP = 320  # samples per 50 Hz frame at 16 kHz
RECEPTIVE_FIELD = 400  # samples of the conv stack


def num_frames_50hz(num_samples: int) -> int:
    """T50 = floor((N - 400) / 320) + 1 (0 for inputs shorter than the receptive field)."""
    return 0 if num_samples < RECEPTIVE_FIELD else (num_samples - RECEPTIVE_FIELD) // HOP + 1


def decimate_25fps(hidden_states: torch.Tensor) -> torch.Tensor:
    """[L+1, T50, C] -> [L+1, ceil(T50/2), C]: every second frame starting at frame 0, no interpolation."""
    return hidden_states[:, ::2]


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
