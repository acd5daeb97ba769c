"""wav2vec2 hidden states for the S2V audio path (architecture.md §5, inference.md §4; loading:
``talkverse.loaders.wav2vec``).

All L+1 hidden states of ``Wav2Vec2Model`` (fp32, eval, ``output_hidden_states=True``, no attention mask), with the
transformers >= 5 fix: the last entry is ``last_hidden_state`` (= ``encoder.layer_norm`` of the raw last-layer output),
which is what transformers 4.49-4.51.3 (the reference's pin) returned as the last hidden state.

Long audio. ``model(..., output_hidden_states=True)`` over 10 min of speech needs ~13 GB on CPU (measured: peak grows
~22 MB per second of audio): the conv front end's first layer alone is [512, 1.9 M] fp32 per copy, and all 25 states
are kept at 50 Hz, then stacked (a second copy). Chunking the whole model is not an option: every encoder layer
attends globally, so chunked states differ from one pass everywhere (1-3 % measured with 2-4 s overlap).
``features_25fps`` therefore runs the *same* computation layer by layer (``layerwise_features_25fps``):
  * the conv front end + feature projection (local: receptive field 400 samples, hop 320, per-frame LayerNorms) in
    frame-aligned chunks, which equals one pass up to float rounding;
  * the positional conv and every encoder layer over the whole sequence at once (exact global attention);
  * each state decimated to 25 fps as soon as it exists, written into one preallocated [L+1, T25, C] tensor.
Peak memory is then the model + the 25 fps states + one layer's activations: see ``benchmarks/bench_audio_memory.py``
and docs/encoders.md for the measurement at 10 minutes.
"""

from __future__ import annotations

import numpy as np
import torch

from ..media.constants import SAMPLE_RATE
from .audio_columns import HOP, RECEPTIVE_FIELD, bucket_clips, features_at

FRAMES_PER_SECOND = SAMPLE_RATE // HOP  # 50


def fixed_hidden_states(outputs) -> torch.Tensor:
    """[L+1, B, T, C] -> stacked hidden states with the last one replaced by ``last_hidden_state`` (the LN fix)."""
    hs = list(outputs.hidden_states)
    hs[-1] = outputs.last_hidden_state
    return torch.stack(hs)


