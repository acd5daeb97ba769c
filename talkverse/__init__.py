"""talkverse: a diffusers-native implementation of TalkVerse-5B (audio-driven talking-video generation)."""

__version__ = "0.1.0"

from .models import TalkVerseTransformer3DModel  # noqa: E402

__all__ = ["TalkVerseTransformer3DModel", "__version__"]
