"""Cached umT5 text embeddings (training.md §2.3): ours (safetensors) and the reference's (.pt) layouts."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .files import NULL_EMBEDDING_FILES, null_embedding_file

KEY = "context"


def load_embedding(path: str | Path) -> torch.Tensor:
    """A cached embedding file (.safetensors key "context", or a reference .pt tensor) -> float32 [L, D]."""
    path = Path(path)
    if path.suffix == ".safetensors":
        t = load_file(str(path))[KEY]
    else:
        t = torch.load(str(path), map_location="cpu", weights_only=True)
        if isinstance(t, dict):
            t = t.get(KEY, next(iter(t.values())))
    t = t.float()
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2:
        raise ValueError(f"{path}: expected a [L, D] or [1, L, D] embedding, got {tuple(t.shape)}")
    return t


def atomic_save(tensors: dict[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """safetensors write to a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    os.close(fd)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TextEmbeddingCache:
    """``get(clip_id)`` -> float32 [L, D]; ``null()`` -> float32 [1, D] (the embedding of "")."""

    def __init__(self, folder: str | Path, dtype: torch.dtype = torch.bfloat16):
        self.folder = Path(folder)
        self.dtype = dtype  # storage dtype for write()

    def path(self, clip_id: str) -> Path:
        return self.folder / f"{clip_id}.safetensors"

    def get(self, clip_id: str) -> torch.Tensor:
        for p in (self.path(clip_id), self.folder / f"{clip_id}.pt"):
            if p.is_file():
                return load_embedding(p)
        raise KeyError(f"no cached text embedding for clip {clip_id!r} in {self.folder} "
                       f"(looked for {clip_id}.safetensors and {clip_id}.pt)")

    def __contains__(self, clip_id: str) -> bool:
        return self.path(clip_id).is_file() or (self.folder / f"{clip_id}.pt").is_file()

    def null(self) -> torch.Tensor:
        p = null_embedding_file(self.folder)
        if p is None:
            raise KeyError(f"no null text embedding in {self.folder} ({' or '.join(NULL_EMBEDDING_FILES)})")
        t = load_embedding(p)
        return t[:1] if t.shape[0] != 1 else t

    def write(self, clip_id: str, context: torch.Tensor) -> Path:
        """Store [L, D] (or [1, L, D]) under ``<folder>/<clip_id>.safetensors`` atomically."""
        c = context.detach().cpu()
        if c.dim() == 3 and c.shape[0] == 1:
            c = c[0]
        if c.dim() != 2:
            raise ValueError(f"context must be [L, D], got {tuple(c.shape)}")
        p = self.path(clip_id)
        atomic_save({KEY: c.to(self.dtype)}, p)
        return p

    def write_null(self, context: torch.Tensor) -> Path:
        """Store the null embedding as [1, D] (a 1-D [D] input is accepted)."""
        c = context.detach().cpu()
        c = c.reshape(-1, c.shape[-1])
        if c.shape[0] != 1:
            raise ValueError(f"the null embedding must be [D] or [1, D], got {tuple(context.shape)}")
        p = self.folder / NULL_EMBEDDING_FILES[0]
        atomic_save({KEY: c.to(self.dtype)}, p)
        return p
