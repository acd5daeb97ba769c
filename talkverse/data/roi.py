"""ROI masks from DWPose skeletons and the latent loss weight map (training.md §7)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..media.fitting import CoverGeometry
from .sampling import pose_index

FACE = slice(23, 91)  # COCO-WholeBody face keypoints 23..90


def face_box(keypoints: np.ndarray) -> tuple[float, float, float, float] | None:
    """[133, 3] (x, y, score) -> min/max box over valid face points (score > 0, finite, not (0,0)), or None."""
    f = np.asarray(keypoints, dtype=np.float64)[FACE]
    ok = np.isfinite(f).all(axis=1) & (f[:, 2] > 0) & ~((f[:, 0] == 0) & (f[:, 1] == 0))
    if not ok.any():
        return None
    x, y = f[ok, 0], f[ok, 1]
    return float(x.min()), float(y.min()), float(x.max()), float(y.max())


def _draw(mask: np.ndarray, box: tuple[float, float, float, float] | None) -> None:
    """Fill pixels [floor(x0), ceil(x1)) x [floor(y0), ceil(y1)) (clipped) of a [H, W] mask."""
    if box is None or not all(math.isfinite(v) for v in box):
        return
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    H, W = mask.shape
    c0, c1 = max(0, int(math.floor(x0))), min(W, int(math.ceil(x1)))
    r0, r1 = max(0, int(math.floor(y0))), min(H, int(math.ceil(y1)))
    if c1 > c0 and r1 > r0:
        mask[r0:r1, c0:c1] = 1


def roi_masks(npz_path: str | Path, frame_indices: Sequence[int], orig_hw: tuple[int, int],
              target_hw: tuple[int, int], t25: int) -> tuple[np.ndarray, np.ndarray]:
    """Face and body masks uint8 {0,1} [T, H, W] for 25 fps frames ``frame_indices`` of a clip with ``t25`` frames.

    Boxes are clamped to the original image and put through the frames' cover + centre-crop transform.
    Frame i uses pose index round(i*(T_pose-1)/(t25-1)).
    """
    with np.load(str(npz_path), allow_pickle=False) as z:
        kp = np.asarray(z["keypoints_info"], dtype=np.float64)
        bb = np.asarray(z["person_bbox_xyxy"], dtype=np.float64)
    if kp.ndim == 3:  # (T, 133, 3): single person without the person axis
        kp = kp[:, None]
    if bb.ndim == 2:
        bb = bb[:, None]
    t_pose = kp.shape[0]
    g = CoverGeometry.make(orig_hw[0], orig_hw[1], target_hw[0], target_hw[1])
    H, W = target_hw
    face = np.zeros((len(frame_indices), H, W), np.uint8)
    body = np.zeros_like(face)
    for k, i in enumerate(frame_indices):
        p = pose_index(int(i), t_pose, t25)
        if kp.shape[1] > 0 and kp.shape[2] > FACE.stop - 1:
            fb = face_box(kp[p, 0])
            if fb is not None:
                _draw(face[k], g.box(*fb))
        if p < bb.shape[0] and bb.shape[1] > 0 and np.isfinite(bb[p, 0]).all():
            _draw(body[k], g.box(*bb[p, 0, :4]))
    return face, body


def gaussian_kernel(sigma: float = 1.0, radius: int = 3) -> torch.Tensor:
    """Normalised 1-D Gaussian [2*radius+1] fp32."""
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    return k / k.sum()


def blur2d(x: torch.Tensor, sigma: float = 1.0, radius: int = 3) -> torch.Tensor:
    """Separable spatial Gaussian with replicate padding on [T, h, w] (no temporal blur)."""
    k = gaussian_kernel(sigma, radius)
    y = x[:, None].float()  # [T, 1, h, w]
    y = F.conv2d(F.pad(y, (radius, radius, 0, 0), mode="replicate"), k.view(1, 1, 1, -1))
    y = F.conv2d(F.pad(y, (0, 0, radius, radius), mode="replicate"), k.view(1, 1, -1, 1))
    return y[:, 0]


def latent_weight_map(face: np.ndarray | torch.Tensor, body: np.ndarray | torch.Tensor, latent_frames: int,
                      h: int, w: int) -> torch.Tensor:
    """W = 1 + boost*blur(face) + blur(body) -> fp32 [latent_frames, h, w] (NaN -> 1).

    Masks [T, H, W] are nearest-resized to (latent_frames, h, w) (every 4th main frame, every 16th pixel), blurred
    (sigma 1, radius 3, replicate) and clamped to [0, 1]; boost = min(0.1/a, 5) if 0 < a < 0.1 else 1, a = the
    resized binary face area fraction per latent frame.
    """
    def resize(m) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(m), dtype=torch.float32)[None, None]
        return F.interpolate(t, size=(latent_frames, h, w), mode="nearest")[0, 0]

    f, b = resize(face), resize(body)
    a = f.sum(dim=(1, 2)) / float(h * w)
    boost = torch.where((a > 0) & (a < 0.1), torch.clamp(0.1 / a.clamp_min(1e-12), max=5.0), torch.ones_like(a))
    wmap = 1.0 + boost[:, None, None] * blur2d(f).clamp(0, 1) + blur2d(b).clamp(0, 1)
    return torch.nan_to_num(wmap, nan=1.0).float()
