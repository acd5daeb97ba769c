"""The components of a TalkVersePipeline, built once: wrappers around the encoders and the VAE, where the DiT runs,
and moving encoders on and off the device (inference.md §12, performance.md §5)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Callable

import torch

from ..models.text_encoder import TextEncoder
from ..models.vae import TalkVerseVAE
from ..models.wav2vec import Wav2Vec2Features


class ComponentsMixin:
    """For a DiffusionPipeline with ``transformer``, ``vae``, ``text_encoder`` + ``tokenizer`` and ``audio_encoder`` +
    ``feature_extractor`` components and the ``offload_encoders`` flag."""

    # ------------------------------------------------------------------ components, built once
    def _codec(self, name: str, make: Callable):
        """A wrapper around component ``name``, rebuilt only when that component is replaced."""
        comp = getattr(self, name)
        cached = self._codecs.get(name)
        if cached is None or cached[0] is not comp:
            cached = (comp, make(comp))
            self._codecs[name] = cached
        return cached[1]

    @property
    def vae_codec(self) -> TalkVerseVAE:
        return self._codec("vae", TalkVerseVAE)

    @property
    def text_codec(self) -> TextEncoder:
        return self._codec("text_encoder", lambda m: TextEncoder(m, self.tokenizer,
                                                                 max(self.transformer.config.text_len, 1)))

    @property
    def audio_codec(self) -> Wav2Vec2Features:
        return self._codec("audio_encoder", lambda m: Wav2Vec2Features(m, self.feature_extractor))

    @property
    def exec_device(self) -> torch.device:
        from ..perf.optimize import onload_device

        return onload_device(self.transformer)  # the group-offload onload device when the DiT is offloaded

    def enable_optimizations(self, profile: str | None = None, device: torch.device | str | None = None, **options):
        """Apply a performance profile ("default", "fast", "low_vram") and/or single options (``dtype``,
        ``attention_backend``, ``compile``, ``fp8``, ``group_offload``, ``offload_encoders``, ``t5_cpu``); see
        :mod:`talkverse.perf.optimize`."""
        from ..perf.optimize import apply_optimizations, resolve_profile

        return apply_optimizations(self, resolve_profile(profile, **options), device)

    @contextlib.contextmanager
    def _on(self, module: torch.nn.Module | None, device: torch.device):
        """Run ``module`` on ``device``; with ``offload_encoders`` move it back to the CPU afterwards."""
        if module is None:
            yield
            return
        prev = next(module.parameters()).device
        module.to(device)
        try:
            yield
        finally:
            if self.offload_encoders and prev.type == "cpu" and device.type != "cpu":
                module.to("cpu")
                if device.type == "cuda":
                    torch.cuda.empty_cache()

    def free_text_encoder(self) -> None:
        """Drop umT5 once the prompts are encoded (11.4 GB in bf16 at full size)."""
        self.text_encoder = None
        self.register_to_config(text_encoder=(None, None))
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
