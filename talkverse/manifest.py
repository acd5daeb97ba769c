"""Shape manifests: compare our state_dict (in original Wan key names) with a reference ``key<TAB>shape`` TSV.

Manifest format (``../shared/reference/*.tsv``): one ``key<TAB>JSON shape list`` per line, no header, any order.
See ``../shared/docs/checkpoints.md`` §7.

Comparison scope:
- ``full``: the manifest must hold exactly our keys (the full S2V manifest).
- ``base`` / ``new``: the manifest holds only base (TI2V) keys or only new-module keys; it must equal *that part*
  of our keys, and our keys of the other part are reported as outside it (the TI2V and the "added" manifests).
- ``subset``: every manifest key must be ours with the same shape; any other key of ours is only reported.
- ``auto`` (default): ``full`` if the manifest mixes base and new-module keys, else ``base`` or ``new``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .convert.wan_keys import diffusers_to_original, is_new_module_key

Shape = tuple[int, ...]
SCOPES = ("auto", "full", "base", "new", "subset")


def read_manifest(path: str | Path) -> dict[str, Shape]:
    """Parse a manifest TSV into {key: shape} (file order kept). Blank lines are skipped; anything else malformed
    or a repeated key raises ValueError."""
    out: dict[str, Shape] = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected 'key<TAB>shape', got {line!r}")
        key, raw = parts[0].strip(), parts[1].strip()
        try:
            shape = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: shape {raw!r} is not JSON") from exc
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise ValueError(f"{path}:{n}: shape {raw!r} is not a list of non-negative ints")
        if key in out:
            raise ValueError(f"{path}:{n}: key {key!r} appears twice")
        out[key] = tuple(shape)
    return out


def peft_key_to_plain(key: str, adapter_name: str = "default") -> str:
    """Drop peft's wrapper parts: ``x.base_layer.weight`` -> ``x.weight``, ``x.lora_A.<adapter>.weight`` ->
    ``x.lora_A.weight`` (only for ``adapter_name``; other adapters are left untouched)."""
    key = key.replace(".base_layer.", ".")
    return re.sub(r"\.(lora_A|lora_B)\." + re.escape(adapter_name) + r"\.", r".\1.", key)


def model_keys_original(model: torch.nn.Module, adapter_name: str = "default") -> dict[str, Shape]:
    """{original Wan key: shape} of ``model.state_dict()`` (works on meta models).

    peft-injected models are accepted: ``base_layer`` is folded away and the adapter name is stripped from the LoRA
    keys. A key that has no original name, or two keys that map to the same name, raise ValueError.
    """
    out: dict[str, Shape] = {}
    for key, tensor in model.state_dict().items():
        plain = peft_key_to_plain(key, adapter_name)
        orig = diffusers_to_original(plain)
        if orig is None:
            raise ValueError(f"state_dict key {key!r} has no original Wan name")
        if orig in out:
            raise ValueError(f"two state_dict keys map to the original key {orig!r}")
        out[orig] = tuple(tensor.shape)
    return out


def num_params(shapes: dict[str, Shape]) -> int:
    total = 0
    for shape in shapes.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def _part(key: str) -> str:
    return "new" if is_new_module_key(key) else "base"


def resolve_scope(manifest: dict[str, Shape]) -> str:
    """``auto`` rule: a manifest with both base and new-module keys is a full manifest, else it covers one part."""
    parts = {_part(k) for k in manifest}
    return "full" if len(parts) != 1 else parts.pop()


@dataclass
class ManifestComparison:
    """Result of :func:`compare`. ``ok`` is True when nothing is missing, extra (within scope) or mis-shaped."""

    scope: str
    manifest_keys: int
    compared: int  # manifest keys also present in ours
    missing: list[str] = field(default_factory=list)  # in the manifest, not ours
    extra: list[str] = field(default_factory=list)  # ours, inside the scope, not in the manifest
    shape_mismatches: list[tuple[str, Shape, Shape]] = field(default_factory=list)  # (key, manifest, ours)
    outside: int = 0  # our keys outside the scope (not compared)
    manifest_params: int = 0

    @property
    def ok(self) -> bool:
        return not (self.missing or self.extra or self.shape_mismatches)

    def summary(self) -> str:
        what = {"full": "", "base": " of the base subset", "new": " of the new-module subset",
                "subset": " (subset)"}[self.scope]
        shapes = "equal shapes" if not self.shape_mismatches else f"{len(self.shape_mismatches)} shape mismatches"
        line = f"{self.compared}/{self.manifest_keys} keys{what}, {shapes}, {self.manifest_params:,} parameters"
        if self.outside:
            line += f"; {self.outside} of our keys lie outside the manifest"
        return line

    def report(self, limit: int = 50) -> str:
        lines = [self.summary()]
        for title, items in (("missing keys (in manifest, not ours)", self.missing),
                             ("extra keys (ours, not in manifest)", self.extra)):
            lines.append(f"{title}: {len(items)}")
            lines += [f"  {k}" for k in items[:limit]]
            if len(items) > limit:
                lines.append(f"  ... {len(items) - limit} more")
        lines.append(f"shape mismatches: {len(self.shape_mismatches)}")
        lines += [f"  {k}: manifest {list(a)} vs ours {list(b)}" for k, a, b in self.shape_mismatches[:limit]]
        lines.append("OK" if self.ok else "MISMATCH")
        return "\n".join(lines)


def compare(manifest: dict[str, Shape], ours: dict[str, Shape], scope: str = "auto") -> ManifestComparison:
    """Compare a manifest with our {original key: shape}; see the module docstring for ``scope``."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    if scope == "auto":
        scope = resolve_scope(manifest)
    if scope in ("base", "new"):
        in_scope = {k for k in ours if _part(k) == scope}
    elif scope == "full":
        in_scope = set(ours)
    else:  # subset
        in_scope = set(ours) & set(manifest)
    missing = [k for k in manifest if k not in ours]
    extra = sorted(in_scope - set(manifest))
    mismatches = [(k, s, ours[k]) for k, s in manifest.items() if k in ours and ours[k] != s]
    return ManifestComparison(
        scope=scope,
        manifest_keys=len(manifest),
        compared=len(manifest) - len(missing),
        missing=missing,
        extra=extra,
        shape_mismatches=mismatches,
        outside=len(set(ours) - in_scope - set(manifest)),
        manifest_params=num_params(manifest),
    )


