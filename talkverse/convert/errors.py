"""One error type for every checkpoint problem, with a message that names the file and lists the keys; and the key
comparison every loader reports with."""

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


def map_keys(path, file_keys, key_fn, expected: dict[str, tuple[int, ...]], shape_of) -> tuple[dict[str, str], list]:
    """Rename a checkpoint's keys with ``key_fn`` and compare them with a model's ``expected`` shapes.

    Returns (model key -> file key, [missing, unexpected file keys, (key, file shape, model shape) mismatches]).
    Two file keys mapping onto one model key are an error."""
    mapped: dict[str, str] = {}
    for k in file_keys:
        new = key_fn(k)
        if new in mapped:
            raise CheckpointError(f"{path}: keys {mapped[new]!r} and {k!r} both map to {new!r}")
        mapped[new] = k
    missing = [k for k in expected if k not in mapped]
    unexpected = [mapped[k] for k in mapped if k not in expected]
    mismatched = [(k, shape_of(mapped[k]), expected[k]) for k in mapped
                  if k in expected and tuple(shape_of(mapped[k])) != expected[k]]
    return mapped, [missing, unexpected, mismatched]
