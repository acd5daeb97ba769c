"""talkverse: a diffusers-native implementation of TalkVerse-5B (audio-driven talking-video generation)."""

__version__ = "0.1.0"

from .models import TalkVerseTransformer3DModel  # noqa: E402
from .pipelines import TalkVersePipeline, load_pipeline  # noqa: E402

__all__ = ["TalkVersePipeline", "TalkVerseTransformer3DModel", "__version__", "load_pipeline"]
