"""Tiny umT5 encoder parity (``t5/``): strict loading from .pth and .safetensors, trimmed contexts, the zero-padded
DiT input, and the raw encoder output on the real positions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors.torch import load_file

from ..loaders.text_encoder import load_original_text_encoder
from ..models.text_encoder import pad_context
from .common import CaseResult, register

TOL = 1e-5  # relative, fp32
ZERO_TOL = 0.0  # padded rows must be exact zeros


@register("t5", "t5", "config.json")
def run(fixtures: Path, folder: Path) -> Iterator[CaseResult]:
    cfg = json.loads((folder / "config.json").read_text())
    config, text_len = cfg["transformers_equivalent_config"], cfg["text_len"]
    data = load_file(folder / "expected.safetensors")
    ids, mask = data["input_ids"], data["attention_mask"]
    for ext in ("pth", "safetensors"):
        res = CaseResult(f"t5/{ext}")
        try:
            te = load_original_text_encoder(folder / f"t5_tiny.{ext}", config=config, text_len=text_len,
                                           torch_dtype=torch.float32)
            ctx = te.encode_ids(ids, mask)
            res.check_exact("seq_lens", torch.tensor([c.shape[0] for c in ctx]), data["seq_lens"])
            for i, c in enumerate(ctx):
                res.check(f"context_{i}", c, data[f"context_{i}"], TOL)
            padded = pad_context(ctx, text_len)
            res.check("context_padded", padded, data["context_padded"], TOL)
            pad_rows = (mask == 0)
            res.check_abs("context_padded[pad rows]", padded[pad_rows], data["context_padded"][pad_rows], ZERO_TOL)
            with torch.no_grad():
                raw = te.model(input_ids=ids, attention_mask=mask).last_hidden_state
            real = mask.bool()
            res.check("untrimmed[real positions]", raw[real], data["encoder_output_untrimmed"][real], TOL)
            batch1 = [te.encode_ids(ids[i : i + 1], mask[i : i + 1])[0] for i in range(ids.shape[0])]
            for i, c in enumerate(batch1):
                res.check(f"context_{i} (batch of 1)", c, data[f"context_{i}"], TOL)
        except Exception as e:
            res.error = f"{type(e).__name__}: {e}"
        yield res