# The full-size model presets a manifest can describe, and the one assumed when nothing else fits.
MODEL_PRESETS = ("s2v_5b", "s2v_14b")


def detect_config(manifest: dict[str, Shape]) -> str:
    """The model preset a manifest describes: the one whose ``patch_embedding.weight`` shape ([D, C_in, 1, 2, 2])
    and ``cond_encoder`` presence match it; ``s2v_5b`` when the manifest holds neither (e.g. a new-module subset)."""
    from .configs import model_config

    patch = manifest.get("patch_embedding.weight")
    for name in MODEL_PRESETS:
        cfg = model_config(name)
        shape = (cfg["num_attention_heads"] * cfg["attention_head_dim"], cfg["in_channels"], *cfg["patch_size"])
        has_cond = bool(cfg.get("cond_dim"))
        if (patch is None or patch == shape) and ("cond_encoder.weight" in manifest) == has_cond:
            if patch is not None or has_cond:
                return name
    return MODEL_PRESETS[0]


def build_meta_model(config: str = "s2v_5b") -> torch.nn.Module:
    """``TalkVerseTransformer3DModel`` of a config preset on the meta device (no memory, no init cost)."""
    from .configs import model_config
    from .models.transformer_talkverse import TalkVerseTransformer3DModel

    with torch.device("meta"):
        return TalkVerseTransformer3DModel(**model_config(config))
