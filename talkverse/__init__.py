"""talkverse: a diffusers-native implementation of TalkVerse-5B (audio-driven talking-video generation).

Layers, bottom to top (docs/architecture.md): ``media``/``configs``/``demo`` -> ``convert`` -> ``models`` ->
``loaders``/``parallel``/``perf`` -> ``pipelines``/``data``/``training``/``eval``/``parity``/``testing`` ->
``runner``/``batch`` -> ``cli``/``app``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# The public names load on first use, so light submodules (the CLIs' --help) don't pull in torch, diffusers and
# transformers.
_LAZY = {"TalkVerseTransformer3DModel": ".models.transformer_talkverse",
         "TalkVersePipeline": ".pipelines.pipeline_talkverse", "TalkVersePipelineOutput": ".pipelines.output",
         "load_pipeline": ".pipelines.loading", "load_transformer": ".loaders.transformer"}

if TYPE_CHECKING:  # pragma: no cover
    from .loaders.transformer import load_transformer
    from .models.transformer_talkverse import TalkVerseTransformer3DModel
    from .pipelines.loading import load_pipeline
    from .pipelines.output import TalkVersePipelineOutput
    from .pipelines.pipeline_talkverse import TalkVersePipeline


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TalkVersePipeline", "TalkVersePipelineOutput", "TalkVerseTransformer3DModel", "__version__",
           "load_pipeline", "load_transformer"]
