"""Output-path helpers shared by the generation runner and the trainer's run-folder check (no torch)."""

from __future__ import annotations

from pathlib import Path


def nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists (what decides whether ``path`` can be created)."""
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p
