"""Metadata CSV rows (training.md §2.1, §2.4): one ``ClipRow`` per clip, several CSVs concatenated."""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("video_path", "caption")
KNOWN_COLUMNS = {"video_path", "caption", "scenes", "fps", "FPS", "dwpose_path", "text_emb_path", "clip_id"}


@dataclass
class ClipRow:
    """One training clip. Paths are absolute; ``scenes`` are inclusive original-fps ranges (None = not usable)."""

    video_path: Path
    caption: str
    scenes: list[tuple[int, int]] | None
    fps: float | None
    dwpose_path: Path | None
    text_emb_path: Path | None
    clip_id: str
    extra: dict = field(default_factory=dict)


def parse_scenes(text: str | None) -> list[tuple[int, int]] | None:
    """``"s,e;s,e"`` -> [(s, e), ...]; empty -> None; malformed (or e < s, negative) -> ValueError."""
    if text is None or not str(text).strip() or str(text).strip().lower() in ("nan", "none"):
        return None
    out = []
    for part in str(text).strip().strip(";").split(";"):
        s, e = (int(float(v)) for v in part.split(","))
        if s < 0 or e < s:
            raise ValueError(f"bad scene range {part!r}")
        out.append((s, e))
    return out or None


def _parse_fps(text: str | None) -> float | None:
    if text is None or not str(text).strip():
        return None
    fps = float(text)
    return fps if math.isfinite(fps) and fps > 0 else None


def reference_dwpose_path(video_path: str) -> str | None:
    """The reference rule (§2.4) on the relative video path, or None when neither dataset name matches."""
    if "/openhumanvid/videos" in video_path:
        return video_path.replace("/openhumanvid/videos", "/openhumanvid/dwpose/").replace(".mp4", ".npz")
    if "/panda70m/videos/" in video_path:
        return video_path.replace("/panda70m/videos/", "/panda70m/dwpose/").replace(".mp4", ".mp4.npz")
    return None


def _resolve(p: str, root: Path) -> Path:
    q = Path(p)
    return (q if q.is_absolute() else root / q).absolute()


def _dwpose_for(rel: str, video: Path, explicit: str | None, root: Path) -> Path:
    if explicit:
        return _resolve(explicit, root)
    ref = reference_dwpose_path(rel)
    if ref is not None:
        for cand in (_resolve(ref, root), Path(ref).absolute()):
            if cand.exists():
                return cand
    return video.with_suffix(".npz") if video.suffix == ".mp4" else Path(str(video) + ".npz")


def read_rows(csv_paths: str | Path | Iterable[str | Path], data_root: str | Path) -> list[ClipRow]:
    """Read and concatenate metadata CSVs. Raises ValueError naming the CSV when a required column is missing."""
    if isinstance(csv_paths, (str, Path)):
        csv_paths = [csv_paths]
    root = Path(data_root).absolute()
    rows: list[ClipRow] = []
    for csv_path in csv_paths:
        csv_path = Path(csv_path)
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            cols = reader.fieldnames or []
            missing = [c for c in REQUIRED_COLUMNS if c not in cols]
            if missing:
                raise ValueError(f"{csv_path}: missing required column(s) {', '.join(missing)} (has: {', '.join(cols)})")
            for n, r in enumerate(reader, start=2):
                rel = (r.get("video_path") or "").strip()
                if not rel:
                    logger.warning("%s line %d: empty video_path, row skipped", csv_path, n)
                    continue
                video = _resolve(rel, root)
                try:
                    fps = _parse_fps(r.get("fps") if r.get("fps") not in (None, "") else r.get("FPS"))
                except ValueError:
                    logger.warning("%s line %d: unparsable fps %r, ignored", csv_path, n, r.get("fps") or r.get("FPS"))
                    fps = None
                try:
                    scenes = parse_scenes(r.get("scenes"))
                except (ValueError, TypeError):
                    logger.warning("%s line %d: unparsable scenes %r, ignored", csv_path, n, r.get("scenes"))
                    scenes = None
                clip_id = (r.get("clip_id") or "").strip() or Path(rel).with_suffix("").as_posix().lstrip("/")
                text = (r.get("text_emb_path") or "").strip()
                rows.append(ClipRow(
                    video_path=video,
                    caption=r.get("caption") or "",
                    scenes=scenes,
                    fps=fps,
                    dwpose_path=_dwpose_for(rel, video, (r.get("dwpose_path") or "").strip(), root),
                    text_emb_path=_resolve(text, root) if text else None,
                    clip_id=clip_id,
                    extra={k: v for k, v in r.items() if k not in KNOWN_COLUMNS and k is not None},
                ))
    return rows


METADATA_COLUMNS = ("video_path", "caption", "scenes", "fps")


def write_metadata_csv(path: str | Path, rows: list[dict]) -> Path:
    """Write a metadata CSV (``video_path``, ``caption``, ``scenes``, ``fps``), the format ``read_rows`` reads."""
    import csv

    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        wr = csv.DictWriter(f, fieldnames=list(METADATA_COLUMNS))
        wr.writeheader()
        wr.writerows(rows)
    return path
