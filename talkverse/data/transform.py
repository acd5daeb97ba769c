"""Bucket choice and the cover transform (training.md §3): scale by max(W_t/w, H_t/h), bilinear, centre crop."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..video.buckets import BUCKETS, choose_bucket



def target_size(height: int, width: int, bucket) -> tuple[int, int]:
    """(H_t, W_t) for a source of height x width.

    ``bucket``: a table name of ``BUCKETS`` (nearest key of h/w), a fixed ``"HxW"`` string or (H, W) tuple, or a
    custom table [(key, (H, W)), ...] with the same nearest-key rule (ties -> first).
    """
    if isinstance(bucket, str):
        if bucket in BUCKETS:
            return choose_bucket(height, width, bucket)
        m = re.fullmatch(r"\s*(\d+)\s*[xX*]\s*(\d+)\s*", bucket)
        if m is None:
            raise ValueError(f"unknown bucket {bucket!r}; valid: {', '.join(BUCKETS)} or a fixed HxW")
        return int(m.group(1)), int(m.group(2))
    if isinstance(bucket, tuple) and len(bucket) == 2 and all(isinstance(v, int) for v in bucket):
        return bucket
    table = list(bucket)
    ratio = height / width
    best_key, best = table[0]
    for key, hw in table[1:]:
        if abs(key - ratio) < abs(best_key - ratio):
            best_key, best = key, hw
    return tuple(best)


@dataclass(frozen=True)
class CoverGeometry:
    """Source (h, w) -> resized (new_h, new_w) -> crop offset (top, left) -> target (H, W), as in ``fit_image``."""

    h: int
    w: int
    new_h: int
    new_w: int
    top: int
    left: int
    H: int
    W: int

    @classmethod
    def make(cls, h: int, w: int, H: int, W: int) -> "CoverGeometry":
        s = max(W / w, H / h)
        new_w = max(int(round(w * s)), W)
        new_h = max(int(round(h * s)), H)
        return cls(h, w, new_h, new_w, (new_h - H) // 2, (new_w - W) // 2, H, W)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """Map an xyxy box in source pixels (clamped to the source image) to target pixels (unclamped)."""
        x0, x1 = np.clip([x0, x1], 0, self.w)
        y0, y1 = np.clip([y0, y1], 0, self.h)
        sx, sy = self.new_w / self.w, self.new_h / self.h
        return x0 * sx - self.left, y0 * sy - self.top, x1 * sx - self.left, y1 * sy - self.top


def cover_frames(frames: np.ndarray, H: int, W: int) -> torch.Tensor:
    """uint8 [n, h, w, 3] -> float32 [3, n, H, W] in [-1, 1]; per frame identical to ``fit_image(f, H, W, "cover")``."""
    n, h, w, _ = frames.shape
    g = CoverGeometry.make(h, w, H, W)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # [n, 3, h, w] in [0, 255]
    if (g.new_h, g.new_w) != (h, w):
        x = F.interpolate(x, size=(g.new_h, g.new_w), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 255.0)
    x = x[:, :, g.top:g.top + H, g.left:g.left + W]
    return (x / 255.0 * 2.0 - 1.0).permute(1, 0, 2, 3).contiguous()
