"""The row that travels through the stages, rejections, and the per-clip records that make a run resumable
(docs/curation.md "Outputs", "Resuming").

A row is a flat dict (Ray Data blocks): ``input`` (source path), ``input_id``, ``clip_id``, ``start``/``end``
(seconds in the source), ``src_fps``, ``width``, ``height``, ``stage`` (where it was rejected, "" while alive),
``reason``, ``detail``, ``scores`` (a JSON object string: every measured score), ``timings`` (seconds per stage) and ``audio_shift`` (seconds the
audio is moved to fix a constant A/V offset). Rejected rows pass through the later stages untouched.

``<out>/.state/inputs/<input_id>.json`` lists an input's candidate clips; ``<out>/.state/clips/<clip_id>.json`` is
written last for each finished clip (accepted or rejected). An input is finished when both exist for all its clips.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

STAGES = ("ingest", "shots", "speech", "quality", "face", "sync", "encode", "skeleton", "captions")


class CurationError(Exception):
    """A bad curation input or setting (one line)."""


def input_id(path: str | os.PathLike) -> str:
    """A stable, file-name-safe id of a source video: its stem and 8 hex digits of its absolute path."""
    p = Path(path).absolute()
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", p.stem)[:48] or "video"
    return f"{stem}-{hashlib.sha1(str(p).encode()).hexdigest()[:8]}"


def new_row(path: str, iid: str) -> dict:
    return {"input": str(path), "input_id": iid, "clip_id": iid, "start": 0.0, "end": 0.0, "src_fps": 0.0,
            "width": 0, "height": 0, "stage": "", "reason": "", "detail": "", "scores": "{}", "audio_shift": 0.0,
            "caption": "", "timings": "{}"}


def alive(row: dict) -> bool:
    return not row["stage"]


def reject(row: dict, stage: str, reason: str, detail: str = "") -> dict:
    """Mark ``row`` rejected at ``stage`` for ``reason`` (a short tag) and return it."""
    row.update(stage=stage, reason=reason, detail=str(detail)[:500])
    return row


def scores(row: dict) -> dict:
    return json.loads(row["scores"])


def add_scores(row: dict, **values) -> dict:
    s = scores(row)
    s.update({k: (None if v is None else float(v)) for k, v in values.items()})
    row["scores"] = json.dumps(s, sort_keys=True)
    return row


def add_timing(row: dict, stage: str, seconds: float) -> dict:
    """Seconds ``stage`` spent on this row (``timings``, a JSON object string; summary.json sums them)."""
    t = json.loads(row.get("timings") or "{}")
    t[stage] = round(t.get(stage, 0.0) + float(seconds), 4)
    row["timings"] = json.dumps(t, sort_keys=True)
    return row


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def state_dir(out: Path) -> Path:
    return Path(out) / ".state"


def clip_record_path(out: Path, clip_id: str) -> Path:
    return state_dir(out) / "clips" / f"{clip_id}.json"


def input_record_path(out: Path, iid: str) -> Path:
    return state_dir(out) / "inputs" / f"{iid}.json"


def write_clip_record(out: Path, row: dict) -> None:
    atomic_write_text(clip_record_path(out, row["clip_id"]), json.dumps(row, sort_keys=True))


def write_input_record(out: Path, iid: str, clip_ids: list[str]) -> None:
    atomic_write_text(input_record_path(out, iid), json.dumps({"input_id": iid, "clips": clip_ids}))


def input_finished(out: Path, iid: str) -> bool:
    p = input_record_path(out, iid)
    if not p.is_file():
        return False
    return all(clip_record_path(out, c).is_file() for c in json.loads(p.read_text())["clips"])


def read_clip_records(out: Path) -> list[dict]:
    """Every finished clip's row, sorted by clip id."""
    folder = state_dir(out) / "clips"
    return sorted((json.loads(p.read_text()) for p in folder.glob("*.json") if not p.name.startswith(".")),
                  key=lambda r: r["clip_id"]) if folder.is_dir() else []
