"""Original Wan2.1 VAE (``Wan2.1_VAE.pth``, the VAE of Wan2.2-S2V-14B) key names -> ``diffusers.AutoencoderKLWan``.

The Wan2.1 file has a flat layout (``encoder.downsamples.k.{residual,resample,time_conv,shortcut}``), not Wan2.2's
nested ``downsamples.i.downsamples.j`` (talkverse.convert.vae_keys). diffusers' own ``convert_wan_vae_to_diffusers``
maps every key of it (s2v14b.md §4.2: 194/194 in the tiny fixture, none missing or unexpected); it only renames, so it
is applied key by key here and the tensors are read later, lazily.
"""

from __future__ import annotations

import re

# A key of the nested Wan2.2 layout; the Wan2.1 layout never has a second ``downsamples``/``upsamples`` level.
_WAN22_NESTED = re.compile(r"^(encoder\.downsamples\.\d+\.downsamples|decoder\.upsamples\.\d+\.upsamples)\.")


def is_wan21_layout(keys) -> bool:
    """True for the flat Wan2.1 layout (some encoder/decoder key and no nested Wan2.2 stage)."""
    keys = list(keys)
    return any(k.startswith(("encoder.", "decoder.")) for k in keys) and not any(_WAN22_NESTED.match(k) for k in keys)


def original_to_diffusers(key: str) -> str:
    """Diffusers name of one original ``Wan2.1_VAE.pth`` key (unknown keys come back unchanged)."""
    from diffusers.loaders.single_file_utils import convert_wan_vae_to_diffusers

    out = convert_wan_vae_to_diffusers({key: key})
    return next(iter(out), key) if len(out) == 1 else key
