"""Named configuration presets: the omegaconf YAML files of this package (``talkverse/configs/*.yaml``, package data).

``s2v_5b`` (the real model), ``s2v_demo`` (the shipped demo model), ``s2v_small`` (CPU training), ``s2v_tiny`` (the
parity-fixture size), ``vae_wan22`` and ``umt5_xxl``. Any name may also be the path of a YAML file of the same layout.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf


def preset_dir() -> Path:
    """The folder holding the presets, wherever the package is installed."""
    return Path(str(resources.files(__name__)))


def preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir().glob("*.yaml"))


def config_path(name: str) -> Path:
    """Path of a preset (``"s2v_5b"``, ``"s2v_tiny"``) or of an explicit YAML file."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    p = preset_dir() / f"{name}.yaml"
    if not p.exists():
        raise FileNotFoundError(f"unknown config preset {name!r}; known presets: {', '.join(preset_names())}")
    return p


def load_config(name: str) -> dict[str, Any]:
    """The whole preset as a plain dict."""
    return OmegaConf.to_container(OmegaConf.load(config_path(name)), resolve=True)


def model_config(name: str) -> dict[str, Any]:
    """The ``model:`` section of a preset: keyword arguments of ``TalkVerseTransformer3DModel``."""
    return load_config(name)["model"]
