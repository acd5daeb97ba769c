"""FramePack motion packer (reference name ``frame_packer``): 19 motion latents -> multi-scale motion tokens."""

from __future__ import annotations

import torch
import torch.nn as nn


class FramePackMotioner(nn.Module):
    """Packs the motion latents [B, C, M, h, w] (oldest first) into tokens [B, n1 + n2 + n4, D].

    The latents are right-aligned into a zero buffer of sum(buckets) = 1 + 2 + 16 frames, split as
    [16 oldest | 2 | 1 newest] and patchified with 1x (1,2,2), 2x (2,4,4) and 4x (4,8,8) Conv3d kernels
    (kernel = stride, no padding: spatial sizes floor). Tokens are concatenated in the order [1x, 2x, 4x].
    """

    def __init__(self, in_channels: int, inner_dim: int, buckets: tuple[int, int, int] = (1, 2, 16)):
        super().__init__()
        self.buckets = tuple(int(b) for b in buckets)
        self.proj = nn.Conv3d(in_channels, inner_dim, kernel_size=(1, 2, 2), stride=(1, 2, 2))
        self.proj_2x = nn.Conv3d(in_channels, inner_dim, kernel_size=(2, 4, 4), stride=(2, 4, 4))
        self.proj_4x = nn.Conv3d(in_channels, inner_dim, kernel_size=(4, 8, 8), stride=(4, 8, 8))

    def forward(self, motion_latents: torch.Tensor) -> torch.Tensor:
        total = sum(self.buckets)
        m = motion_latents[:, :, -total:]
        if m.shape[2] < total:  # fewer latents than slots: right-align into zeros
            pad = m.new_zeros(m.shape[0], m.shape[1], total - m.shape[2], *m.shape[3:])
            m = torch.cat([pad, m], dim=2)
        b1, b2, b4 = self.buckets
        lat_4x, lat_2x, lat_1x = m.to(self.proj.weight.dtype).split([b4, b2, b1], dim=2)
        tokens = [self.proj(lat_1x), self.proj_2x(lat_2x), self.proj_4x(lat_4x)]
        return torch.cat([t.flatten(2).transpose(1, 2) for t in tokens], dim=1)

    @staticmethod
    def num_tokens(height: int, width: int, buckets: tuple[int, int, int] = (1, 2, 16)) -> int:
        """Motion token count for a latent grid of height x width."""
        b1, b2, b4 = buckets
        return (b1 * (height // 2) * (width // 2) + (b2 // 2) * (height // 4) * (width // 4)
                + (b4 // 4) * (height // 8) * (width // 8))
