"""umT5-XXL text encoder: Wan's original checkpoint or a Diffusers ``text_encoder/`` folder, as
``transformers.UMT5EncoderModel``, plus the reference's prompt cleaning, tokenisation and trimming.

``TextEncoder(prompts)`` returns one ``[L_i, dim]`` tensor per prompt, trimmed to its real token count (EOS included).
The DiT receives them zero-padded back to ``text_len`` (:func:`pad_context`); the encoder output at padded positions is
not zero and must never be used.
"""

from __future__ import annotations

import gc
import html
import re
from pathlib import Path
from typing import Any

import torch
from transformers import UMT5Config, UMT5EncoderModel

from ..configs import load_config
from ..convert.errors import CheckpointError, key_report
from ..convert.state_dict_io import LazyStateDict
from ..convert.t5_keys import TIED_KEY, original_to_transformers

DEFAULT_CONFIG = "umt5_xxl"
TEXT_LEN = 512
# Any one of these makes a folder loadable by AutoTokenizer (tokenizer.json needs no sentencepiece).
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer.model")


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


# ---------------------------------------------------------------------------------------------- loading
def t5_config(config: str | Path | dict[str, Any] | None = None) -> UMT5Config:
    """A preset name / YAML (its ``t5:`` section) or a dict of UMT5Config arguments."""
    if config is None:
        config = DEFAULT_CONFIG
    if isinstance(config, UMT5Config):
        return config
    if not isinstance(config, dict):
        cfg = load_config(str(config))
        config = cfg.get("t5", cfg)
    config = {k: v for k, v in config.items() if k != "model"}
    config.setdefault("is_encoder_decoder", False)
    return UMT5Config(**config)


def load_tokenizer(path: str | Path):
    """AutoTokenizer from a local folder (no hub access); a clear error when the folder lacks tokenizer files."""
    p = Path(path)
    if p.is_dir() and (p / "tokenizer").is_dir() and not any((p / f).exists() for f in TOKENIZER_FILES):
        p = p / "tokenizer"  # a Diffusers pipeline folder
    if not p.is_dir():
        raise FileNotFoundError(f"tokenizer folder not found: {p}")
    if not any((p / f).exists() for f in TOKENIZER_FILES):
        present = sorted(q.name for q in p.iterdir())
        raise FileNotFoundError(
            f"tokenizer folder {p} has none of the tokenizer files {', '.join(TOKENIZER_FILES)} "
            f"(also expected: tokenizer_config.json); it holds: {present or 'nothing'}. "
            "Pass the google/umt5-xxl folder of the Wan2.2 checkpoint or a Diffusers tokenizer/ folder.")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except Exception as e:
        raise FileNotFoundError(f"cannot load the tokenizer from {p}: {type(e).__name__}: {e}") from e


def load_original_t5(path: str | Path, config=None, torch_dtype: torch.dtype = torch.bfloat16,
                     device: str | torch.device = "cpu") -> UMT5EncoderModel:
    """``models_t5_umt5-xxl-enc-bf16.pth`` (or .safetensors with the same keys) into UMT5EncoderModel, strictly:
    the only key allowed to be missing is the tied ``encoder.embed_tokens.weight``."""
    sd = LazyStateDict(path)
    cfg = t5_config(config)
    with torch.device("meta"):
        model = UMT5EncoderModel(cfg)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    mapped: dict[str, str] = {}
    for k in sd:
        new = original_to_transformers(k)
        if new in mapped:
            raise CheckpointError(f"{path}: keys {mapped[new]!r} and {k!r} both map to {new!r}")
        mapped[new] = k
    missing = [k for k in expected if k not in mapped and k != TIED_KEY]
    unexpected = [mapped[k] for k in mapped if k not in expected]
    mismatched = [(k, sd.shape(mapped[k]), expected[k]) for k in mapped
                  if k in expected and tuple(sd.shape(mapped[k])) != expected[k]]
    if "shared.weight" not in mapped and TIED_KEY in mapped:  # embeddings stored only under the tied name
        mapped["shared.weight"] = mapped.pop(TIED_KEY)
        missing = [k for k in missing if k != "shared.weight"]
    report = key_report(f"{path} does not match the umT5 encoder (UMT5EncoderModel) layout:", missing, unexpected,
                        mismatched)
    if report:
        if not any(k.startswith(("blocks.", "encoder.block.")) for k in sd):
            report += "\n  (no blocks.* keys at all: this is not a umT5 encoder checkpoint)"
        raise CheckpointError(report)
    state = {k: sd.load(src, dtype=torch_dtype, device=device) for k, src in mapped.items() if k != TIED_KEY}
    if TIED_KEY in mapped and not torch.equal(sd.load(mapped[TIED_KEY]), sd.load(mapped["shared.weight"])):
        raise CheckpointError(f"{path}: {TIED_KEY} differs from the shared embedding; they must be tied")
    state[TIED_KEY] = state["shared.weight"]
    model.load_state_dict(state, strict=True, assign=True)
    model.encoder.embed_tokens.weight = model.shared.weight  # keep them one tensor
    return model.to(device).eval().requires_grad_(False)


class TextEncoder:
    """Prompt -> list of trimmed umT5 contexts. ``device="cpu"`` is the reference's ``--t5_cpu``."""

    def __init__(self, model: UMT5EncoderModel, tokenizer=None, text_len: int = TEXT_LEN):
        self.model = model
        self.tokenizer = tokenizer
        self.text_len = text_len

    @classmethod
    def from_original(cls, checkpoint: str | Path, tokenizer: str | Path | None = None, config=None,
                      text_len: int = TEXT_LEN, torch_dtype: torch.dtype = torch.bfloat16,
                      device: str | torch.device = "cpu") -> TextEncoder:
        tok = load_tokenizer(tokenizer) if tokenizer is not None else None
        return cls(load_original_t5(checkpoint, config, torch_dtype, device), tok, text_len)

    @classmethod
    def from_diffusers(cls, folder: str | Path, tokenizer: str | Path | None = None, text_len: int = TEXT_LEN,
                       torch_dtype: torch.dtype = torch.bfloat16, device: str | torch.device = "cpu") -> TextEncoder:
        """A Diffusers pipeline folder (uses text_encoder/ and tokenizer/) or a text_encoder/ folder itself."""
        p = Path(folder)
        root = p if (p / "text_encoder" / "config.json").exists() else None
        enc = p / "text_encoder" if root is not None else p
        if not (enc / "config.json").exists():
            raise CheckpointError(f"{folder} is neither a Diffusers pipeline folder with text_encoder/ nor a "
                                  "text_encoder/ folder (no config.json)")
        model = UMT5EncoderModel.from_pretrained(str(enc), dtype=torch_dtype, local_files_only=True)
        if tokenizer is None and root is not None and (root / "tokenizer").is_dir():
            tokenizer = root / "tokenizer"
        tok = load_tokenizer(tokenizer) if tokenizer is not None else None
        return cls(model.to(device).eval().requires_grad_(False), tok, text_len)

    @classmethod
    def load(cls, path: str | Path, tokenizer: str | Path | None = None, **kw) -> TextEncoder:
        p = Path(path)
        if p.is_dir() and ((p / "config.json").exists() or (p / "text_encoder" / "config.json").exists()):
            return cls.from_diffusers(p, tokenizer, **kw)
        return cls.from_original(p, tokenizer, **kw)

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
