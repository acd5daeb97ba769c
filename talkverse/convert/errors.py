"""One error type for every checkpoint problem, with a message that names the file and lists the keys."""

from __future__ import annotations


class CheckpointError(ValueError):
    """A checkpoint could not be loaded: wrong layout, missing/unexpected keys, bad shapes, unreadable file."""


def format_keys(keys, limit: int = 20) -> str:
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def key_report(what: str, missing=(), unexpected=(), mismatched=()) -> str:
    """Multi-line report of a key-set comparison; empty string when everything matched."""
    lines = []
    if missing:
        lines.append(f"  missing keys ({len(missing)}): {format_keys(missing)}")
    if unexpected:
        lines.append(f"  unexpected keys ({len(unexpected)}): {format_keys(unexpected)}")
    if mismatched:
        shown = "; ".join(f"{k}: checkpoint {tuple(a)} vs model {tuple(b)}" for k, a, b in sorted(mismatched)[:20])
        more = f" ... ({len(mismatched) - 20} more)" if len(mismatched) > 20 else ""
        lines.append(f"  shape mismatches ({len(mismatched)}): {shown}{more}")
    return (what + "\n" + "\n".join(lines)) if lines else ""
