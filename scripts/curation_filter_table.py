#!/usr/bin/env python
"""Every curation filter on every case of the raw-video suite, independently (not stopping at the first reject):
a markdown table of true and false positives per filter, and the sync measure's offset error on the shifted clip.

  python scripts/make_curation_suite.py SUITE && python scripts/curation_filter_table.py SUITE

A filter's positive is a rejection. True positive: the case's expected rejection is this filter's; false positive: it
rejects a case that must be accepted or that another filter owns (the latter is harmless in the pipeline, where the
earlier filter decides, and is counted separately as "also rejects").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FILTERS = ("ingest", "speech", "quality", "face", "sync")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", help="a folder written by scripts/make_curation_suite.py")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="curation setting KEY=VALUE")
    args = p.parse_args(argv)
    from talkverse.curation.config import load_config
    from talkverse.curation.engine import StageActor, ingest_task
    from talkverse.curation.records import input_id, new_row
    from talkverse.curation.shots import split_shots
    from talkverse.testing.rawsuite import load_suite

    cfg = load_config(None, args.overrides)
    cases = load_suite(args.suite)
    stages = {n: StageActor(n, cfg, "/nonexistent") for n in FILTERS[1:]}
    verdicts: dict[str, dict[str, str]] = {}  # case -> filter -> "" (pass) or the reason
    offset_error = None
    for name, case in cases.items():
        path = Path(args.suite) / case["file"]
        row = ingest_task(new_row(str(path), input_id(path)), cfg)
        v = {"ingest": row["reason"]}
        if not row["stage"]:
            for clip in split_shots(row, cfg):
                for f, st in stages.items():
                    r = st(dict(clip, stage="", reason=""))
                    if r["stage"] and not v.get(f):
                        v[f] = r["reason"]
                    if f == "sync" and name == "shifted8":
                        found = json.loads(r["scores"]).get("sync_offset_found")
                        offset_error = None if found is None else found - case["expected"]["offset"]
        verdicts[name] = v
        print(name, v, file=sys.stderr)
    print("| filter | true positives | false positives (must be accepted) | also rejects (owned by another filter) |")
    print("|---|---|---|---|")
    for f in FILTERS:
        tp, fp, also = [], [], []
        for name, case in cases.items():
            reason = verdicts[name].get(f)
            if not reason:
                continue
            e = case["expected"]
            if not e["accepted"] and e["stage"] == f and e["reason"] == reason:
                tp.append(name)
            elif e["accepted"]:
                fp.append(f"{name} ({reason})")
            else:
                also.append(f"{name} ({reason})")
        print(f"| {f} | {len(tp)}: {', '.join(tp) or '-'} | {len(fp)}: {', '.join(fp) or '-'} | "
              f"{', '.join(also) or '-'} |")
    print(f"\nsync offset error on shifted8 (found - truth): {offset_error} frames")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
