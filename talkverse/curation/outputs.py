"""The run's outputs, rebuilt from the clip records after every run (docs/curation.md "Outputs"):
``metadata.csv`` (the columns ``talkverse.data.rows.read_rows`` reads, plus the scores), ``rejects.csv`` and
``rejects.parquet`` (one row per rejected input or candidate clip: source, time range, stage, reason, all scores),
``summary.json`` (counts and hours entering and kept at each stage) and ``scores.png`` (score distributions with
the thresholds)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from .captions import embedding_path
from .records import STAGES, atomic_write_text, read_clip_records
from .skeleton import dwpose_path

SCORE_COLUMNS = ("speech_ratio", "sharpness", "brightness", "motion", "one_face", "multi_face", "face_size",
                 "sync_offset_found", "sync_offset", "sync_conf")
# score -> (config section, low threshold key, high threshold key) drawn on the plot
THRESHOLDS = {"speech_ratio": ("speech", "min_speech_ratio", None), "sharpness": ("quality", "min_sharpness", None),
              "brightness": ("quality", "min_brightness", "max_brightness"),
              "motion": ("quality", "min_motion", "max_motion"), "one_face": ("face", "min_present", None),
              "multi_face": ("face", None, "max_multi"), "face_size": ("face", "min_size_frac", None),
              "sync_conf": ("sync", "min_conf", None)}


def _csv_text(fields: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def metadata_rows(out: Path, accepted: list[dict]) -> list[dict]:
    rows = []
    for r in accepted:
        s = json.loads(r["scores"])
        n_src = max(1, int(round((r["end"] - r["start"]) * r["src_fps"])))
        row = {"clip_id": r["clip_id"], "video_path": f"videos/{r['clip_id']}.mp4", "caption": r["caption"],
               "scenes": f"0,{n_src - 1}", "fps": f"{r['src_fps']:.6g}",
               "dwpose_path": dwpose_path(Path(""), r["clip_id"]).as_posix(),
               "text_emb_path": (embedding_path(Path(""), r["clip_id"]).as_posix()
                                 if embedding_path(out, r["clip_id"]).is_file() else ""),
               "source": r["input"], "start": f"{r['start']:.3f}", "end": f"{r['end']:.3f}",
               "audio_shift": f"{r['audio_shift']:.3f}"}
        row.update({k: ("" if s.get(k) is None else f"{s[k]:.6g}") for k in SCORE_COLUMNS})
        rows.append(row)
    return rows


def summary(records: list[dict]) -> dict:
    """Per stage: clips and hours entering it and kept after it (an input rejected before the shot split counts as
    one item of its whole duration)."""
    order = {s: i for i, s in enumerate(STAGES)}
    per = {}
    for i, stage in enumerate(STAGES):
        entering = [r for r in records if not r["stage"] or order[r["stage"]] >= i]
        kept = [r for r in entering if r["stage"] != stage]
        hours = lambda rs: round(sum(r["end"] - r["start"] for r in rs) / 3600.0, 6)  # noqa: E731
        secs = sum(json.loads(r.get("timings") or "{}").get(stage, 0.0) for r in records)
        per[stage] = {"in": len(entering), "kept": len(kept), "hours_in": hours(entering), "hours_kept": hours(kept),
                      "seconds": round(secs, 3), "reasons": {}}
        for r in entering:
            if r["stage"] == stage:
                per[stage]["reasons"][r["reason"]] = per[stage]["reasons"].get(r["reason"], 0) + 1
    accepted = [r for r in records if not r["stage"]]
    return {"inputs": len({r["input"] for r in records}), "candidates": len(records), "accepted": len(accepted),
            "rejected": len(records) - len(accepted),
            "hours_accepted": round(sum(r["end"] - r["start"] for r in accepted) / 3600.0, 6), "stages": per}


def plot_scores(records: list[dict], cfg, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(THRESHOLDS)
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, key in zip(axes.ravel(), keys):
        acc = [json.loads(r["scores"]).get(key) for r in records if not r["stage"]]
        rej = [json.loads(r["scores"]).get(key) for r in records if r["stage"]]
        acc, rej = [v for v in acc if v is not None], [v for v in rej if v is not None]
        if acc or rej:
            ax.hist([acc, rej], bins=20, stacked=True, label=["accepted", "rejected"], color=["tab:green", "tab:red"])
        section, lo, hi = THRESHOLDS[key]
        for t in (lo, hi):
            if t is not None:
                ax.axvline(float(cfg[section][t]), color="k", linestyle="--")
        ax.set_title(key)
    axes.ravel()[0].legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.partial.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    tmp.replace(path)


def write_outputs(out: Path, cfg) -> dict:
    """Rebuild every output file from the records; returns the summary."""
    out = Path(out)
    records = read_clip_records(out)
    accepted = [r for r in records if not r["stage"]]
    rejected = [r for r in records if r["stage"]]
    meta = metadata_rows(out, accepted)
    fields = ["clip_id", "video_path", "caption", "scenes", "fps", "dwpose_path", "text_emb_path", "source", "start",
              "end", "audio_shift", *SCORE_COLUMNS]
    atomic_write_text(out / "metadata.csv", _csv_text(fields, meta))
    rej = [{"source": r["input"], "clip_id": r["clip_id"], "start": round(r["start"], 3), "end": round(r["end"], 3),
            "stage": r["stage"], "reason": r["reason"], "detail": r["detail"], "scores": r["scores"]}
           for r in rejected]
    rej_fields = ["source", "clip_id", "start", "end", "stage", "reason", "detail", "scores"]
    atomic_write_text(out / "rejects.csv", _csv_text(rej_fields, rej))
    try:
        import pandas as pd

        tmp = out / ".rejects.partial.parquet"
        pd.DataFrame(rej, columns=rej_fields).to_parquet(tmp, index=False)
        tmp.replace(out / "rejects.parquet")
    except ImportError:  # no pyarrow: the CSV is the record
        pass
    summ = summary(records)
    atomic_write_text(out / "summary.json", json.dumps(summ, indent=2))
    plot_scores(records, cfg, out / "scores.png")
    return summ
