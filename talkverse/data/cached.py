"""Pre-cached latent windows written by ``scripts/precache.py`` (training.md §12)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file
from torch.utils.data import Dataset

from .files import cached_windows

TENSOR_KEYS = ("x0", "motion", "ref", "audio", "context", "roi_weight")


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


class CachedLatentDataset(Dataset):
    """One item per ``<folder>/**/<clip_id>.safetensors`` (the top-level ``null.safetensors`` is the null text
    embedding, not a window).

    Item keys (float32 tensors): x0 [48, 18, h, w], motion [48, 19, h, w] (zeros without motion), ref [48, 1, h, w],
    audio [L+1, C, 72], context [L, D], roi_weight [18, h, w]; plus has_motion bool, size (H, W), clip_id, index.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.files = cached_windows(self.folder)
        if not self.files:
            raise FileNotFoundError(f"{self.folder}: no cached .safetensors windows")
        self._meta: dict[int, dict[str, str]] = {}

    def __len__(self) -> int:
        return len(self.files)

    def metadata(self, index: int) -> dict[str, str]:
        if index not in self._meta:
            self._meta[index] = _metadata(self.files[index])
        return self._meta[index]

    def bucket_of(self, index: int) -> tuple[int, int]:
        return tuple(json.loads(self.metadata(index)["size"]))

    def key_of(self, index: int) -> tuple[tuple[int, int], bool]:
        m = self.metadata(index)
        return tuple(json.loads(m["size"])), m["has_motion"] == "1"

    def __getitem__(self, index: int) -> dict[str, Any]:
        t = load_file(str(self.files[index]))
        m = self.metadata(index)
        item: dict[str, Any] = {k: t[k].float() for k in TENSOR_KEYS if k in t}
        item["has_motion"] = bool(t["has_motion"].item())
        item["size"] = tuple(json.loads(m["size"]))
        item["clip_id"] = m.get("clip_id", self.files[index].relative_to(self.folder).with_suffix("").as_posix())
        item["index"] = index
        return item
