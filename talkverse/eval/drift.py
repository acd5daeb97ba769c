"""Model-free drift measures for long videos (evaluation.md §3).

* colour drift: χ² = ½·Σ(h − r)² / (h + r + 1e-12) between the 16³-bin RGB histograms of each frame and a reference
  (the first frame unless given). This is the §3 colour metric itself.
* appearance distance: mean absolute difference (in [0, 1] units) between a 32×32 box-downsampled frame and the
  downsampled reference. A pixel-space stand-in for identity drift; it is *not* the dlib-embedding ID distance
  (nor CSIM) and must not be reported as such. It also moves with pose, expression and lighting.

``drift_per_second`` averages both per second of video and fits least-squares slopes per minute.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..media.constants import FPS

HIST_BINS = 16
THUMB_SIZE = 32


def _check_frames(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    return frames


def rgb_histogram(frame, bins: int = HIST_BINS) -> np.ndarray:
    """Normalised joint RGB histogram with bins³ cells (float64, sums to 1) of one uint8 [H, W, 3] frame."""
    f = np.asarray(frame)
    if f.ndim != 3 or f.shape[-1] != 3 or f.dtype != np.uint8:
        raise ValueError(f"expected a uint8 [H, W, 3] frame, got {f.dtype} {f.shape}")
    q = (f.reshape(-1, 3).astype(np.int64) * bins) // 256
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = np.bincount(idx, minlength=bins**3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def chi2_distance(h, r) -> float:
    """½·Σ(h − r)² / (h + r + 1e-12): 0 for equal histograms, 1 for disjoint normalised ones."""
    h, r = np.asarray(h, np.float64), np.asarray(r, np.float64)
    return float(0.5 * np.sum((h - r) ** 2 / (h + r + 1e-12)))


def colour_chi2(frames, reference=None, bins: int = HIST_BINS) -> np.ndarray:
    """χ² colour distance of each frame's RGB histogram to the reference's (default: the first frame): [T]."""
    frames = _check_frames(frames)
    if frames.shape[0] == 0:
        return np.zeros(0)
    ref = frames[0] if reference is None else np.asarray(reference)
    rh = rgb_histogram(ref, bins)
    return np.array([chi2_distance(rgb_histogram(f, bins), rh) for f in frames])


def _thumb(frame: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(frame)).resize((size, size), Image.Resampling.BOX)
    return np.asarray(img, np.float64) / 255.0


def appearance_distance(frames, reference=None, size: int = THUMB_SIZE) -> np.ndarray:
    """Mean |thumb(frame) − thumb(reference)| over a size×size box-downsampled RGB image, in [0, 1] units: [T].

    A model-free appearance/identity-drift proxy (not an identity embedding distance).
    """
    frames = _check_frames(frames)
    if frames.shape[0] == 0:
        return np.zeros(0)
    ref = _thumb(frames[0] if reference is None else np.asarray(reference, np.uint8), size)
    return np.array([float(np.abs(_thumb(f, size) - ref).mean()) for f in frames])


def slope_per_minute(times_s, values) -> float:
    """Least-squares slope of values against time, in units per minute (NaN with fewer than 2 finite points)."""
    t, v = np.asarray(times_s, np.float64), np.asarray(values, np.float64)
    ok = np.isfinite(t) & np.isfinite(v)
    if ok.sum() < 2 or np.ptp(t[ok]) == 0:
        return float("nan")
    return float(np.polyfit(t[ok] / 60.0, v[ok], 1)[0])


def per_second_means(values, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(centre time in s of each second, mean of the per-frame values in that second); the last one may be partial."""
    v = np.asarray(values, np.float64)
    sec = np.floor(np.arange(len(v)) / fps).astype(np.int64)
    n = int(sec[-1]) + 1 if len(v) else 0
    means = np.array([v[sec == s].mean() for s in range(n)])
    centres = np.array([((np.flatnonzero(sec == s).mean() + 0.5) / fps) for s in range(n)])
    return centres, means


@dataclass
class DriftSummary:
    """Per-frame and per-second drift against the reference, with least-squares slopes per minute."""

    fps: float
    colour_chi2: np.ndarray  # [T]
    appearance: np.ndarray  # [T], pixel-space appearance distance (not an identity embedding)
    seconds: np.ndarray  # [S] centre time of each second
    colour_chi2_per_second: np.ndarray  # [S]
    appearance_per_second: np.ndarray  # [S]
    colour_chi2_slope_per_min: float
    appearance_slope_per_min: float

    def to_dict(self) -> dict:
        def lst(a):
            return [None if not np.isfinite(x) else float(x) for x in a]

        def f(x):
            return None if not np.isfinite(x) else float(x)

        return {
            "fps": float(self.fps),
            "seconds": lst(self.seconds),
            "colour_chi2_per_second": lst(self.colour_chi2_per_second),
            "appearance_distance_per_second": lst(self.appearance_per_second),
            "colour_chi2_mean": f(np.mean(self.colour_chi2)) if len(self.colour_chi2) else None,
            "appearance_distance_mean": f(np.mean(self.appearance)) if len(self.appearance) else None,
            "colour_chi2_slope_per_min": f(self.colour_chi2_slope_per_min),
            "appearance_distance_slope_per_min": f(self.appearance_slope_per_min),
        }


def drift_per_second(frames, fps: float = FPS, reference=None) -> DriftSummary:
    """Colour χ² and appearance distance of every frame to the reference (default: the first frame), averaged per
    second, with slopes per minute fitted to the per-second means."""
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    chi2 = colour_chi2(frames, reference)
    app = appearance_distance(frames, reference)
    secs, chi2_s = per_second_means(chi2, fps)
    _, app_s = per_second_means(app, fps)
    return DriftSummary(fps=float(fps), colour_chi2=chi2, appearance=app, seconds=secs,
                        colour_chi2_per_second=chi2_s, appearance_per_second=app_s,
                        colour_chi2_slope_per_min=slope_per_minute(secs, chi2_s),
                        appearance_slope_per_min=slope_per_minute(secs, app_s))
