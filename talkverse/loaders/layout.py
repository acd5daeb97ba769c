"""What a checkpoint folder is, from its files alone (no torch: the CLIs check their flags against it before any
model loads)."""

from __future__ import annotations

import json
from pathlib import Path


def is_talkverse_folder(path: str | Path) -> bool:
    """A folder written by ``TalkVersePipeline.save_pretrained`` (its model_index.json names the class)."""
    index = Path(path) / "model_index.json"
    if not index.is_file():
        return False
    try:
        return json.loads(index.read_text()).get("_class_name") == "TalkVersePipeline"
    except (OSError, ValueError):
        return False


def saved_transformer_config(path: str | Path) -> dict | None:
    """The transformer config of a saved TalkVersePipeline folder (its ``transformer/config.json``), else None."""
    root = Path(path)
    if not is_talkverse_folder(root):
        return None
    cfg = json.loads((root / "transformer" / "config.json").read_text())
    return {k: v for k, v in cfg.items() if not k.startswith("_")}
