"""The one bucket sampler of training: deterministic, resumable batches of one (bucket, has_motion) key, sharded over
ranks (training.md §3, §10, §11)."""

from __future__ import annotations

import torch


class BatchSource:
    """Deterministic, resumable stream of collated batches for this rank.

    Each epoch the global order of dataset indices is a permutation seeded by (seed, epoch); global batch k takes
    positions [k B W, (k+1) B W) and rank r the r-th slice of B, so a run on W ranks with batch B sees exactly the
    global batches of one process with batch B W. Only batches of one bucket are formed: indices are grouped by
    ``key_fn`` (bucket, has_motion) before batching. State: (epoch, batches consumed in the epoch)."""

    def __init__(self, dataset, batch_size: int, collate, key_fn=None, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        self.dataset, self.batch_size, self.collate = dataset, batch_size, collate
        self.seed, self.rank, self.world = seed, rank, world_size
        n = len(dataset)
        keys = [key_fn(i) for i in range(n)] if key_fn is not None else [0] * n
        self.groups: dict = {}
        for i, k in enumerate(keys):
            self.groups.setdefault(k, []).append(i)
        self.epoch, self.position = 0, 0
        self._batches = None
        global_batch = batch_size * world_size
        if all(len(v) < global_batch for v in self.groups.values()):
            raise ValueError(f"no bucket holds a full global batch of {global_batch} samples "
                             f"(bucket sizes: {sorted(len(v) for v in self.groups.values())})")

    def _epoch_batches(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        gb = self.batch_size * self.world
        batches = []
        for k in sorted(self.groups, key=str):
            idx = self.groups[k]
            perm = [idx[j] for j in torch.randperm(len(idx), generator=g).tolist()]
            batches += [perm[s:s + gb] for s in range(0, len(perm) - gb + 1, gb)]
        order = torch.randperm(len(batches), generator=g).tolist()
        return [batches[o] for o in order]

    def next_batch(self) -> dict:
        while True:
            if self._batches is None:
                self._batches = self._epoch_batches(self.epoch)
                if hasattr(self.dataset, "set_epoch"):
                    self.dataset.set_epoch(self.epoch)
            if self.position < len(self._batches):
                gb = self._batches[self.position]
                self.position += 1
                mine = gb[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
                return self.collate([self.dataset[i] for i in mine])
            self.epoch, self.position, self._batches = self.epoch + 1, 0, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "position": self.position, "seed": self.seed}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self._batches = int(state["epoch"]), int(state["position"]), None
