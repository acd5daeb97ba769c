"""The shipped demo: the tiny demo model (``talkverse-tiny-demo/``, a saved TalkVersePipeline trained by
``scripts/train_demo.sh``), its portrait ``face.png`` and 4 s of speech-like audio ``speech.wav``; package data,
found through ``importlib.resources`` wherever the package is installed (docs/demo.md)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def demo_dir() -> Path:
    return Path(str(resources.files(__name__)))


def demo_model_dir() -> Path:
    return demo_dir() / "talkverse-tiny-demo"


def demo_face() -> Path:
    return demo_dir() / "face.png"


def demo_speech() -> Path:
    return demo_dir() / "speech.wav"
