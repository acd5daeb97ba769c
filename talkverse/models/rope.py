"""3D RoPE for the S2V token layout [noisy | reference | FramePack motion].

Each head's ``head_dim`` channels form ``head_dim/2`` rotation pairs split as [t | h | w] with
``c - 2*(c//3) | c//3 | c//3`` pairs (c = head_dim/2; 22/21/21 at head_dim 128). Pairs are interleaved channels
(2k, 2k+1). Each axis has its own ladder theta_k = base^(-2k/n_axis) with n_axis the axis' real width.
Angles are built in float64 from *signed* integer positions and stored as fp32 cos/sin tables shaped
[1, L, 1, head_dim] in diffusers' ``WanAttnProcessor`` format.
"""

from __future__ import annotations

import numpy as np
import torch


def rope_axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Real channel widths (t, h, w) of the RoPE split."""
    h = w = 2 * (head_dim // 6)
    return head_dim - h - w, h, w


def _spread(n: int, extent: int) -> np.ndarray:
    """``n`` positions spread over a full axis of ``extent`` patches, truncated (not rounded)."""
    return np.linspace(0, extent - 1, n).astype(np.int64)


def _grid(t: np.ndarray, h: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(t, h, w) positions of a token grid flattened t-major, w fastest -> [n, 3]."""
    tt, hh, ww = np.meshgrid(t, h, w, indexing="ij")
    return np.stack([tt.ravel(), hh.ravel(), ww.ravel()], axis=1)


def token_positions(
    num_latent_frames: int,
    height: int,
    width: int,
    with_motion: bool,
    ref_t: int = 40,
    buckets: tuple[int, int, int] = (1, 2, 16),
) -> np.ndarray:
    """Integer RoPE positions [L, 3] (t, h, w) of every token, in sequence order.

    ``height``/``width`` are the latent grid (pixels / 16); the patch grid is half of it.
    """
    hp, wp = height // 2, width // 2
    rows = [_grid(np.arange(num_latent_frames), np.arange(hp), np.arange(wp)),  # noisy
            _grid(np.array([ref_t]), np.arange(hp), np.arange(wp))]  # reference
    if with_motion:
        b1, b2, b4 = buckets
        # 1x: the newest b1 latents, one token frame each, ending at t = -1.
        rows.append(_grid(-np.arange(b1, 0, -1), np.arange(hp), np.arange(wp)))
        # 2x: b2 latents compressed 2x in time -> b2//2 token frames starting at t = -(b1+b2).
        t2 = -(b1 + b2) + np.arange(b2 // 2)
        rows.append(_grid(t2, _spread(height // 4, hp), _spread(width // 4, wp)))
        # 4x: b4 latents compressed 4x -> b4//4 token frames spread (truncated) over their span, oldest first.
        s4 = b1 + b2 + b4
        t4 = -np.linspace(s4, s4 - b4 + 1, b4 // 4).astype(np.int64)  # -19, -14, -9, -4
        rows.append(_grid(t4, _spread(height // 8, hp), _spread(width // 8, wp)))
    return np.concatenate(rows, axis=0)


def rope_tables(
    positions: np.ndarray,
    head_dim: int,
    theta: float = 10000.0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) tables [1, L, 1, head_dim] for integer positions [L, 3]; interleaved pairs.

    Angles are always float64; ``dtype`` is the storage dtype (fp32 for the model, fp64 for parity checks).
    """
    pos = torch.from_numpy(np.asarray(positions, dtype=np.float64))
    angles = []
    for axis, n in enumerate(rope_axis_dims(head_dim)):
        inv = 1.0 / torch.pow(torch.tensor(theta, dtype=torch.float64), torch.arange(0, n, 2, dtype=torch.float64) / n)
        angles.append(pos[:, axis : axis + 1] * inv[None, :])
    ang = torch.cat(angles, dim=1)  # [L, head_dim/2], float64
    cos = torch.cos(ang).to(dtype).repeat_interleave(2, dim=1)
    sin = torch.sin(ang).to(dtype).repeat_interleave(2, dim=1)
    return cos[None, :, None, :].to(device), sin[None, :, None, :].to(device)
