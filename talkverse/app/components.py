"""Gradio components whose own upload handling fails with a plain sentence instead of a stack trace."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .validation import IMAGE_KINDS


def portrait_image(**kwargs) -> gr.Image:
    """A gr.Image whose preprocessing (PIL opens the upload before any app code runs) turns an unreadable file into
    gr.Error("The file “x” is not an image ..."). The wrapper is set on the instance: a gr.Image subclass would make
    Gradio write a .pyi stub next to this file at import time."""
    image = gr.Image(**kwargs)
    preprocess = image.preprocess

    def readable_preprocess(payload):
        try:
            return preprocess(payload)
        except gr.Error:
            raise
        except Exception:  # PIL.UnidentifiedImageError, OSError, ValueError, DecompressionBombError, ...
            name = getattr(payload, "orig_name", None) or Path(getattr(payload, "path", None) or "upload").name
            raise gr.Error(f"The file “{name}” is not an image that can be read. Please upload {IMAGE_KINDS}.",
                           title="Input problem") from None

    image.preprocess = readable_preprocess
    return image
