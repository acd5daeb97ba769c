"""Images: any file, PIL image, array or tensor as an RGB PIL image, with one-line errors (inference.md §3). No torch
here (fitting to a size: ``talkverse.media.fitting``), so inputs are checked before any heavy import."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

ImageLike = Union[str, os.PathLike, Image.Image, np.ndarray, "torch.Tensor"]  # noqa: F821

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
    """Return an RGB PIL image from a path, a PIL image, an HxWx3 (or HxW) uint8 numpy array, or a [3, H, W] tensor
    (uint8, or float in [0, 1] as diffusers' image processors take it)."""
    if isinstance(image, (str, os.PathLike)):
        return load_image(image)
    if type(image).__module__.startswith("torch"):
        import torch

        if image.ndim != 3 or image.shape[0] != 3:
            raise ImageError(f"<tensor>: expected [3, H, W], got shape {tuple(image.shape)}")
        x = image.detach().cpu()
        x = x if x.dtype == torch.uint8 else (x.float().clamp(0, 1) * 255).round().to(torch.uint8)
        image = x.permute(1, 2, 0).numpy()
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
