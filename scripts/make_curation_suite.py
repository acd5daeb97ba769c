#!/usr/bin/env python
"""Write the curation pipeline's raw-video test suite (talkverse/testing/rawsuite.py; docs/curation.md):

  python scripts/make_curation_suite.py OUT [--long_seconds 40]

Real photos made to talk with espeak-ng speech, plus the negative cases; OUT/suite.json lists each case's expected
outcome (accepted with n clips, or the stage and reason of its rejection). Needs the `curation` extra and espeak-ng.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="make_curation_suite.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="output folder")
    p.add_argument("--long_seconds", type=float, default=40.0, help="length of the video with 3 hard cuts")
    args = p.parse_args(argv)
    from talkverse.testing.rawsuite import build_suite

    for c in build_suite(args.out, long_seconds=args.long_seconds):
        e = c.expected
        print(f"{c.file:18s} " + (f"accepted, {e.clips} clip(s)" if e.accepted else f"rejected at {e.stage}: {e.reason}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
