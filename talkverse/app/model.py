"""The pipeline, loaded at most once per process: lazily on the first request, then shared by every user."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator


class ModelCache:
    """Holds the object ``loader()`` returns. ``use()`` loads it on first use (under a lock, so two requests arriving
    together load it once) and keeps other requests out while one runs the pipeline."""

    def __init__(self, loader: Callable[[], object]):
        self._loader = loader
        self._value = None
        self._lock = threading.RLock()
        self.loads = 0

    @property
    def loaded(self) -> bool:
        return self._value is not None

    def get(self):
        with self._lock:
            if self._value is None:
                self._value = self._loader()
                self.loads += 1
            return self._value

    @contextlib.contextmanager
    def use(self) -> Iterator[object]:
        with self._lock:
            yield self.get()


class ModelSwitch:
    """Several models by name (the page's model switch), at most one loaded at a time: ``use(name)`` drops the loaded
    one (freeing its GPU memory) before loading another. ``use()`` without a name uses the current (first) model."""

    def __init__(self, loaders: dict[str, Callable[[], object]]):
        self.caches = {name: ModelCache(loader) for name, loader in loaders.items()}
        self.current = next(iter(self.caches))
        self._lock = threading.RLock()

    @property
    def loaded(self) -> bool:
        return self.caches[self.current].loaded

    def is_loaded(self, name: str) -> bool:
        return self.caches[name].loaded

    @contextlib.contextmanager
    def use(self, name: str | None = None) -> Iterator[object]:
        with self._lock:
            name = self.current if name is None else name
            if name not in self.caches:
                raise ValueError(f"unknown model {name!r}; known: {', '.join(self.caches)}")
            if name != self.current:
                old = self.caches[self.current]
                with old._lock:
                    old._value = None
                _free_accelerator_memory()
                self.current = name
            with self.caches[name].use() as value:
                yield value


def _free_accelerator_memory() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
