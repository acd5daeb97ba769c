"""Named configuration presets (omegaconf YAML files in the repository's ``configs/`` folder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


def config_path(name: str) -> Path:
    """Path of a preset (``"s2v_5b"``, ``"s2v_tiny"``) or of an explicit YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    p = CONFIG_DIR / f"{name}.yaml"
    if not p.exists():
        known = sorted(q.stem for q in CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"unknown config preset {name!r}; known presets: {', '.join(known)}")
    return p


def load_config(name: str) -> dict[str, Any]:
    """The whole preset as a plain dict."""
    return OmegaConf.to_container(OmegaConf.load(config_path(name)), resolve=True)


def model_config(name: str) -> dict[str, Any]:
    """The ``model:`` section of a preset: keyword arguments of ``TalkVerseTransformer3DModel``."""
    return load_config(name)["model"]
