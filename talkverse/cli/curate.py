"""talkverse-curate: turn a folder of raw videos into TalkVerse training data (docs/curation.md).

    talkverse-curate --input RAW --out DATA [--config my.yaml] [--set sync.min_conf=0.3 ...]
                     [--workers 2] [--ray_address auto] [--captioner VLM_DIR] [--text_encoder CKPT_DIR]

Stages (Ray Data): ingest -> shots -> speech -> quality -> face -> sync -> encode -> skeleton -> captions. DATA gets
metadata.csv, videos/, dwpose/, text_embeddings/ (with --text_encoder), rejects.csv/.parquet, summary.json and
scores.png: the layout scripts/precache.py and train_s2v_5b.py read (--csv DATA/metadata.csv --data_root DATA).
Rerunning with the same --out skips finished inputs. Thresholds: talkverse/configs/curation.yaml.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .checks import FAILED, INTERRUPTED, OK, USAGE, OneLineParser

EXIT_HELP = ("exit status: 0 done (rejects are not failures); 1 the run failed; 2 a bad argument, input or setting "
             "(nothing written); 130 interrupted (rerun to continue)")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="talkverse-curate", description=__doc__, epilog=EXIT_HELP,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help="a folder of videos (recursive), a glob, or a text file listing "
                                                  "one video path a line")
    p.add_argument("--out", required=True, help="the output folder (created; rerun with it to resume)")
    p.add_argument("--config", default=None, help="a YAML overriding talkverse/configs/curation.yaml")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting, e.g. --set face.min_present=0.9 (repeatable)")
    p.add_argument("--workers", type=int, default=None, help="workers per stage (default: engine.workers)")
    p.add_argument("--ray_address", default=None, help="join this Ray cluster (default: start a local Ray)")
    p.add_argument("--num_cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--captioner", default=None, help="a local vision-language model folder (captions.captioner)")
    p.add_argument("--text_encoder", default=None, help="a saved TalkVersePipeline or umT5 folder: write umT5 "
                                                        "embeddings to text_embeddings/ (captions.text_encoder)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from pathlib import Path

    from ..curation.config import load_config
    from ..curation.ingest import list_inputs
    from ..curation.records import CurationError

    overrides = list(args.overrides)
    for flag, key in (("captioner", "captions.captioner"), ("text_encoder", "captions.text_encoder")):
        value = getattr(args, flag)
        if value is not None:
            if not Path(value).exists():
                print(f"error: --{flag} {value}: not found", file=sys.stderr)
                return USAGE
            overrides.append(f"{key}={value}")
    try:
        cfg = load_config(args.config, overrides)
        inputs = list_inputs(args.input, cfg.ingest.extensions)
        if Path(args.out).exists() and not Path(args.out).is_dir():
            raise CurationError(f"--out {args.out}: exists and is not a folder")
    except CurationError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from ..curation.engine import run

    try:
        summary = run(inputs, Path(args.out), cfg, ray_address=args.ray_address, workers=args.workers,
                      num_cpus=args.num_cpus)
    except KeyboardInterrupt:
        print("interrupted: rerun the same command to continue", file=sys.stderr)
        return INTERRUPTED
    except CurationError as e:
        print(f"error: {e}", file=sys.stderr)
        return USAGE
    except Exception as e:  # noqa: BLE001
        print(f"error: the run failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)
        return FAILED
    print(json.dumps({k: summary[k] for k in ("inputs", "candidates", "accepted", "rejected", "hours_accepted")}))
    return OK


if __name__ == "__main__":
    sys.exit(main())
