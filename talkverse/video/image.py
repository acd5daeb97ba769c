"""Reference-image loading and fitting to a bucket size (inference.md §3)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError


ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray]

MIN_SIDE = 16


class ImageError(ValueError):
    """An input image is missing, unreadable or unusable. The message names the file and the problem."""


def _scale_to_u8(arr: np.ndarray) -> np.ndarray:
    """Map a high-bit-depth or float single-channel array to uint8 by scaling (not clipping)."""
    arr = arr.astype(np.float64)
    finite = arr[np.isfinite(arr)]
    hi = float(finite.max()) if finite.size else 0.0
    lo = float(finite.min()) if finite.size else 0.0
    if lo >= 0.0 and hi <= 1.0 and arr.dtype.kind == "f":
        arr = arr * 255.0  # float image in [0, 1]
    elif lo >= 0.0 and hi <= 255.0:
        pass  # already 8-bit range
    elif lo >= 0.0 and hi <= 65535.0:
        arr = arr / 257.0  # 16-bit range
    else:
        arr = (arr - lo) / max(hi - lo, 1e-12) * 255.0  # arbitrary range: min-max normalise
    return np.clip(np.nan_to_num(arr), 0, 255).round().astype(np.uint8)


def _pil_to_rgb(img: Image.Image, name: str = "<image>") -> Image.Image:
    """Convert any PIL mode to RGB; transparency is composited on white, 16-bit/float data is scaled to 8 bits."""
    mode = img.mode
    if mode == "RGB":
        return img
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode in ("P", "L", "RGB") and "transparency" in img.info)
    if has_alpha:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode in ("I", "F") or mode.startswith("I;16"):
        arr = np.asarray(img)
        if arr.ndim != 2:
            raise ImageError(f"{name}: unsupported image mode {mode}")
        gray = _scale_to_u8(arr)
        return Image.fromarray(np.repeat(gray[:, :, None], 3, axis=2), mode="RGB")
    try:
        return img.convert("RGB")  # 1, L, CMYK, YCbCr, LAB, HSV, P
    except Exception as e:  # noqa: BLE001
        raise ImageError(f"{name}: cannot convert image mode {mode} to RGB ({e})") from e


def _check_size(img: Image.Image, name: str) -> None:
    w, h = img.size
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ImageError(f"{name}: image is too small ({w}x{h}); need at least {MIN_SIDE} px on each side")


def to_rgb(image: ImageLike) -> Image.Image:
    """Return an RGB PIL image from a path, a PIL image, or an HxWx3 (or HxW) uint8 numpy array."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if isinstance(image, np.ndarray):
        arr = image
        if arr.ndim == 3 and arr.shape[2] == 4:
            img = Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8)), mode="RGBA")
        elif arr.ndim == 3 and arr.shape[2] == 3:
            if arr.dtype != np.uint8:
                raise ImageError(f"<array>: expected uint8 HxWx3 array, got dtype {arr.dtype}")
            img = Image.fromarray(np.ascontiguousarray(arr), mode="RGB")
        elif arr.ndim == 2:
            img = Image.fromarray(arr) if arr.dtype == np.uint8 else Image.fromarray(_scale_to_u8(arr))
        else:
            raise ImageError(f"<array>: expected an HxWx3 uint8 array, got shape {tuple(arr.shape)}")
        out = _pil_to_rgb(img, "<array>")
        _check_size(out, "<array>")
        return out
    if isinstance(image, Image.Image):
        name = getattr(image, "filename", "") or "<image>"
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)
        out = _pil_to_rgb(ImageOps.exif_transpose(image), name)
        _check_size(out, name)
        return out
    raise ImageError(f"unsupported image input of type {type(image).__name__}")


def load_image(path: Union[str, os.PathLike]) -> Image.Image:
    """Load an image file as RGB: EXIF orientation applied, frame 0 of animations, transparency on white."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: not found")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    try:
        with Image.open(path) as img:
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            out = _pil_to_rgb(img, str(path))
            out.load()
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ImageError(f"{path}: not a readable image ({e})") from e
    _check_size(out, str(path))
    return out


def image_to_tensor_u8(img: ImageLike) -> torch.Tensor:
    """RGB image → uint8 tensor [3, H, W]."""
    arr = np.asarray(to_rgb(img), dtype=np.uint8)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def _resize(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Bilinear + antialias resize of a float [3, H, W] tensor in [0, 255]; a no-op at the same size."""
    if x.shape[-2:] == (h, w):
        return x
    y = F.interpolate(x[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
    return y.clamp_(0.0, 255.0)


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
        s = max(width / w, height / h)
        new_w = max(int(round(w * s)), width)  # never smaller than the target
        new_h = max(int(round(h * s)), height)
        x = _resize(x, new_h, new_w)
        top, left = (new_h - height) // 2, (new_w - width) // 2
        x = x[:, top : top + height, left : left + width]
    elif mode == "pad-compat":
        short_t = min(height, width)
        if w <= h:
            new_w, new_h = short_t, int(short_t * h / w)
        else:
            new_h, new_w = short_t, int(short_t * w / h)
        x = _resize(x, new_h, new_w)
        x = _center_crop_pad(x, height, width)
    else:
        raise ValueError(f"unknown image fit mode {mode!r}; valid: cover, pad-compat")
    return (x / 255.0 * 2.0 - 1.0).contiguous()
