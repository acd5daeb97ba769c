"""The TalkVerse checkpoint: S2V modules + retrained time/head tensors + LoRA pairs, in original Wan key names.

Layout (checkpoints.md §3): keys with no prefix or a ``model.`` prefix; full tensors that override the base
(``time_embedding.*``, ``time_projection.*``, ``head.*``), all new-module tensors, and LoRA pairs
``blocks.{i}.{self_attn,cross_attn}.{q,k,o}.lora_{A,B}.weight`` / ``blocks.{i}.ffn.{0,2}.lora_{A,B}.weight``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import torch

from .errors import CheckpointError, format_keys
from .wan_keys import original_to_diffusers

logger = logging.getLogger(__name__)

LORA_TARGETS_ORIGINAL = ("self_attn.q", "self_attn.k", "self_attn.o", "cross_attn.q", "cross_attn.k", "cross_attn.o",
                         "ffn.0", "ffn.2")
# peft target regex on our (diffusers) module names: q/k/o of both attentions and both FFN linears, never v.
LORA_TARGET_REGEX = r"blocks\.\d+\.(attn1|attn2)\.(to_q|to_k|to_out\.0)|blocks\.\d+\.ffn\.net\.(0\.proj|2)"
TIME_HEAD_ORIGINAL = ("time_embedding.", "time_projection.", "head.")
# The same tensors in our (diffusers) naming.
TIME_HEAD_KEYS_OURS = ("condition_embedder.time_embedder.", "condition_embedder.time_proj.", "scale_shift_table",
                       "proj_out.")
_LORA_RE = re.compile(r"^(?P<module>blocks\.\d+\.(?:self_attn|cross_attn|ffn)\.[a-z0-9]+)\.lora_(?P<ab>[AB])\.weight$")
DEFAULT_LORA_ALPHA = 128.0


@dataclass
class TalkVerseParts:
    """A TalkVerse file split by role. All keys in *our* (diffusers) naming; tensors are loaded lazily by name."""

    prefix: str
    overrides: dict[str, str] = field(default_factory=dict)  # our key -> file key (time/head + new modules)
    lora: dict[str, tuple[str, str]] = field(default_factory=dict)  # our Linear module path -> (A key, B key)
    metadata: dict[str, str] = field(default_factory=dict)


def partition(sd, model_keys: set[str], new_module_keys: set[str], path: str = "checkpoint") -> TalkVerseParts:
    """Classify every key of a TalkVerse file; unknown keys are an error that lists them."""
    keys = list(sd.keys())
    prefix = "model." if keys and all(k.startswith("model.") for k in keys) else ""
    parts = TalkVerseParts(prefix=prefix, metadata=dict(getattr(sd, "metadata", {}) or {}))
    unknown, pairs = [], {}
    for fk in keys:
        k = fk[len(prefix):]
        if k.endswith(".base.weight"):  # a full dump of the reference training wrapper: the frozen copy
            k = k[: -len(".base.weight")] + ".weight"
        m = _LORA_RE.match(k)
        if m:
            module = m.group("module")
            if module.split(".", 2)[2] not in LORA_TARGETS_ORIGINAL:
                unknown.append(fk)
                continue
            pairs.setdefault(module, {})[m.group("ab")] = fk
            continue
        ours = original_to_diffusers(k)
        if ours is None or ours not in model_keys:
            unknown.append(fk)
        else:
            parts.overrides[ours] = fk
    if unknown:
        raise CheckpointError(
            f"{path}: {len(unknown)} keys are not TalkVerse S2V keys for this model config: {format_keys(unknown)}")
    half = [m for m, ab in pairs.items() if len(ab) != 2]
    if half:
        raise CheckpointError(f"{path}: LoRA pairs without their A or B half: {format_keys(half)}")
    for module, ab in pairs.items():
        ours_module = original_to_diffusers(module + ".weight")[: -len(".weight")]
        parts.lora[ours_module] = (ab["A"], ab["B"])

    missing_new = sorted(new_module_keys - set(parts.overrides))
    if missing_new:
        hint = (" This looks like a base (Wan2.2-TI2V-5B) checkpoint, not a TalkVerse file."
                if len(missing_new) == len(new_module_keys) else "")
        raise CheckpointError(
            f"{path}: missing {len(missing_new)} of the {len(new_module_keys)} S2V module keys: "
            f"{format_keys(missing_new)}.{hint}")
    return parts


def lora_delta(a: torch.Tensor, b: torch.Tensor, scale: float) -> torch.Tensor:
    """delta = dt( dt(B @ A) * scale ) in the checkpoint dtype dt, as the reference merges (bit-exact).

    The matmul itself accumulates in fp32 and rounds once to dt.
    """
    dt = a.dtype
    delta = (b.float() @ a.float()).to(dt)
    return (delta * scale).to(dt)
