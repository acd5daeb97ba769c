#!/usr/bin/env python
"""Curation cost per stage: seconds of one CPU worker per minute of input video (docs/curation.md "Speed").

Every stage of talkverse-curate runs in this process, one after the other, on each candidate clip of the input (the
stages' own code, as a Ray worker runs it, without Ray's scheduling): ingest, shots, speech, quality, face, sync,
encode, skeleton, captions. The default input is a talking-photo clip from the raw-video suite (256x256, 25 fps,
espeak-ng speech); --input takes any video. Prints one JSON line per stage and writes a markdown table with --table.

    python benchmarks/bench_curation.py --seconds 20 --table benchmarks/results_curation.md
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", default=None, help="a video (default: a generated talking-photo clip)")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the generated clip")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="curation setting KEY=VALUE")
    p.add_argument("--table", default=None, help="also write a markdown table here")
    args = p.parse_args(argv)

    from talkverse.curation.config import load_config
    from talkverse.curation.engine import StageActor, ingest_task, shots_task
    from talkverse.curation.records import input_id, new_row

    cfg = load_config(None, args.overrides)
    with tempfile.TemporaryDirectory() as td:
        src = args.input
        if src is None:
            from talkverse.testing.rawsuite import TalkingPhoto, speech, talking, write_video

            wave, gate = speech(args.seconds, seed=1)
            src = write_video(Path(td) / "talk.mp4", talking(TalkingPhoto("astronaut"), gate, 25, args.seconds), 25,
                              wave)
        out = Path(td) / "out"
        c0 = time.process_time()
        row = ingest_task(new_row(str(src), input_id(src)), cfg)
        c1 = time.process_time()
        minutes = max(row["end"], 1e-9) / 60.0
        rows = shots_task(row, cfg, str(out))
        actors, cpu = {}, {"ingest": c1 - c0, "shots": time.process_time() - c1}
        for name in ("speech", "quality", "face", "sync", "encode", "skeleton", "captions"):
            t0 = time.perf_counter()
            actors[name] = StageActor(name, cfg, str(out))
            load = time.perf_counter() - t0
            c0 = time.process_time()
            rows = [actors[name](r) for r in rows]
            cpu[name] = time.process_time() - c0
            dead = [r for r in rows if r["stage"]]
            if dead:
                print(f"note: {dead[0]['clip_id']} rejected at {dead[0]['stage']} ({dead[0]['reason']})", file=sys.stderr)
            actors[name].load_s = load
        totals: dict[str, float] = {}
        for r in rows:
            for k, v in json.loads(r["timings"]).items():
                totals[k] = totals.get(k, 0.0) + v
    results = []
    for name in ("ingest", "shots", "speech", "quality", "face", "sync", "encode", "skeleton", "captions"):
        rec = {"stage": name, "s_per_input_min": round(totals.get(name, 0.0) / minutes, 2),
               "cpu_s_per_input_min": round(cpu[name] / minutes, 2) if name in cpu else None,
               "model_load_s": round(getattr(actors.get(name), "load_s", 0.0), 2), "input_s": round(minutes * 60, 2)}
        results.append(rec)
        print(json.dumps(rec))
    total = sum(r["s_per_input_min"] for r in results)
    print(json.dumps({"stage": "total", "s_per_input_min": round(total, 2)}))
    if args.table:
        lines = ["| stage | wall s per input minute | CPU s per input minute | model load s |", "|---|---:|---:|---:|"]
        lines += [f"| {r['stage']} | {r['s_per_input_min']} | {r['cpu_s_per_input_min'] or ''} | {r['model_load_s']} |"
                  for r in results]
        lines.append(f"| **total** | **{total:.1f}** | | |")
        Path(args.table).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
