"""How the DiT's token sequence is laid out across processes (architecture.md §3; docs/parallel.md).

The transformer asks its ``sequence_plan`` three things per forward: which tokens this process holds
(:meth:`shard`), which of them enter the head (:meth:`head_tokens`) and how the head outputs become the whole noisy
sequence again (:meth:`gather_head`). :class:`WholeSequence`, the default, holds every token;
``talkverse.parallel.ulysses`` installs a plan that splits the sequence over the ranks of a group. Token-local layers
(modulation, audio injection) use the :class:`SequenceShard` to find their global positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SequenceShard:
    """Tokens [start, stop) of the sequence of ``length`` real tokens, zero-padded to ``padded`` = world * local."""

    rank: int
    world: int
    length: int

    @property
    def padded(self) -> int:
        return self.world * math.ceil(self.length / self.world)

    @property
    def local(self) -> int:
        return self.padded // self.world

    @property
    def start(self) -> int:
        return self.rank * self.local

    @property
    def stop(self) -> int:
        return self.start + self.local

    def clamp(self, index: int) -> int:
        """A global token index -> the local index (clamped to [0, local])."""
        return min(max(index - self.start, 0), self.local)


class WholeSequence:
    """Every token on this process: no padding, no communication."""

    def shard(self, x: torch.Tensor, rotary: tuple[torch.Tensor, torch.Tensor]):
        """x [B, L, D], rotary (cos, sin) [1, L, 1, d] -> (the same, SequenceShard(0, 1, L))."""
        return x, rotary, SequenceShard(0, 1, x.shape[1])

    def head_tokens(self, x: torch.Tensor, num_noisy: int, shard: SequenceShard) -> torch.Tensor:
        return x[:, :num_noisy]

    def gather_head(self, out: torch.Tensor, num_noisy: int) -> torch.Tensor:
        """[B, L_v, patch * C] head output of every noisy token."""
        return out
