#!/usr/bin/env python
"""Run the numeric parity cases found in a fixtures folder laid out like ``../shared/reference/parity/``.

Recognises which model the folder holds (TalkVerse-5B ``parity/`` or Wan2.2-S2V-14B ``parity_s2v14b/``) and runs
each suite's version for it. Prints one line per case, ``<case> <max relative error> PASS|FAIL``, and exits non-zero if any case fails or if
the folder holds no case of the selected suites. ``-v`` adds the error of every compared tensor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from talkverse.parity import SUITES, fixture_model, run_suites  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--fixtures", required=True, type=Path, help="parity fixtures folder (e.g. ../shared/reference/parity)")
    p.add_argument("--only", default=None,
                   help="comma-separated suites to run (default: all known), e.g. dit,lora")
    p.add_argument("-v", "--verbose", action="store_true", help="print every compared tensor with its error and bar")
    args = p.parse_args(argv)
    if not args.fixtures.is_dir():
        print(f"error: fixtures folder not found: {args.fixtures}", file=sys.stderr)
        return 2
    torch.manual_seed(0)
    print(f"fixtures: {args.fixtures} (model {fixture_model(args.fixtures)})", flush=True)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    try:
        results = []
        for res in run_suites(args.fixtures, only):
            results.append(res)
            print(res.line(), flush=True)
            if args.verbose or not res.passed:
                for name, err, tol in res.details:
                    if args.verbose or err > tol:
                        print(f"    {name}: {err:.3e} (bar {tol:g}){'' if err <= tol else '  <-- FAIL'}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not results:
        print(f"error: no parity case of {only or sorted(SUITES)} found in {args.fixtures}", file=sys.stderr)
        return 1
    failed = [r.name for r in results if not r.passed]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
