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


def folder_family(path: str | Path) -> str | None:
    """"s2v-14B" for a Wan2.2-S2V-14B folder (a saved pipeline whose DiT has ``cond_dim``, a config.json with
    ``cond_dim`` or ``model_type: s2v`` at 16 channels, or a ``Wan2.1_VAE.pth``), "s2v-5B" for any other folder with a
    DiT config, None when nothing says (from the config files alone)."""
    root = Path(path)
    saved = saved_transformer_config(root) if is_talkverse_folder(root) else None
    if saved is not None:
        return "s2v-14B" if saved.get("cond_dim") else "s2v-5B"
    for cfg_file in (root / "transformer" / "config.json", root / "config.json"):
        if cfg_file.is_file():
            try:
                cfg = json.loads(cfg_file.read_text())
            except (OSError, ValueError):
                return None
            s2v = cfg.get("cond_dim") or cfg.get("in_dim", cfg.get("in_channels")) == 16
            return "s2v-14B" if s2v else "s2v-5B"
    return "s2v-14B" if (root / "Wan2.1_VAE.pth").is_file() else None
