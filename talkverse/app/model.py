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
