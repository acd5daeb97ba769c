"""Gradio components whose own upload handling fails with a plain sentence instead of a stack trace."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from .validation import IMAGE_KINDS


class PortraitImage(gr.Image):
    """gr.Image whose preprocessing (PIL opens the upload before any app code runs) turns an unreadable file into
    gr.Error("The file “x” is not an image ..."). ``is_template`` keeps gr.Image's frontend."""

    is_template = True

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except gr.Error:
            raise
        except Exception:  # PIL.UnidentifiedImageError, OSError, ValueError, DecompressionBombError, ...
            name = getattr(payload, "orig_name", None) or Path(getattr(payload, "path", None) or "upload").name
            raise gr.Error(f"The file “{name}” is not an image that can be read. Please upload {IMAGE_KINDS}.",
                           title="Input problem") from None
