"""Load wav2vec2 (``wav2vec2-large-xlsr-53-english``) from a local ``save_pretrained`` folder, or from a saved
TalkVersePipeline folder (its ``audio_encoder/`` and ``feature_extractor/``), as
:class:`talkverse.models.wav2vec.Wav2Vec2Features` (fp32, eval; a CTC checkpoint is fine: its head is dropped)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.wav2vec import Wav2Vec2Features
from .layout import is_talkverse_folder

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class AudioModelError(ValueError):
    """The wav2vec2 folder is missing or incomplete. The message names the folder and what is missing."""


def check_model_folder(folder: str | Path) -> tuple[Path, Path]:
    """(the model's folder, the feature extractor's folder) of ``folder``; ``AudioModelError`` if either is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioModelError(f"wav2vec2 folder {folder}: not found (expected a local save_pretrained folder)")
    model, extractor = ((folder / "audio_encoder", folder / "feature_extractor") if is_talkverse_folder(folder)
                        else (folder, folder))
    missing = [str((d / f).relative_to(folder)) for d, f in ((model, "config.json"),
                                                           (extractor, "preprocessor_config.json"))
               if not (d / f).is_file()]
    if not any((model / w).is_file() for w in WEIGHT_FILES):
        missing.append(" or ".join(str((model / w).relative_to(folder)) for w in WEIGHT_FILES[::2]))
    if missing:
        raise AudioModelError(f"wav2vec2 folder {folder}: missing {', '.join(missing)}")
    return model, extractor


def load_wav2vec(folder: str | Path, device: str | torch.device = "cpu") -> Wav2Vec2Features:
    """``Wav2Vec2Model`` + ``Wav2Vec2FeatureExtractor`` from ``folder``, fp32 on ``device``; never the hub."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model
    from transformers.utils import logging as hf_logging

    folder, extractor = check_model_folder(folder)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(extractor, local_files_only=True)
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # the unused CTC head (lm_head.*) is reported as unexpected
    hf_logging.disable_progress_bar()
    try:
        model = Wav2Vec2Model.from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return Wav2Vec2Features(model.to(device=device, dtype=torch.float32).eval(), fe)
