"""The gallery of a browser session's most recent results (newest first, at most ``limit``)."""

from __future__ import annotations

from pathlib import Path


def add_result(history: list | None, video_path: str | Path, caption: str, limit: int) -> list[tuple[str, str]]:
    """A new list with (video, caption) in front and the oldest entries beyond ``limit`` dropped."""
    items = [(str(video_path), caption), *[tuple(x) for x in (history or [])]]
    return items[:max(int(limit), 0)]
