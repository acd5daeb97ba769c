"""Batches of one (bucket, has_motion) key, sharded over ranks, resumable (training.md §3, §10, §11)."""

from __future__ import annotations

from typing import Any, Hashable, Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler


class BucketBatchSampler(Sampler[list[int]]):
    """Yield lists of ``batch_size`` dataset indices that share a key, this rank's share of the epoch.

    Keys come from ``dataset.key_of(i)`` (cheap header probe) or are given as a sequence; a None key drops the index.
    Per epoch (rng seeded by [seed, epoch]): each key's indices are shuffled and cut into batches (an incomplete
    batch is dropped with ``drop_last``, else kept), all batches are shuffled, and rank r takes batches
    r, r+world, ... so every rank gets the same count (with ``drop_last=False`` the list is padded by wrapping).

    Resume: ``state_dict()`` = {"epoch", "position"}; ``position`` counts batches this iterator has yielded in the
    epoch. A DataLoader prefetches, so the trainer should store the number of batches it actually consumed:
    ``load_state_dict({"epoch": e, "position": consumed})`` continues at the exact next batch.
    """

    def __init__(self, dataset_or_keys: Any, batch_size: int, rank: int = 0, world_size: int = 1, seed: int = 0,
                 drop_last: bool = True):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        if hasattr(dataset_or_keys, "key_of"):
            keys = [dataset_or_keys.key_of(i) for i in range(len(dataset_or_keys))]
        else:
            keys = list(dataset_or_keys)
        self.keys: list[Hashable | None] = keys
        self.batch_size, self.rank, self.world_size = int(batch_size), int(rank), int(world_size)
        self.seed, self.drop_last = int(seed), bool(drop_last)
        self.epoch, self.position = 0, 0
        groups: dict[Hashable, list[int]] = {}
        for i, k in enumerate(keys):
            if k is not None:
                groups.setdefault(k, []).append(i)
        self.groups = dict(sorted(groups.items(), key=lambda kv: repr(kv[0])))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's permutation; a different epoch restarts at position 0."""
        if int(epoch) != self.epoch:
            self.epoch, self.position = int(epoch), 0

    def all_batches(self, epoch: int | None = None) -> list[list[int]]:
        """Every rank's batches of the epoch, in global order, before sharding."""
        rng = np.random.default_rng([self.seed, self.epoch if epoch is None else int(epoch)])
        batches: list[list[int]] = []
        for idx in self.groups.values():
            perm = [idx[j] for j in rng.permutation(len(idx))]
            for s in range(0, len(perm), self.batch_size):
                b = perm[s:s + self.batch_size]
                if len(b) == self.batch_size or not self.drop_last:
                    batches.append(b)
        return [batches[j] for j in rng.permutation(len(batches))]

    def rank_batches(self, epoch: int | None = None) -> list[list[int]]:
        batches = self.all_batches(epoch)
        n = len(batches)
        if self.drop_last:
            per = n // self.world_size
        else:
            per = -(-n // self.world_size)
            if n:
                batches = batches + [batches[j % n] for j in range(per * self.world_size - n)]
        return batches[self.rank::self.world_size][:per]

    def __len__(self) -> int:
        n = sum((len(v) // self.batch_size if self.drop_last else -(-len(v) // self.batch_size))
                for v in self.groups.values())
        return n // self.world_size if self.drop_last else -(-n // self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.rank_batches()
        if self.position >= len(batches):
            self.position = 0  # a new pass over the same epoch
        while self.position < len(batches):
            b = batches[self.position]
            self.position += 1
            yield b

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.position = int(state["epoch"]), int(state["position"])
        if "seed" in state and int(state["seed"]) != self.seed:
            raise ValueError(f"sampler seed {self.seed} differs from the saved seed {state['seed']}")
