"""The web UI: ``python -m talkverse.app`` serves a Gradio page for TalkVersePipeline (portrait + speech -> mp4).

Modules: ``cli`` (flags, launch), ``settings`` (the page's defaults and limits), ``model`` (the pipeline, loaded once
per process), ``validation`` (uploads -> plain-sentence errors), ``generation`` (one request -> one mp4),
``progress`` (clip/step progress from the pipeline), ``history`` (the gallery of recent results), ``enhancer``
(optional prompt rewriting with a local chat model), ``components`` (Gradio components with readable errors), ``ui``
(the page). Only ``ui``, ``components`` and ``cli`` import Gradio.
"""
