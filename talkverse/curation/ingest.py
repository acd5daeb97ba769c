"""Stage 1, ingest (docs/curation.md): list the inputs (a folder, a glob or a list file) and probe each with PyAV.
Rejects: ``unreadable`` (not a video PyAV can open and decode), ``no_audio``, ``too_short``, ``too_small``."""

from __future__ import annotations

import glob
from pathlib import Path

from ..media.video import VideoError, VideoReader
from .records import CurationError, add_scores, reject

STAGE = "ingest"


def list_inputs(spec: str, extensions) -> list[Path]:
    """A folder (searched recursively for ``extensions``), a glob pattern, or a text file with one path a line
    (relative paths are taken from the file's folder). Sorted, without duplicates."""
    p = Path(spec)
    exts = {e.lower() for e in extensions}
    if p.is_dir():
        found = [q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in exts]
    elif p.is_file() and p.suffix.lower() in (".txt", ".lst", ".list"):
        lines = [s.strip() for s in p.read_text().splitlines()]
        found = [(Path(s) if Path(s).is_absolute() else p.parent / s) for s in lines if s and not s.startswith("#")]
    elif p.is_file():
        found = [p]
    else:
        found = [Path(q) for q in glob.glob(spec, recursive=True) if Path(q).is_file()]
        if not found:
            raise CurationError(f"--input {spec}: no such folder, list file or video, and the glob matches nothing")
    return sorted({q.absolute() for q in found})


def ingest(row: dict, cfg) -> dict:
    """Probe the source: fill ``src_fps``, ``width``, ``height``, ``end`` (its duration), or reject."""
    c = cfg.ingest
    try:
        with VideoReader(row["input"]) as reader:
            info = reader.info
            next(reader.iter_frames(None))  # the header alone does not prove the file decodes
    except (VideoError, StopIteration, OSError) as e:
        return reject(row, STAGE, "unreadable", e)
    except Exception as e:  # noqa: BLE001  whatever a broken container makes PyAV raise
        return reject(row, STAGE, "unreadable", f"{row['input']}: {type(e).__name__}: {e}")
    row.update(src_fps=float(info.fps), width=int(info.width), height=int(info.height), end=float(info.duration))
    add_scores(row, duration=info.duration, fps=info.fps, short_side=min(info.width, info.height))
    if not info.has_audio:
        return reject(row, STAGE, "no_audio", f"{row['input']}: no audio stream")
    if info.fps <= 0 or info.duration < c.min_seconds:
        return reject(row, STAGE, "too_short", f"{info.duration:.2f} s < {c.min_seconds} s")
    if min(info.width, info.height) < c.min_side:
        return reject(row, STAGE, "too_small", f"{info.width}x{info.height}, shorter side < {c.min_side}")
    return row
