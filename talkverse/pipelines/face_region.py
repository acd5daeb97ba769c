"""Crop -> generate -> paste back: the geometry of dubbing only a face (issue 20, docs/inference.md "Dubbing only the
face"). Pure functions on arrays; the runner (``talkverse.facedub``) reads and writes the files.

Per clip r (output frames [start, end)):

* the **region** box: the union over the clip's frames of the face box (``"face"``) or the lips' box (``"mouth"``:
  from landmarks when the track has them, else the lower middle of the face box), dilated by ``dilate`` x its size;
* the **crop window**: a face-centred window of the model bucket's aspect ratio, ``pad`` x the face box's size
  around it, the same size for every clip of the video (only its centre moves), kept inside the frame; the source
  frames are cropped to it and resized to the bucket (the pipeline dubs the crop);
* the **mask**: 1 inside the dilated region box (full-frame pixels), feathered inwards over ``feather`` pixels: the
  paste alpha is exactly 0 outside the dilated region, so every pixel there is the source pixel;
* **paste back**: the generated crop is resized to the window and blended into the full-resolution source frame
  with the alpha. Frames whose face is lost keep alpha 0 (they pass through).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .face_track import DUB_REGIONS


@dataclass
class ClipRegion:
    """One clip's geometry: ``window`` (x0, y0, x1, y1) int full-frame pixels (exclusive end), ``region`` the dilated
    region box (float, full-frame pixels) or None when the face is lost for the whole clip."""

    window: tuple[int, int, int, int]
    region: np.ndarray | None
    feather: float = 0.0  # the paste alpha's ramp in pixels (at most half the region's shorter side)

    def alpha(self) -> np.ndarray:
        """The paste alpha over the window, float [wh, ww] (:func:`region_alpha`)."""
        return region_alpha(self.region, self.window, self.feather)

    def frame_alpha(self, frame_hw: tuple[int, int]) -> np.ndarray:
        """The paste alpha over the whole frame, float [H, W] (0 outside the window)."""
        out = np.zeros(frame_hw, np.float32)
        x0, y0, x1, y1 = self.window
        out[y0:y1, x0:x1] = self.alpha()
        return out


def mouth_boxes(boxes: np.ndarray, mouths: np.ndarray | None) -> np.ndarray:
    """The lips' box per frame [T, 4]: from landmarks where known, else x in [0.2, 0.8] and y in [0.55, 0.95] of the
    face box."""
    x0, y0, x1, y1 = boxes.T
    w, h = x1 - x0, y1 - y0
    out = np.stack([x0 + 0.2 * w, y0 + 0.55 * h, x0 + 0.8 * w, y0 + 0.95 * h], 1)
    if mouths is not None:
        ok = np.isfinite(mouths).all(1)
        out[ok] = mouths[ok]
    return out


def union_box(boxes: np.ndarray) -> np.ndarray | None:
    """The union of the finite rows of ``boxes`` [n, 4]; None if there are none."""
    ok = np.isfinite(boxes).all(1)
    if not ok.any():
        return None
    b = boxes[ok]
    return np.array([b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max()])


def dilate_box(box: np.ndarray, dilate: float, frame_hw: tuple[int, int]) -> np.ndarray:
    """``box`` grown by ``dilate`` x its shorter side on every side, clipped to the frame."""
    m = dilate * min(box[2] - box[0], box[3] - box[1])
    h, w = frame_hw
    return np.array([max(0.0, box[0] - m), max(0.0, box[1] - m), min(float(w), box[2] + m), min(float(h), box[3] + m)])


def window_size(face_boxes: np.ndarray, bucket_hw: tuple[int, int], frame_hw: tuple[int, int], pad: float) -> tuple[int, int]:
    """(h, w) of the video's crop window: the bucket's aspect ratio, covering the largest face box padded by ``pad``
    x its size on every side, at most the frame."""
    ok = np.isfinite(face_boxes).all(1)
    b = face_boxes[ok]
    need_w = float(((b[:, 2] - b[:, 0]) * (1 + 2 * pad)).max())
    need_h = float(((b[:, 3] - b[:, 1]) * (1 + 2 * pad)).max())
    bh, bw = bucket_hw
    scale = max(need_w / bw, need_h / bh)
    scale = min(scale, frame_hw[0] / bh, frame_hw[1] / bw)
    return max(1, int(round(bh * scale))), max(1, int(round(bw * scale)))


def place_window(center: tuple[float, float], size_hw: tuple[int, int], frame_hw: tuple[int, int]) -> tuple[int, int, int, int]:
    """A window of ``size_hw`` centred on (cx, cy), shifted to lie inside the frame."""
    h, w = size_hw
    x0 = int(round(min(max(center[0] - w / 2, 0), frame_hw[1] - w)))
    y0 = int(round(min(max(center[1] - h / 2, 0), frame_hw[0] - h)))
    return x0, y0, x0 + w, y0 + h


def plan_regions(boxes: np.ndarray, mouths: np.ndarray | None, clip_ranges: list[tuple[int, int]], region: str,
                 frame_hw: tuple[int, int], bucket_hw: tuple[int, int], pad: float = 0.35,
                 dilate: float = 0.08, feather: float = 16.0) -> list[ClipRegion]:
    """Per clip: its crop window and dilated region box (``boxes``/``mouths`` [T, 4] full-frame pixels, NaN where
    lost; frames past T repeat the last, as the dubbing source does). A clip without a face borrows the window of
    the nearest clip with one (the model still needs a crop to continue from) and has no region."""
    if region not in DUB_REGIONS[1:]:
        raise ValueError(f"dub_region must be one of {', '.join(DUB_REGIONS)}, got {region!r}")
    size = window_size(boxes, bucket_hw, frame_hw, pad)
    target = boxes if region == "face" else mouth_boxes(boxes, mouths)
    last = len(boxes) - 1
    out: list[ClipRegion | None] = []
    for start, end in clip_ranges:
        idx = np.minimum(np.arange(start, end), last)
        face = union_box(boxes[idx])
        if face is None:
            out.append(None)
            continue
        centre = (0.5 * (face[0] + face[2]), 0.5 * (face[1] + face[3]))
        reg = dilate_box(union_box(target[idx]), dilate, frame_hw)
        ramp = min(feather, 0.5 * min(reg[2] - reg[0], reg[3] - reg[1]))
        out.append(ClipRegion(place_window(centre, size, frame_hw), reg, ramp))
    have = [k for k, c in enumerate(out) if c is not None]
    return [c if c is not None else ClipRegion(out[min(have, key=lambda j: abs(j - k))].window, None)
            for k, c in enumerate(out)]


def resize_hwc(img: np.ndarray, out_hw: tuple[int, int]) -> torch.Tensor:
    """uint8 [h, w, 3] -> float [3, H, W] in [0, 255], bilinear with antialiasing."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    return F.interpolate(x, size=out_hw, mode="bilinear", antialias=True, align_corners=False)[0]


