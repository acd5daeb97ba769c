"""Fitting images and frames to a target size (inference.md §3, training.md §3), as float tensors in [-1, 1].

``fit_image`` (the reference portrait) and ``cover_frames`` (training clips, dubbing sources) share one cover
transform, :class:`CoverGeometry`: scale by max(W_t/w, H_t/h), bilinear + antialias, centre crop. ``pad-compat`` is
the reference's letterboxing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .image import ImageLike, to_rgb

FIT_MODES = ("cover", "pad-compat")


def image_to_tensor_u8(img: ImageLike) -> torch.Tensor:
    """RGB image → uint8 tensor [3, H, W]."""
    arr = np.asarray(to_rgb(img), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear + antialias resize of float [n, 3, H, W] in [0, 255] (clamped); a no-op at the same size."""
    if x.shape[-2:] == (h, w):
        return x
    y = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return y.clamp_(0.0, 255.0)


@dataclass(frozen=True)
class CoverGeometry:
    """Source (h, w) -> resized (new_h, new_w) -> crop offset (top, left) -> target (H, W) of the cover transform."""

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
        new_w = max(int(round(w * s)), W)  # never smaller than the target
        new_h = max(int(round(h * s)), H)
        return cls(h, w, new_h, new_w, (new_h - H) // 2, (new_w - W) // 2, H, W)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        """Map an xyxy box in source pixels (clamped to the source image) to target pixels (unclamped)."""
        x0, x1 = np.clip([x0, x1], 0, self.w)
        y0, y1 = np.clip([y0, y1], 0, self.h)
        sx, sy = self.new_w / self.w, self.new_h / self.h
        return x0 * sx - self.left, y0 * sy - self.top, x1 * sx - self.left, y1 * sy - self.top

    def apply(self, x: torch.Tensor) -> torch.Tensor:
        """float [n, 3, h, w] in [0, 255] -> [n, 3, H, W] in [0, 255]."""
        x = _resize(x, self.new_h, self.new_w)
        return x[:, :, self.top:self.top + self.H, self.left:self.left + self.W]


def cover_frames(frames: np.ndarray, height: int, width: int) -> torch.Tensor:
    """uint8 [n, h, w, 3] -> float32 [3, n, H, W] in [-1, 1]; per frame identical to ``fit_image(f, H, W, "cover")``."""
    n, h, w, _ = frames.shape
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()  # [n, 3, h, w] in [0, 255]
    x = CoverGeometry.make(h, w, height, width).apply(x)
    return (x / 255.0 * 2.0 - 1.0).permute(1, 0, 2, 3).contiguous()


def _center_crop_pad(x: torch.Tensor, h_t: int, w_t: int) -> torch.Tensor:
    """torchvision-style center_crop: zero-pad where the image is too small, then crop at round((size - target) / 2)."""
    _, h, w = x.shape
    if h_t > h or w_t > w:
        # torchvision pads (t - s) // 2 on top/left and the remainder on bottom/right
        pad_l = (w_t - w) // 2 if w_t > w else 0
        pad_t = (h_t - h) // 2 if h_t > h else 0
        pad_r = (w_t - w + 1) // 2 if w_t > w else 0
        pad_b = (h_t - h + 1) // 2 if h_t > h else 0
        x = F.pad(x, (pad_l, pad_r, pad_t, pad_b), value=0.0)
        _, h, w = x.shape
    top = int(round((h - h_t) / 2.0))
    left = int(round((w - w_t) / 2.0))
    return x[:, top : top + h_t, left : left + w_t]


def fit_image(image: ImageLike, height: int, width: int, mode: str = "cover") -> torch.Tensor:
    """Fit an image to (height, width) and map it to [-1, 1].

    Returns:
        float32 tensor [3, height, width].

    mode="cover" (ours, as in training): scale by max(W_t/W, H_t/H) (rounded new size), bilinear+antialias, centre crop.
    mode="pad-compat" (reference letterboxing): resize the shorter edge to min(H_t, W_t) (long edge truncated), then a
    torchvision-style centre crop that zero-pads (black) where the resized image is too small.
    """
    x = image_to_tensor_u8(image).float()  # [3, H, W] in [0, 255]
    _, h, w = x.shape
    if mode == "cover":
        x = CoverGeometry.make(h, w, height, width).apply(x[None])[0]
    elif mode == "pad-compat":
        short_t = min(height, width)
        if w <= h:
            new_w, new_h = short_t, int(short_t * h / w)
        else:
            new_h, new_w = short_t, int(short_t * w / h)
        x = _center_crop_pad(_resize(x[None], new_h, new_w)[0], height, width)
    else:
        raise ValueError(f"unknown image fit mode {mode!r}; valid: cover, pad-compat")
    return (x / 255.0 * 2.0 - 1.0).contiguous()
