"""The curation settings: ``talkverse/configs/curation.yaml`` (every threshold, one place), merged with a user YAML
of the same layout and ``key=value`` overrides. Unknown keys are an error (one line)."""

from __future__ import annotations

from pathlib import Path

from .records import CurationError


def default_config_path() -> Path:
    from ..configs import preset_dir

    return preset_dir() / "curation.yaml"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None):
    """An omegaconf DictConfig (struct mode: a misspelt key raises)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.load(default_config_path())
    OmegaConf.set_struct(cfg, True)
    try:
        if path is not None:
            if not Path(path).is_file():
                raise CurationError(f"--config {path}: not found")
            cfg = OmegaConf.merge(cfg, OmegaConf.load(path))
        if overrides:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    except OmegaConfBaseException as e:
        raise CurationError(f"curation settings: {str(e).splitlines()[0]}") from None
    return cfg