def crop_frame(frame: np.ndarray, window: tuple[int, int, int, int], bucket_hw: tuple[int, int]) -> np.ndarray:
    """The window of a uint8 frame [H, W, 3] resized to the bucket: uint8 [bh, bw, 3]."""
    x0, y0, x1, y1 = window
    out = resize_hwc(frame[y0:y1, x0:x1], bucket_hw)
    return out.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def region_alpha(region: np.ndarray | None, window: tuple[int, int, int, int], feather: float) -> np.ndarray:
    """float [wh, ww] over the window: 0 outside the region box, rising linearly over ``feather`` pixels inside
    it to 1 (exactly 0 outside the dilated region, whatever the feather)."""
    x0, y0, x1, y1 = window
    alpha = np.zeros((y1 - y0, x1 - x0), np.float32)
    if region is None:
        return alpha
    ys = np.arange(y0, y1, dtype=np.float32) + 0.5
    xs = np.arange(x0, x1, dtype=np.float32) + 0.5
    dy = np.minimum(ys - region[1], region[3] - ys)  # distance inside the box along y (negative outside)
    dx = np.minimum(xs - region[0], region[2] - xs)
    d = np.minimum(dy[:, None], dx[None, :])
    return np.clip(d / max(feather, 1e-6), 0.0, 1.0).astype(np.float32) * (d > 0)


def crop_mask(region: np.ndarray | None, window: tuple[int, int, int, int], bucket_hw: tuple[int, int]) -> torch.Tensor:
    """The region to regenerate in crop (bucket) pixels: float [bh, bw], 1 inside the dilated region box."""
    bh, bw = bucket_hw
    mask = torch.zeros(bh, bw)
    if region is None:
        return mask
    x0, y0, x1, y1 = window
    sx, sy = bw / (x1 - x0), bh / (y1 - y0)
    cx0, cx1 = int(np.floor((region[0] - x0) * sx)), int(np.ceil((region[2] - x0) * sx))
    cy0, cy1 = int(np.floor((region[1] - y0) * sy)), int(np.ceil((region[3] - y0) * sy))
    mask[max(0, cy0):max(0, cy1), max(0, cx0):max(0, cx1)] = 1.0
    return mask


def paste_back(source: np.ndarray, generated: torch.Tensor, window: tuple[int, int, int, int],
               alpha: np.ndarray) -> np.ndarray:
    """Blend one generated crop (float [3, bh, bw] in [-1, 1]) into its uint8 source frame [H, W, 3] through
    ``alpha`` [wh, ww]; pixels with alpha 0 keep the source value exactly. Returns a new uint8 frame."""
    out = source.copy()
    if not (alpha > 0).any():
        return out
    x0, y0, x1, y1 = window
    gen = F.interpolate(((generated.float() + 1) * 127.5)[None], size=(y1 - y0, x1 - x0), mode="bilinear",
                        antialias=True, align_corners=False)[0].permute(1, 2, 0).numpy()
    src = source[y0:y1, x0:x1].astype(np.float32)
    a = alpha[..., None]
    blended = np.clip(np.rint(a * gen + (1 - a) * src), 0, 255).astype(np.uint8)
    inside = alpha > 0
    out[y0:y1, x0:x1][inside] = blended[inside]
    return out
