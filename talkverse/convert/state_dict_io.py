"""Lazy, memory-mapped reading of checkpoint files.

A ``LazyStateDict`` knows every key and shape up front and reads one tensor at a time, straight into the requested
dtype and device, so loading never holds a second full copy of the model. Accepted sources:

* a ``.safetensors`` file;
* a directory with ``*.safetensors.index.json`` (sharded; the index names the shards) or with ``*.safetensors`` files;
* a ``.pth``/``.pt``/``.bin`` pickle, read only with ``torch.load(weights_only=True, mmap=True)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path

import torch
from safetensors import safe_open

from .errors import CheckpointError

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")


class LazyStateDict(Mapping):
    """Read-only mapping key -> tensor, loaded on access. ``shape(key)``/``dtype(key)`` read only headers."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._where: dict[str, Path] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._dtypes: dict[str, torch.dtype] = {}
        self._pickled: dict[str, torch.Tensor] = {}
        self.metadata: dict[str, str] = {}
        if not self.path.exists():
            raise CheckpointError(f"checkpoint not found: {self.path}")
        self._expected_from_index: dict[str, Path] = {}
        for f in self._files():
            self._index(f)
        lost = [k for k in self._expected_from_index if k not in self._where]
        if lost:
            raise CheckpointError(f"the index of {self.path} lists tensors that its shards do not hold: {lost[:10]}")
        if not self._where and not self._pickled:
            raise CheckpointError(f"checkpoint {self.path} holds no tensors")

    # -------------------------------------------------------------- discovery
    def _files(self) -> list[Path]:
        p = self.path
        if p.is_file():
            return [p]
        indexes = sorted(p.glob("*.safetensors.index.json"))
        if len(indexes) > 1:
            raise CheckpointError(f"{p} has several index files ({', '.join(i.name for i in indexes)}); pass one file")
        if indexes:
            try:
                weight_map = json.loads(indexes[0].read_text())["weight_map"]
            except (ValueError, KeyError) as e:
                raise CheckpointError(f"index file {indexes[0]} is not a valid safetensors index: {e}") from e
            shards = sorted({p / s for s in weight_map.values()})
            missing = [s.name for s in shards if not s.exists()]
            if missing:
                raise CheckpointError(f"index {indexes[0].name} in {p} names shards that are missing: {missing}")
            self._expected_from_index = {k: p / s for k, s in weight_map.items()}
            return shards
        files = sorted(p.glob("*.safetensors"))
        if not files:
            files = sorted(f for f in p.iterdir() if f.suffix in PICKLE_SUFFIXES)
        if not files:
            raise CheckpointError(f"no checkpoint files (*.safetensors, *.pth) in directory {p}")
        return files

    def _index(self, f: Path) -> None:
        if f.suffix == ".safetensors":
            try:
                with safe_open(str(f), framework="pt") as h:
                    self.metadata.update(h.metadata() or {})
                    for k in h.keys():
                        sl = h.get_slice(k)
                        self._add(k, f, tuple(sl.get_shape()), _st_dtype(sl.get_dtype()))
            except CheckpointError:
                raise
            except Exception as e:  # safetensors raises its own error types for truncated/corrupt files
                raise CheckpointError(f"cannot read safetensors file {f}: {e} (truncated or corrupt download?)") from e
        elif f.suffix in PICKLE_SUFFIXES:
            try:
                sd = torch.load(str(f), map_location="cpu", weights_only=True, mmap=True)
            except Exception as e:
                raise CheckpointError(
                    f"cannot read {f} with torch.load(weights_only=True): {e} "
                    "(truncated file, or a pickle that holds more than tensors?)") from e
            if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
                sd = sd["state_dict"]
            if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
                raise CheckpointError(f"{f} is not a plain state dict of tensors")
            for k, v in sd.items():
                self._pickled[k] = v
                self._add(k, f, tuple(v.shape), v.dtype)
        else:
            raise CheckpointError(f"unsupported checkpoint file type: {f}")

    def _add(self, key: str, f: Path, shape: tuple[int, ...], dtype: torch.dtype) -> None:
        if key in self._where:
            raise CheckpointError(f"key {key!r} appears in both {self._where[key].name} and {f.name}")
        self._where[key], self._shapes[key], self._dtypes[key] = f, shape, dtype

    # -------------------------------------------------------------- mapping API
    def __getitem__(self, key: str) -> torch.Tensor:
        return self.load(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._where)

    def __len__(self) -> int:
        return len(self._where)

    def shape(self, key: str) -> tuple[int, ...]:
        return self._shapes[key]

    def dtype(self, key: str) -> torch.dtype:
        return self._dtypes[key]

    def load(self, key: str, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> torch.Tensor:
        """One tensor, converted to ``dtype`` and placed on ``device``."""
        if key in self._pickled:
            t = self._pickled[key]
        else:
            f = self._where[key]
            try:
                with safe_open(str(f), framework="pt", device="cpu") as h:
                    t = h.get_tensor(key)
            except Exception as e:
                raise CheckpointError(f"cannot read tensor {key!r} from {f}: {e}") from e
        return t.to(device=device or "cpu", dtype=dtype or t.dtype)


_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool, "F8_E4M3": torch.float8_e4m3fn, "F8_E5M2": torch.float8_e5m2,
}


def _st_dtype(name: str) -> torch.dtype:
    try:
        return _ST_DTYPES[name]
    except KeyError:
        raise CheckpointError(f"unsupported safetensors dtype {name}") from None
