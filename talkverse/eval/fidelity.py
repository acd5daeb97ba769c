"""Pixel fidelity against ground truth: per-frame PSNR and its summary over time windows (evaluation.md §3, §6).

On synthetic clips (``talkverse.testing.synthetic``) the ground-truth frames are exact, so PSNR of a generated video
against them measures identity and colour (and, less, pose and mouth) at once; the VAE round trip of the same frames
is its ceiling. PSNR is 10·log10(255² / MSE) over all pixels and channels of a uint8 frame.
"""

from __future__ import annotations

import numpy as np

from ..media.constants import FPS

MAX_PSNR_DB = 100.0  # identical frames (MSE 0) are reported as this


def psnr_per_frame(frames, truth) -> np.ndarray:
    """PSNR in dB of each uint8 frame [T, H, W, 3] against ``truth`` (same shape, or one frame [H, W, 3]): [T]."""
    f = np.asarray(frames, np.float64)
    t = np.asarray(truth, np.float64)
    if f.ndim == 3:
        f = f[None]
    if t.ndim == 3:
        t = t[None]
    n = f.shape[0] if t.shape[0] == 1 else min(f.shape[0], t.shape[0])
    f, t = f[:n], np.broadcast_to(t, (n, *t.shape[1:])) if t.shape[0] == 1 else t[:n]
    if f.shape[1:] != t.shape[1:]:
        raise ValueError(f"frame size {f.shape[1:]} differs from the ground truth's {t.shape[1:]}")
    mse = ((f - t) ** 2).reshape(n, -1).mean(axis=1)
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(255.0**2 / mse), MAX_PSNR_DB)


def window_median(values: np.ndarray, seconds: float, where: str = "first", fps: int = FPS) -> float:
    """Median of a per-frame series over the first or last ``seconds`` of the video."""
    n = max(1, int(round(seconds * fps)))
    v = np.asarray(values)
    return float(np.median(v[:n] if where == "first" else v[-n:]))
