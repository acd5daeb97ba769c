"""Original Wan2.2 VAE (``Wan2.2_VAE.pth``) key names <-> ``diffusers.AutoencoderKLWan`` key names.

The rules of docs/checkpoints.md §4, applied in order, each anchored. The attention-block names (``norm.gamma``,
``to_qkv.*``, ``proj.*``) are the same on both sides; ``avg_shortcut`` has no parameters.
"""

from __future__ import annotations

import re

# One-to-one module renames (original, diffusers); "@" stands for "encoder" or "decoder". Both directions are
# compiled from this one table, each pattern anchored at the start of the key.
_RENAMES = [("conv1.", "quant_conv."), ("conv2.", "post_quant_conv."), ("@.conv1.", "@.conv_in."),
            ("@.head.0.", "@.norm_out."), ("@.head.2.", "@.conv_out."), ("@.middle.0.", "@.mid_block.resnets.0."),
            ("@.middle.1.", "@.mid_block.attentions.0."), ("@.middle.2.", "@.mid_block.resnets.1.")]


def _compile(src: str, dst: str) -> tuple[re.Pattern, str]:
    pattern = "^" + re.escape(src).replace("@", "(encoder|decoder)")
    return re.compile(pattern), dst.replace("@", r"\1")


# Module renames, in order.
_RULES: list[tuple[re.Pattern, str]] = [_compile(o, d) for o, d in _RENAMES] + [
    (re.compile(r"^encoder\.downsamples\.(\d+)\.downsamples\.\d+\.(resample|time_conv)\."),
     r"encoder.down_blocks.\1.downsampler.\2."),
    (re.compile(r"^encoder\.downsamples\.(\d+)\.downsamples\.(\d+)\."), r"encoder.down_blocks.\1.resnets.\2."),
    (re.compile(r"^decoder\.upsamples\.(\d+)\.upsamples\.\d+\.(resample|time_conv)\."),
     r"decoder.up_blocks.\1.upsampler.\2."),
    (re.compile(r"^decoder\.upsamples\.(\d+)\.upsamples\.(\d+)\."), r"decoder.up_blocks.\1.resnets.\2."),
]
# Inside a resnet (after the renames above): residual.{0,2,3,6} / shortcut.
_RESNET = re.compile(r"^(.*\.resnets\.\d+\.)(residual\.0\.gamma|residual\.2\.|residual\.3\.gamma|residual\.6\.|shortcut\.)")
_RESNET_NAMES = {"residual.0.gamma": "norm1.gamma", "residual.2.": "conv1.", "residual.3.gamma": "norm2.gamma",
                 "residual.6.": "conv2.", "shortcut.": "conv_shortcut."}


def original_to_diffusers(key: str) -> str:
    """Diffusers name of one original ``Wan2.2_VAE.pth`` key (unknown keys come back unchanged)."""
    for pat, repl in _RULES:
        new, n = pat.subn(repl, key, count=1)
        if n:
            key = new
            break
    m = _RESNET.match(key)
    if m:
        key = m.group(1) + _RESNET_NAMES[m.group(2)] + key[m.end():]
    return key


# ------------------------------------------------------------------ inverse (tests, export)
_INV_RESNET = re.compile(r"^(.*\.resnets\.\d+\.)(norm1\.gamma|conv1\.|norm2\.gamma|conv2\.|conv_shortcut\.)")
_INV_RESNET_NAMES = {v: k for k, v in _RESNET_NAMES.items()}
_INV_RULES: list[tuple[re.Pattern, str]] = [_compile(d, o) for o, d in _RENAMES] + [
    (re.compile(r"^encoder\.down_blocks\.(\d+)\.resnets\.(\d+)\."), r"encoder.downsamples.\1.downsamples.\2."),
    (re.compile(r"^decoder\.up_blocks\.(\d+)\.resnets\.(\d+)\."), r"decoder.upsamples.\1.upsamples.\2."),
]
_INV_SAMPLER = re.compile(r"^(encoder|decoder)\.(down|up)_blocks\.(\d+)\.(downsampler|upsampler)\.")


def diffusers_to_original(key: str, num_res_blocks: int = 2) -> str:
    """Original name of a diffusers ``AutoencoderKLWan`` key.

    The re-/down-sampler sits after the resnets of its stage: index ``num_res_blocks`` in the encoder and
    ``num_res_blocks + 1`` in the decoder (whose stages have one resnet more).
    """
    m = _INV_RESNET.match(key)
    if m:
        key = m.group(1) + _INV_RESNET_NAMES[m.group(2)] + key[m.end():]
    m = _INV_SAMPLER.match(key)
    if m:
        side, kind, i = m.group(1), "downsamples" if m.group(2) == "down" else "upsamples", m.group(3)
        j = num_res_blocks if side == "encoder" else num_res_blocks + 1
        return f"{side}.{kind}.{i}.{kind}.{j}." + key[m.end():]
    for pat, repl in _INV_RULES:
        new, n = pat.subn(repl, key, count=1)
        if n:
            return new
    return key
