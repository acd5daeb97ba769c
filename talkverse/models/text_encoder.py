"""umT5-XXL text encoding (``transformers.UMT5EncoderModel``): the reference's prompt cleaning, tokenisation and
trimming (loading: ``talkverse.loaders.text_encoder``).

``TextEncoder(prompts)`` returns one ``[L_i, dim]`` tensor per prompt, trimmed to its real token count (EOS included).
The DiT receives them zero-padded back to ``text_len`` (:func:`pad_context`); the encoder output at padded positions is
not zero and must never be used.
"""

from __future__ import annotations

import gc
import html
import re

import torch

TEXT_LEN = 512


# ---------------------------------------------------------------------------------------------- prompts
def clean_prompt(text: str) -> str:
    """ftfy.fix_text (when ftfy is installed), html.unescape twice, collapse whitespace, strip."""
    try:
        import ftfy

        text = ftfy.fix_text(text)
    except ImportError:
        pass
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def pad_context(context: list[torch.Tensor], text_len: int = TEXT_LEN) -> torch.Tensor:
    """Zero-pad each [L_i, dim] to [text_len, dim] and stack: [B, text_len, dim] (longer ones are an error)."""
    if not context:
        raise ValueError("pad_context needs at least one tensor")
    dim = context[0].shape[-1]
    out = context[0].new_zeros(len(context), text_len, dim)
    for i, c in enumerate(context):
        if c.dim() != 2 or c.shape[-1] != dim:
            raise ValueError(f"context {i} has shape {tuple(c.shape)}; expected [L, {dim}]")
        if c.shape[0] > text_len:
            raise ValueError(f"context {i} has {c.shape[0]} tokens > text_len {text_len}")
        out[i, : c.shape[0]] = c
    return out


class TextEncoder:
    """Prompt -> list of trimmed umT5 contexts. ``device="cpu"`` is the reference's ``--t5_cpu``."""

    def __init__(self, model, tokenizer=None, text_len: int = TEXT_LEN):
        self.model = model
        self.tokenizer = tokenizer
        self.text_len = text_len

    # ------------------------------------------------------------------ properties
    @property
    def device(self) -> torch.device:
        self._require_model()
        return next(self.model.parameters()).device

    @property
    def dim(self) -> int:
        self._require_model()
        return self.model.config.d_model

    def _require_model(self) -> None:
        if self.model is None:
            raise RuntimeError("the text encoder was freed (TextEncoder.free()); load it again to encode")

    def to(self, device) -> TextEncoder:
        self._require_model()
        self.model.to(device)
        return self

    def free(self) -> None:
        """Drop the model (and empty the CUDA cache) once the prompts are encoded."""
        was_cuda = self.model is not None and self.device.type == "cuda"
        self.model = None
        gc.collect()
        if was_cuda:
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------ encoding
    def tokenize(self, prompts: str | list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """(input_ids, attention_mask), both int64 [B, text_len]; prompts cleaned first, EOS appended."""
        if self.tokenizer is None:
            raise RuntimeError("no tokenizer loaded; pass tokenizer=<folder> or use encode_ids")
        if isinstance(prompts, str):
            prompts = [prompts]
        out = self.tokenizer([clean_prompt(p) for p in prompts], padding="max_length", truncation=True,
                             max_length=self.text_len, add_special_tokens=True, return_attention_mask=True,
                             return_tensors="pt")
        return out["input_ids"].long(), out["attention_mask"].long()

    @torch.no_grad()
    def encode_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   output_device: str | torch.device | None = None) -> list[torch.Tensor]:
        """Encoder output trimmed to each prompt's real length: a list of [L_i, dim]."""
        self._require_model()
        dev = self.device
        hidden = self.model(input_ids=input_ids.to(dev), attention_mask=attention_mask.to(dev)).last_hidden_state
        lens = attention_mask.sum(dim=1).tolist()
        out_dev = output_device if output_device is not None else dev
        return [hidden[i, : int(n)].to(out_dev) for i, n in enumerate(lens)]

    def encode(self, prompts: str | list[str], output_device: str | torch.device | None = None) -> list[torch.Tensor]:
        ids, mask = self.tokenize(prompts)
        return self.encode_ids(ids, mask, output_device)

    __call__ = encode
