"""The causal audio encoder (reference name ``casual_audio_encoder``, misspelling kept for checkpoint keys).

wav2vec2 hidden states [B, 25, C, T] (one column per 25-fps video frame) -> per-latent-frame audio tokens:
local [B, ceil(T/4), 5, D] (4 conv tokens + 1 learned padding token) and global [B, ceil(T/4), 1, D].
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalConv1d(nn.Module):
    """Conv1d with ``kernel_size - 1`` frames of left *replicate* padding and no right padding."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1):
        super().__init__()
        self.pad = kernel_size - 1
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, C', ceil(T/stride)]
        return self.conv(F.pad(x, (self.pad, 0), mode="replicate"))


class CausalAudioConvStack(nn.Module):
    """Local and global causal conv branches; ``conv2``/``conv3`` and the norms are shared by both."""

    def __init__(self, in_dim: int, hidden_dim: int, num_tokens: int, eps: float = 1e-6):
        super().__init__()
        self.num_tokens = num_tokens
        q = hidden_dim // 4
        self.conv1_local = CausalConv1d(in_dim, q * num_tokens, 3, stride=1)
        self.conv1_global = CausalConv1d(in_dim, q, 3, stride=1)
        self.conv2 = CausalConv1d(q, hidden_dim // 2, 3, stride=2)
        self.conv3 = CausalConv1d(hidden_dim // 2, hidden_dim, 3, stride=2)
        self.norm1 = nn.LayerNorm(q, eps=eps, elementwise_affine=False)
        self.norm2 = nn.LayerNorm(hidden_dim // 2, eps=eps, elementwise_affine=False)
        self.norm3 = nn.LayerNorm(hidden_dim, eps=eps, elementwise_affine=False)
        self.act = nn.SiLU()
        self.final_linear = nn.Linear(hidden_dim, hidden_dim)
        self.padding_tokens = nn.Parameter(torch.zeros(1, 1, 1, hidden_dim))

    def _shared_tail(self, x: torch.Tensor) -> torch.Tensor:
        """[N, T, D/4] (after conv1) -> [N, ceil(T/4), D]."""
        x = self.act(self.norm1(x))
        x = self.act(self.norm2(self.conv2(x.transpose(1, 2)).transpose(1, 2)))
        return self.act(self.norm3(self.conv3(x.transpose(1, 2)).transpose(1, 2)))

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """feat [B, T, C] -> (local [B, T', 5, D], global [B, T', 1, D])."""
        b, t, _ = feat.shape
        x = feat.transpose(1, 2)  # [B, C, T]
        # Local branch: channels are group-major, (token, channel): token 0 takes channels [0, D/4).
        loc = self.conv1_local(x).unflatten(1, (self.num_tokens, -1))  # [B, n, D/4, T]
        loc = loc.flatten(0, 1).transpose(1, 2)  # [B*n, T, D/4]
        loc = self._shared_tail(loc).unflatten(0, (b, self.num_tokens)).transpose(1, 2)  # [B, T', n, D]
        pad = self.padding_tokens.expand(b, loc.shape[1], 1, -1).to(loc.dtype)
        local = torch.cat([loc, pad], dim=2)
        glob = self._shared_tail(self.conv1_global(x).transpose(1, 2))  # [B, T', D]
        glob = self.final_linear(glob).unsqueeze(2)  # [B, T', 1, D]
        return local, glob


class CausalAudioEncoder(nn.Module):
    """Layer mix of the wav2vec2 states (SiLU(w)/sum SiLU(w), not softmax) followed by the conv stack.

    Runs in fp32 whatever the surrounding dtype.
    """

    def __init__(self, audio_dim: int, num_layers: int, hidden_dim: int, num_tokens: int = 4, eps: float = 1e-6):
        super().__init__()
        self.encoder = CausalAudioConvStack(audio_dim, hidden_dim, num_tokens, eps)
        # Init 0.01 (never 0: SiLU(0)=0 would make the mix 0/0).
        self.weights = nn.Parameter(torch.full((1, num_layers, 1, 1), 0.01))
        self.act = nn.SiLU()

    def mix_layers(self, features: torch.Tensor) -> torch.Tensor:
        """features [B, L, C, T] -> mixed [B, T, C] (fp32)."""
        w = self.act(self.weights.float())
        mixed = (features.float() * w / w.sum(dim=1, keepdim=True)).sum(dim=1)
        return mixed.transpose(1, 2)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features [B, L, C, T] -> (local [B, ceil(T/4), 5, D], global [B, ceil(T/4), 1, D]), fp32."""
        mixed = self.mix_layers(features)
        dtype = self.encoder.conv3.conv.weight.dtype
        return self.encoder(mixed.to(dtype))
