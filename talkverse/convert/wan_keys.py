"""Original Wan2.2 DiT key names <-> our (diffusers) names.

Only base-module keys are renamed; the S2V modules keep their reference names verbatim. The map works on module
paths, so parameter suffixes (``.weight``, ``.bias``, ``.lora_A.weight``, ...) pass through unchanged.
Note the swap: original ``norm3`` (affine, before cross-attention) is diffusers ``norm2``.
"""

from __future__ import annotations

import re

# The S2V modules the TI2V base lacks, in the order the loader initialises them (their spec init draws from the RNG).
# ``cond_encoder`` (S2V-14B's pose branch, s2v14b.md §2) is the fifth; models without it simply lack the prefix.
NEW_MODULES = ("casual_audio_encoder", "audio_injector", "trainable_cond_mask", "frame_packer", "cond_encoder")
NEW_MODULE_PREFIXES = tuple(m + "." for m in NEW_MODULES)

# (original module path, diffusers module path); ``{i}`` is a block index.
_MODULE_MAP = [
    ("patch_embedding", "patch_embedding"),
    ("text_embedding.0", "condition_embedder.text_embedder.linear_1"),
    ("text_embedding.2", "condition_embedder.text_embedder.linear_2"),
    ("time_embedding.0", "condition_embedder.time_embedder.linear_1"),
    ("time_embedding.2", "condition_embedder.time_embedder.linear_2"),
    ("time_projection.1", "condition_embedder.time_proj"),
    ("head.head", "proj_out"),
    ("blocks.{i}.self_attn.q", "blocks.{i}.attn1.to_q"),
    ("blocks.{i}.self_attn.k", "blocks.{i}.attn1.to_k"),
    ("blocks.{i}.self_attn.v", "blocks.{i}.attn1.to_v"),
    ("blocks.{i}.self_attn.o", "blocks.{i}.attn1.to_out.0"),
    ("blocks.{i}.self_attn.norm_q", "blocks.{i}.attn1.norm_q"),
    ("blocks.{i}.self_attn.norm_k", "blocks.{i}.attn1.norm_k"),
    ("blocks.{i}.cross_attn.q", "blocks.{i}.attn2.to_q"),
    ("blocks.{i}.cross_attn.k", "blocks.{i}.attn2.to_k"),
    ("blocks.{i}.cross_attn.v", "blocks.{i}.attn2.to_v"),
    ("blocks.{i}.cross_attn.o", "blocks.{i}.attn2.to_out.0"),
    ("blocks.{i}.cross_attn.norm_q", "blocks.{i}.attn2.norm_q"),
    ("blocks.{i}.cross_attn.norm_k", "blocks.{i}.attn2.norm_k"),
    ("blocks.{i}.norm3", "blocks.{i}.norm2"),
    ("blocks.{i}.norm2", "blocks.{i}.norm3"),
    ("blocks.{i}.ffn.0", "blocks.{i}.ffn.net.0.proj"),
    ("blocks.{i}.ffn.2", "blocks.{i}.ffn.net.2"),
]
# Parameters that are whole keys (no suffix).
_PARAM_MAP = [
    ("head.modulation", "scale_shift_table"),
    ("blocks.{i}.modulation", "blocks.{i}.scale_shift_table"),
]


def _compile(pairs, src_idx: int, whole: bool):
    out = []
    for pair in pairs:
        src, dst = pair[src_idx], pair[1 - src_idx]
        pat = re.escape(src).replace(re.escape("{i}"), r"(?P<i>\d+)")
        out.append((re.compile("^" + pat + ("$" if whole else r"(?P<rest>\..+)$")), dst))
    return out


_TO_DIFFUSERS = _compile(_PARAM_MAP, 0, True) + _compile(_MODULE_MAP, 0, False)
_TO_ORIGINAL = _compile(_PARAM_MAP, 1, True) + _compile(_MODULE_MAP, 1, False)


def is_new_module_key(key: str) -> bool:
    return key.startswith(NEW_MODULE_PREFIXES)


def _convert(key: str, table) -> str | None:
    if is_new_module_key(key):
        return key
    for pat, dst in table:
        m = pat.match(key)
        if m:
            out = dst.replace("{i}", m.group("i")) if "i" in m.groupdict() else dst
            return out + (m.groupdict().get("rest") or "")
    return None


def original_to_diffusers(key: str) -> str | None:
    """Original Wan key -> our key; None if the key is not a DiT key."""
    return _convert(key, _TO_DIFFUSERS)


def diffusers_to_original(key: str) -> str | None:
    """Our key -> original Wan key; None if unknown."""
    return _convert(key, _TO_ORIGINAL)
