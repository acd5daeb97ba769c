"""Load wav2vec2 (``wav2vec2-large-xlsr-53-english``) from a local ``save_pretrained`` folder as
:class:`talkverse.models.wav2vec.Wav2Vec2Features` (fp32, eval; a CTC checkpoint is fine: its head is dropped)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..models.wav2vec import Wav2Vec2Features

WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")


class AudioModelError(ValueError):
    """The wav2vec2 folder is missing or incomplete. The message names the folder and what is missing."""


def check_model_folder(folder: str | Path) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioModelError(f"wav2vec2 folder {folder}: not found (expected a local save_pretrained folder)")
    missing = [f for f in ("config.json", "preprocessor_config.json") if not (folder / f).is_file()]
    if not any((folder / w).is_file() for w in WEIGHT_FILES):
        missing.append(" or ".join(WEIGHT_FILES[::2]))
    if missing:
        raise AudioModelError(f"wav2vec2 folder {folder}: missing {', '.join(missing)}")
    return folder


def load_wav2vec(folder: str | Path, device: str | torch.device = "cpu") -> Wav2Vec2Features:
    """``Wav2Vec2Model`` + ``Wav2Vec2FeatureExtractor`` from ``folder``, fp32 on ``device``; never the hub."""
    from transformers import Wav2Vec2FeatureExtractor, Wav2Vec2Model
    from transformers.utils import logging as hf_logging

    folder = check_model_folder(folder)
    fe = Wav2Vec2FeatureExtractor.from_pretrained(folder, local_files_only=True)
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
