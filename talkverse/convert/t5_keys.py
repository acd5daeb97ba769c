"""Wan's umT5 encoder checkpoint (``models_t5_umt5-xxl-enc-bf16.pth``) key names -> ``transformers.UMT5EncoderModel``.

docs/checkpoints.md §5. ``token_embedding.weight`` becomes ``shared.weight``; ``encoder.embed_tokens.weight`` is tied
to it, so it is the one key the checkpoint may leave missing.
"""

from __future__ import annotations

import re

TIED_KEY = "encoder.embed_tokens.weight"

_WHOLE = {
    "token_embedding.weight": "shared.weight",
    "norm.weight": "encoder.final_layer_norm.weight",
}
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")
_IN_BLOCK = {
    "norm1.weight": "layer.0.layer_norm.weight",
    "attn.q.weight": "layer.0.SelfAttention.q.weight",
    "attn.k.weight": "layer.0.SelfAttention.k.weight",
    "attn.v.weight": "layer.0.SelfAttention.v.weight",
    "attn.o.weight": "layer.0.SelfAttention.o.weight",
    "pos_embedding.embedding.weight": "layer.0.SelfAttention.relative_attention_bias.weight",
    "norm2.weight": "layer.1.layer_norm.weight",
    "ffn.gate.0.weight": "layer.1.DenseReluDense.wi_0.weight",
    "ffn.fc1.weight": "layer.1.DenseReluDense.wi_1.weight",
    "ffn.fc2.weight": "layer.1.DenseReluDense.wo.weight",
}
_INV_WHOLE = {v: k for k, v in _WHOLE.items()}
_INV_BLOCK = re.compile(r"^encoder\.block\.(\d+)\.(.+)$")
_INV_IN_BLOCK = {v: k for k, v in _IN_BLOCK.items()}


def _rename(key: str, whole: dict, block: re.Pattern, in_block: dict, block_prefix: str) -> str:
    """One key through a whole-key table, else a per-block table (the block index kept); unknown keys unchanged."""
    if key in whole:
        return whole[key]
    m = block.match(key)
    if m and m.group(2) in in_block:
        return f"{block_prefix}.{m.group(1)}.{in_block[m.group(2)]}"
    return key


def original_to_transformers(key: str) -> str:
    """transformers name of one original key (unknown keys, and keys already in transformers form, unchanged)."""
    return _rename(key, _WHOLE, _BLOCK, _IN_BLOCK, "encoder.block")


def transformers_to_original(key: str) -> str:
    if key == TIED_KEY:
        return "token_embedding.weight"
    return _rename(key, _INV_WHOLE, _INV_BLOCK, _INV_IN_BLOCK, "blocks")
