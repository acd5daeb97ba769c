"""Model setup for training: unfreeze strategies, LoRA through peft, the optional reference re-init (training.md §5).

| strategy | trainable TI2V params | new modules | LoRA |
|---|---|---|---|
| ``new_modules`` (reference ``framepack``) | none | all | no |
| ``minimal`` | time embedding, time projection, head (incl. its modulation) | all | no |
| ``lora`` (default) | as minimal | all | r=128, alpha=128 on q/k/o of both attentions + ffn.0/ffn.2 |
| ``full`` | every DiT parameter | all | no |

Counts at full size (tests/test_training.py checks them on the meta device): 705,143,065 / 772,610,521 /
1,047,861,721 / 5,704,930,777.
"""

from __future__ import annotations

import re

import torch

from ..convert.talkverse_ckpt import LORA_TARGET_REGEX, TIME_HEAD_KEYS_OURS
from ..convert.wan_keys import diffusers_to_original, is_new_module_key
from .config import STRATEGIES, canonical_strategy  # noqa: F401 - the names are the config's

ADAPTER = "default"


def is_time_head(name: str) -> bool:
    return name.startswith(TIME_HEAD_KEYS_OURS)


def add_lora(model: torch.nn.Module, rank: int = 128, alpha: float = 128.0) -> None:
    """peft LoRA (A kaiming-uniform, B zeros, dropout 0) on the 8 target Linears of every block; never v."""
    from peft import LoraConfig, inject_adapter_in_model

    cfg = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=LORA_TARGET_REGEX,
                     init_lora_weights=True)
    inject_adapter_in_model(cfg, model, adapter_name=ADAPTER)


def reinit_time_head(model: torch.nn.Module) -> None:
    """The reference's re-initialisation of the time MLPs and head (architecture.md §7): embedding Linears N(0, 0.02),
    time projection xavier, head weight and bias 0, head modulation randn / sqrt(dim)."""
    ce = model.condition_embedder
    with torch.no_grad():
        for m in ce.time_embedder.modules():
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.normal_(m.weight, std=0.02)
                torch.nn.init.zeros_(m.bias)
        for m in ce.time_proj.modules() if isinstance(ce.time_proj, torch.nn.Module) else []:
            if isinstance(m, torch.nn.Linear):
                torch.nn.init.xavier_uniform_(m.weight)
                torch.nn.init.zeros_(m.bias)
        torch.nn.init.zeros_(model.proj_out.weight)
        torch.nn.init.zeros_(model.proj_out.bias)
        dim = model.scale_shift_table.shape[-1]
        model.scale_shift_table.copy_(torch.randn_like(model.scale_shift_table) / dim**0.5)


def apply_strategy(model: torch.nn.Module, strategy: str, lora_rank: int = 128, lora_alpha: float = 128.0) -> None:
    """Freeze everything, then unfreeze the strategy's set (LoRA injected after freezing). Trainables become fp32."""
    strategy = canonical_strategy(strategy)
    model.requires_grad_(False)
    if strategy == "lora":
        add_lora(model, lora_rank, lora_alpha)
    for name, p in model.named_parameters():
        if strategy == "full" or is_new_module_key(name) or ".lora_" in name:
            p.requires_grad_(True)
        elif strategy in ("minimal", "lora") and is_time_head(name):
            p.requires_grad_(True)
    for p in model.parameters():
        if p.requires_grad and p.dtype != torch.float32:
            p.data = p.data.float()  # fp32 master weights for everything that trains


def trainable_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def param_group_name(name: str) -> str:
    """"lora" (LoRA A/B), "framepack" (``frame_packer.*``) or "base" (every other trainable)."""
    if ".lora_" in name:
        return "lora"
    if name.startswith("frame_packer."):
        return "framepack"
    return "base"


_PEFT_KEY = re.compile(r"\.lora_([AB])\.[^.]+\.weight$")


def export_name(name: str) -> str:
    """Our parameter name -> the TalkVerse file's key (original Wan naming, no prefix; LoRA as ``….lora_A.weight``)."""
    plain = _PEFT_KEY.sub(r".lora_\1.weight", name).replace(".base_layer.", ".")
    if ".lora_" in plain:
        module, ab = plain.rsplit(".lora_", 1)
        orig = diffusers_to_original(module + ".weight")
        if orig is None:
            raise KeyError(f"no original name for {name}")
        return orig[: -len(".weight")] + ".lora_" + ab
    orig = diffusers_to_original(plain)
    if orig is None:
        raise KeyError(f"no original name for {name}")
    return orig