class Wav2Vec2Features:
    """Waveform (16 kHz mono) -> wav2vec2 hidden states [L+1, T50, C] -> 25 fps features -> per-clip buckets."""

    def __init__(self, model, feature_extractor):
        self.model, self.feature_extractor = model, feature_extractor  # used where they are, in their dtype

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

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

    def hidden_states(self, input_values: torch.Tensor) -> torch.Tensor:
        """[L+1, T50, C] fp32 on CPU: the model's own forward over the whole input (reference semantics)."""
        return fixed_hidden_states(self._forward(input_values))[:, 0].float().cpu()

    def _conv_geometry(self) -> tuple[int, int]:
        """(receptive field, hop) in samples of the conv front end, from the config (400, 320 for wav2vec2)."""
        rf, hop = 1, 1
        for k, s in zip(reversed(self.model.config.conv_kernel), reversed(self.model.config.conv_stride)):
            rf = (rf - 1) * s + k
        for s in self.model.config.conv_stride:
            hop *= s
        return rf, hop

    @torch.no_grad()
    def _projected_features(self, input_values: torch.Tensor, chunk_frames: int) -> torch.Tensor:
        """Conv front end + feature projection -> [1, T50, C] on the model's device.

        With per-frame normalisation (``feat_extract_norm="layer"``, as in xlsr-53) every output frame f depends only
        on samples [hop f, hop f + rf), so frame-aligned chunks reproduce one pass. GroupNorm front ends
        (``"group"``, wav2vec2-base) normalise over time and run in one piece."""
        model = self.model
        rf, hop = self._conv_geometry()
        n = input_values.shape[-1]
        total = (n - rf) // hop + 1
        if model.config.feat_extract_norm != "layer" or chunk_frames >= total:
            # whole input, trailing samples included (a GroupNorm's statistics see them)
            ext = model.feature_extractor(input_values[None].to(self.device)).transpose(1, 2)
            return model.feature_projection(ext)[0]
        pieces = []
        for f0 in range(0, total, chunk_frames):
            f1 = min(total, f0 + chunk_frames)
            seg = input_values[f0 * hop:(f1 - 1) * hop + rf].to(self.device)
            ext = model.feature_extractor(seg[None]).transpose(1, 2)
            proj, _ = model.feature_projection(ext)
            pieces.append(proj)
        return torch.cat(pieces, dim=1)

    def layerwise_features_25fps(self, input_values: torch.Tensor, chunk_seconds: float = 30.0) -> torch.Tensor:
        """[L+1, ceil(T50/2), C] fp32 on CPU; equal to ``decimate_25fps(hidden_states(x))`` at a fraction of the
        memory (module docstring). ``chunk_seconds`` only sizes the conv front-end chunks; it does not change the
        result beyond float rounding."""
        return self.layerwise_states(input_values, chunk_seconds, step=2)

    @torch.no_grad()
    def layerwise_states(self, input_values: torch.Tensor, chunk_seconds: float = 30.0, step: int = 1) -> torch.Tensor:
        """[L+1, ceil(T50/step), C] fp32 on CPU: every ``step``-th 50 Hz frame of every hidden state (with the
        final-LN fix), computed layer by layer."""
        if input_values.shape[-1] < RECEPTIVE_FIELD:
            raise ValueError(f"audio too short for wav2vec2: {input_values.shape[-1]} samples < {RECEPTIVE_FIELD}")
        model, cfg = self.model, self.model.config
        if cfg.add_adapter:
            raise NotImplementedError("wav2vec2 models with an adapter are not supported")
        h = self._projected_features(input_values, max(1, int(chunk_seconds * FRAMES_PER_SECOND)))
        enc = model.encoder
        h = h + enc.pos_conv_embed(h)
        if not cfg.do_stable_layer_norm:  # post-LN encoder: LayerNorm before the layers, none after
            h = enc.layer_norm(h)
        h = enc.dropout(h)
        num_layers = len(enc.layers)
        out = torch.empty(num_layers + 1, -(-h.shape[1] // step), h.shape[2], dtype=torch.float32)
        out[0] = h[0, ::step]
        for i, layer in enumerate(enc.layers):
            h = layer(h, attention_mask=None)
            if i == num_layers - 1 and cfg.do_stable_layer_norm:
                h = enc.layer_norm(h)  # the final-LN fix: last entry = last_hidden_state
            out[i + 1] = h[0, ::step]
        return out

    # -- whole path ---------------------------------------------------------------------------------------------
    def features_25fps(self, waveform: np.ndarray) -> torch.Tensor:
        """[L+1, ceil(T50/2), C] fp32 (layer-wise, memory-bounded; equal to the one-pass model forward)."""
        return self.layerwise_features_25fps(self.normalize(waveform))

    def features(self, waveform: np.ndarray, feature_fps: int = 25) -> torch.Tensor:
        """[L+1, A, C] fp32 at ``feature_fps``: 25 (decimated, 5B) or 30 (linearly interpolated, S2V-14B)."""
        if feature_fps == 25:
            return self.features_25fps(waveform)
        return features_at(self.layerwise_states(self.normalize(waveform)), feature_fps)

    def __call__(self, waveform: np.ndarray, frames_per_clip: int, num_clips: int | None = None) -> torch.Tensor:
        """[1, L+1, C, num_clips * frames_per_clip] fp32 (``num_clips`` defaults to the reference's floor(A/N)+1)."""
        return bucket_clips(self.features_25fps(waveform), frames_per_clip, num_clips)

