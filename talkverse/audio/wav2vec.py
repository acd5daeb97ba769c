"""wav2vec2 hidden states for the S2V audio path (architecture.md §5, inference.md §4).

All L+1 hidden states of ``Wav2Vec2Model`` (fp32, eval, ``output_hidden_states=True``, no attention mask), with the
transformers >= 5 fix: the last entry is ``last_hidden_state`` (= ``encoder.layer_norm`` of the raw last-layer output),
which is what transformers 4.49-4.51.3 (the reference's pin) returned as the last hidden state.

Memory (measured on CPU, fp32, sdpa, a random full-size xlsr-53 config): peak grows ~22 MB per second of audio
(0.20 GB at 10 s, 0.65 GB at 30 s, 1.33 GB at 60 s), so one pass over 10 min needs ~13 GB (the 25 stacked states alone
are 3.1 GB). Chunking bounds the model's share; it is an approximation, not exact: the conv front end (entry 0) matches
one pass to float rounding, but every encoder layer sees a different attention context, so the chunked states differ
everywhere (not only near chunk borders): 1-3 % relative on the random tiny fixture model with 2-4 s overlap.
Use one pass (the default) whenever it fits.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .bucketing import HOP, RECEPTIVE_FIELD, bucket_clips, decimate_25fps, num_frames_50hz
from .io import SAMPLE_RATE

FRAMES_PER_SECOND = SAMPLE_RATE // HOP  # 50
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


def fixed_hidden_states(outputs) -> torch.Tensor:
    """[L+1, B, T, C] -> stacked hidden states with the last one replaced by ``last_hidden_state`` (the LN fix)."""
    hs = list(outputs.hidden_states)
    hs[-1] = outputs.last_hidden_state
    return torch.stack(hs)


class Wav2Vec2Features:
    """Waveform (16 kHz mono) -> wav2vec2 hidden states [L+1, T50, C] -> 25 fps features -> per-clip buckets."""

    def __init__(self, model, feature_extractor, device: str | torch.device = "cpu"):
        self.model = model.to(device=device, dtype=torch.float32).eval()
        self.feature_extractor = feature_extractor
        self.device = torch.device(device)

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "cpu") -> "Wav2Vec2Features":
        """Load ``Wav2Vec2Model`` + ``Wav2Vec2FeatureExtractor`` from a local folder (a CTC checkpoint is fine)."""
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
        return cls(model, fe, device)

    @property
    def num_layers(self) -> int:
        return self.model.config.num_hidden_layers

    # -- steps --------------------------------------------------------------------------------------------------
    def normalize(self, waveform: np.ndarray) -> torch.Tensor:
        """The processor's input values [N] float32 (zero mean / unit variance over the whole input if configured)."""
        out = self.feature_extractor(np.asarray(waveform, dtype=np.float32), sampling_rate=SAMPLE_RATE,
                                     return_tensors="pt")
        return out.input_values[0].to(torch.float32)

    @torch.no_grad()
    def _forward(self, input_values: torch.Tensor):
        if input_values.shape[-1] < RECEPTIVE_FIELD:
            raise ValueError(f"audio too short for wav2vec2: {input_values.shape[-1]} samples < {RECEPTIVE_FIELD}")
        return self.model(input_values[None].to(self.device), output_hidden_states=True)

    def naive_hidden_states(self, input_values: torch.Tensor) -> torch.Tensor:
        """What transformers >= 5 returns without the fix (last entry = raw last-layer output). For tests only."""
        return torch.cat(self._forward(input_values).hidden_states).float().cpu()

    def hidden_states(self, input_values: torch.Tensor, chunk_seconds: float | None = None,
                      overlap_seconds: float = 2.0) -> torch.Tensor:
        """[L+1, T50, C] fp32 on CPU. One forward over the whole input, or overlapping chunks if ``chunk_seconds``."""
        n = input_values.shape[-1]
        if chunk_seconds is None or n <= int(chunk_seconds * SAMPLE_RATE) + 2 * int(overlap_seconds * SAMPLE_RATE):
            return fixed_hidden_states(self._forward(input_values))[:, 0].float().cpu()
        return self._chunked(input_values, chunk_seconds, overlap_seconds)

    def _chunked(self, input_values: torch.Tensor, chunk_seconds: float, overlap_seconds: float) -> torch.Tensor:
        """Frame-aligned chunks: each computes its core frames [f0, f1) with ``overlap`` frames of context on both
        sides (cut at the file's ends), and keeps only the core. Samples of frame f: [320 f, 320 f + 400)."""
        n = input_values.shape[-1]
        total = num_frames_50hz(n)
        core = max(1, int(round(chunk_seconds * FRAMES_PER_SECOND)))
        ov = int(math.ceil(overlap_seconds * FRAMES_PER_SECOND))
        pieces = []
        for f0 in range(0, total, core):
            f1 = min(total, f0 + core)
            c0, c1 = max(0, f0 - ov), min(total, f1 + ov)
            seg = input_values[c0 * HOP:(c1 - 1) * HOP + RECEPTIVE_FIELD]
            hs = fixed_hidden_states(self._forward(seg))[:, 0]
            assert hs.shape[1] == c1 - c0, (hs.shape, c0, c1)
            pieces.append(hs[:, f0 - c0:f1 - c0].float().cpu())
        return torch.cat(pieces, dim=1)

    # -- whole path ---------------------------------------------------------------------------------------------
    def features_25fps(self, waveform: np.ndarray, chunk_seconds: float | None = None,
                       overlap_seconds: float = 2.0) -> torch.Tensor:
        """[L+1, ceil(T50/2), C] fp32."""
        iv = self.normalize(waveform)
        return decimate_25fps(self.hidden_states(iv, chunk_seconds, overlap_seconds))

    def __call__(self, waveform: np.ndarray, frames_per_clip: int, num_clips: int | None = None,
                 chunk_seconds: float | None = None) -> torch.Tensor:
        """[1, L+1, C, num_clips * frames_per_clip] fp32 (``num_clips`` defaults to the reference's floor(A/N)+1)."""
        return bucket_clips(self.features_25fps(waveform, chunk_seconds), frames_per_clip, num_clips)


AudioFeatureExtractor = Wav2Vec2Features
