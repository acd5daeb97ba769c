"""talkverse: a diffusers-native implementation of TalkVerse-5B (audio-driven talking-video generation)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public classes load on first use, so light submodules (talkverse.cli_args for the CLIs' --help) don't pull in
# torch, diffusers and transformers.
_LAZY = {"TalkVerseTransformer3DModel": ".models", "TalkVersePipeline": ".pipelines", "load_pipeline": ".pipelines"}

if TYPE_CHECKING:  # pragma: no cover
    from .models import TalkVerseTransformer3DModel
    from .pipelines import TalkVersePipeline, load_pipeline


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TalkVersePipeline", "TalkVerseTransformer3DModel", "__version__", "load_pipeline"]
