#!/usr/bin/env python
"""Inspect a TalkVerse checkpoint (or one of our step-N exports) without loading a base model.

Prints its groups (LoRA pairs with rank and targets, retrained time/head tensors, S2V modules, other overrides), the
dtypes, the safetensors metadata, and whether it is complete for a model config (default: the full s2v_5b). Exit code
1 if the file is not a complete TalkVerse checkpoint for that config.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from talkverse.configs import model_config  # noqa: E402
from talkverse.convert.errors import CheckpointError, format_keys  # noqa: E402
from talkverse.convert.state_dict_io import LazyStateDict  # noqa: E402
from talkverse.convert.talkverse_ckpt import TIME_HEAD_KEYS_OURS, partition  # noqa: E402
from talkverse.convert.wan_keys import is_new_module_key  # noqa: E402
from talkverse.models.transformer_talkverse import TalkVerseTransformer3DModel  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path, help="TalkVerse .safetensors file (or a folder of shards)")
    p.add_argument("--config", default="s2v_5b", help="model preset to check completeness against (default s2v_5b)")
    args = p.parse_args(argv)
    try:
        sd = LazyStateDict(args.checkpoint)
    except CheckpointError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    numel = lambda k: int(torch.Size(sd.shape(k)).numel())  # noqa: E731
    print(f"{args.checkpoint}: {len(sd)} tensors, {sum(numel(k) for k in sd):,} parameters")
    print("dtypes: " + ", ".join(f"{d}: {n}" for d, n in Counter(str(sd.dtype(k)) for k in sd).items()))
    if sd.metadata:
        print("metadata: " + ", ".join(f"{k}={v}" for k, v in sorted(sd.metadata.items())))
    with torch.device("meta"):
        model = TalkVerseTransformer3DModel(**model_config(args.config))
    keys = set(model.state_dict())
    try:
        parts = partition(sd, keys, {k for k in keys if is_new_module_key(k)}, str(args.checkpoint))
    except CheckpointError as e:
        print(f"NOT a complete TalkVerse checkpoint for {args.config}: {e}")
        return 1
    if parts.prefix:
        print(f"key prefix: {parts.prefix!r} (stripped on load)")
    groups = Counter(k.split(".")[0] for k in parts.overrides)
    print("full tensors: " + ", ".join(f"{g}: {n}" for g, n in sorted(groups.items())))
    if parts.lora:
        ranks = Counter(sd.shape(a)[0] for a, _ in parts.lora.values())
        kinds = Counter(m.split(".", 2)[2] for m in parts.lora)
        lora_params = sum(numel(a) + numel(b) for a, b in parts.lora.values())
        print(f"LoRA: {len(parts.lora)} pairs, rank(s) {dict(ranks)}, {lora_params:,} parameters; targets "
              + ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items())))
    else:
        print("LoRA: none")
    time_head = sorted(k for k in keys if k.startswith(TIME_HEAD_KEYS_OURS) and k not in parts.overrides)
    if time_head:
        print(f"missing retrained time/head tensors: {format_keys(time_head)}"
              + (" (strategy=new_modules export: the base's are kept)" if parts.metadata.get("strategy") == "new_modules"
                 else ""))
        if parts.metadata.get("strategy") != "new_modules":
            return 1
    print(f"OK: complete TalkVerse checkpoint for {args.config}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
