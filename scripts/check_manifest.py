#!/usr/bin/env python
"""Compare our model's state_dict (original Wan key names) with a reference shape manifest.

    python scripts/check_manifest.py ../shared/reference/s2v5b_state_dict_shapes.tsv [--config s2v_5b]
    python scripts/check_manifest.py ../shared/reference/parity_s2v14b/s2v14b_state_dict_shapes.tsv  # -> s2v_14b

The model is built on the meta device (no weights). Exit status 0 on a match, 1 on any mismatch.
See talkverse/manifest.py for the comparison scopes (full S2V manifest vs base / new-module subsets).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable without installing the package

from talkverse.manifest import SCOPES, build_meta_model, compare, detect_config, model_keys_original, read_manifest  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path, help="TSV manifest: key<TAB>JSON shape, no header")
    parser.add_argument("--config", default="auto",
                        help="model config preset or YAML file; auto (default): s2v_14b if the manifest has the "
                             "14B patch embedding and cond_encoder, else s2v_5b")
    parser.add_argument("--scope", choices=SCOPES, default="auto",
                        help="full: equal key sets; base/new: equal to that part of our keys; subset: manifest "
                             "keys only; auto (default): full if the manifest mixes base and new-module keys")
    args = parser.parse_args(argv)

    manifest = read_manifest(args.manifest)
    if args.config == "auto":
        args.config = detect_config(manifest)
    ours = model_keys_original(build_meta_model(args.config))
    result = compare(manifest, ours, args.scope)
    print(f"manifest: {args.manifest}  config: {args.config}  scope: {result.scope}")
    print(f"our keys: {len(ours)}; manifest keys: {result.manifest_keys}; keys compared: {result.compared}")
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
