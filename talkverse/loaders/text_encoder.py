"""Load umT5-XXL: Wan's original ``models_t5_umt5-xxl-enc-bf16.pth`` or a Diffusers ``text_encoder/`` folder, as
``transformers.UMT5EncoderModel``, with its tokenizer (checkpoints.md §5). Wrapped in
:class:`talkverse.models.text_encoder.TextEncoder`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import UMT5Config, UMT5EncoderModel

from ..configs import load_config
from ..convert.errors import CheckpointError, key_report, map_keys
from ..convert.state_dict_io import LazyStateDict
from ..convert.t5_keys import TIED_KEY, original_to_transformers
from ..models.text_encoder import TEXT_LEN, TextEncoder

DEFAULT_CONFIG = "umt5_xxl"
# Any one of these makes a folder loadable by AutoTokenizer (tokenizer.json needs no sentencepiece).
TOKENIZER_FILES = ("tokenizer.json", "spiece.model", "tokenizer.model")


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
    mapped, (missing, unexpected, mismatched) = map_keys(path, sd, original_to_transformers, expected, sd.shape)
    missing = [k for k in missing if k != TIED_KEY]
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


def load_original_text_encoder(checkpoint: str | Path, tokenizer: str | Path | None = None, config=None,
                               text_len: int = TEXT_LEN, torch_dtype: torch.dtype = torch.bfloat16,
                               device: str | torch.device = "cpu") -> TextEncoder:
    """Wan's ``.pth`` (or .safetensors) umT5 plus a tokenizer folder (``google/umt5-xxl``)."""
    tok = load_tokenizer(tokenizer) if tokenizer is not None else None
    return TextEncoder(load_original_t5(checkpoint, config, torch_dtype, device), tok, text_len)


def load_diffusers_text_encoder(folder: str | Path, tokenizer: str | Path | None = None, text_len: int = TEXT_LEN,
                                torch_dtype: torch.dtype = torch.bfloat16,
                                device: str | torch.device = "cpu") -> TextEncoder:
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
    return TextEncoder(model.to(device).eval().requires_grad_(False), tok, text_len)


def load_text_encoder(path: str | Path, tokenizer: str | Path | None = None, **kw) -> TextEncoder:
    """Either layout: a folder with config.json (or text_encoder/config.json) is Diffusers, anything else original."""
    p = Path(path)
    if p.is_dir() and ((p / "config.json").exists() or (p / "text_encoder" / "config.json").exists()):
        return load_diffusers_text_encoder(p, tokenizer, **kw)
    return load_original_text_encoder(p, tokenizer, **kw)
