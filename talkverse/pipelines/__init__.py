"""Pipelines and their sampling schedule (``scheduling``)."""

from .loading import load_pipeline
from .pipeline_talkverse import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT, TalkVersePipeline, TalkVersePipelineOutput

__all__ = ["DEFAULT_NEGATIVE_PROMPT", "DEFAULT_PROMPT", "TalkVersePipeline", "TalkVersePipelineOutput", "load_pipeline"]
