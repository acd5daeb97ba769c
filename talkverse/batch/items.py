"""Batch files (spec §14): a JSON array or JSONL of items, in generate.py's schema ({image, audio, prompt, name?, ...})
or the reference's sota_cases.json schema ({cond_image, cond_audio: {person1}}), parsed into :class:`BatchItem`.

Output names are unique across the whole batch (an error otherwise, never a silent overwrite) and every item gets its
own seed (``item.seed`` or ``base_seed + index``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..media.audio import probe_duration

log = logging.getLogger("talkverse.batch")

# Keys each item may carry. Aliases map to the canonical BatchItem field.
_KNOWN_KEYS = {
    "image", "audio", "prompt", "name", "cond_image", "cond_audio",
    "seed", "negative_prompt", "neg_prompt", "num_clips", "num_clip", "video", "pose_video",
}
_ALIASES = {"negative_prompt": "neg_prompt", "num_clips": "num_clip"}


class BatchFileError(ValueError):
    """A batch file cannot be used; the message names the file, the line/item and the problem."""


@dataclass
class BatchItem:
    """One entry of a batch file, with paths resolved and extras normalised."""

    index: int  # position in the file (0-based, counting items, not lines)
    image: str
    audio: str
    prompt: str | None = None
    name: str | None = None  # output stem; defaults to f"{index:05d}_{Path(image).stem}"
    seed: int | None = None
    negative_prompt: str | None = None
    num_clips: int | None = None
    video: str | None = None  # dubbing source (optional)
    pose_video: str | None = None  # S2V-14B pose (DWPose) video (optional)

    def __post_init__(self) -> None:
        if self.name is None:
            self.name = f"{self.index:05d}_{Path(self.image).stem}"


# ----------------------------------------------------------------------------------------------- parsing


def _resolve_path(value: str, base_dir: Path) -> str:
    """Relative paths: the batch file's folder if the file exists there, else the current directory."""
    p = Path(value).expanduser()
    if not p.is_absolute():
        candidate = base_dir / p
        p = candidate if candidate.exists() else Path.cwd() / p
    return os.path.normpath(str(p))


def check_name(name: str) -> str | None:
    """Return why ``name`` is not a safe output file stem, or None if it is."""
    if not name or not name.strip():
        return "is empty"
    if "/" in name or "\\" in name or (os.sep in name) or (os.altsep and os.altsep in name):
        return "contains a path separator"
    if name in (".", ".."):
        return "is not a file name"
    if name.startswith("."):
        return "starts with '.' (hidden files are reserved for the runner's bookkeeping)"
    if any(ord(c) < 32 or c == "\x7f" for c in name):
        return "contains a control character"
    if len(name.encode("utf-8")) > 200:
        return "is longer than 200 bytes"
    return None


def _parse_item(obj: Any, index: int, where: str, base_dir: Path) -> BatchItem:
    """Validate one decoded JSON object; ``where`` is e.g. "file.jsonl, line 3 (item 2)"."""

    def fail(msg: str) -> BatchFileError:
        return BatchFileError(f"{where}: {msg}")

    if not isinstance(obj, dict):
        raise fail(f"expected a JSON object, got {type(obj).__name__}")

    unknown = sorted(set(obj) - _KNOWN_KEYS)
    if unknown:
        log.warning("%s: ignoring unknown key(s) %s", where, ", ".join(map(repr, unknown)))

    def get_str(key: str, *, required: bool = False) -> str | None:
        v = obj.get(key)
        if v is None:
            if required:
                raise fail(f"missing required key {key!r}")
            return None
        if not isinstance(v, str):
            raise fail(f"{key!r} must be a string, got {type(v).__name__}")
        if required and not v.strip():
            raise fail(f"{key!r} is empty")
        return v

    # Two schemas: generate.py's {"image", "audio"} and sota_cases.json's {"cond_image", "cond_audio": {"person1"}}.
    for plain, cond in (("image", "cond_image"), ("audio", "cond_audio")):
        if plain in obj and cond in obj:
            raise fail(f"has both {plain!r} and {cond!r}; use one schema")
    image = get_str("cond_image" if "cond_image" in obj else "image", required=True)
    if "cond_audio" in obj:
        cond_audio = obj["cond_audio"]
        if not isinstance(cond_audio, dict):
            raise fail(f"'cond_audio' must be an object like {{\"person1\": \"a.wav\"}}, got {type(cond_audio).__name__}")
        others = sorted(k for k in cond_audio if k != "person1")
        if others:
            raise fail(f"'cond_audio' has {', '.join(map(repr, others))}: multi-person is not supported "
                       "(only 'person1' is allowed)")
        audio = cond_audio.get("person1")
        if audio is None:
            raise fail("missing required key 'cond_audio.person1'")
        if not isinstance(audio, str) or not audio.strip():
            raise fail("'cond_audio.person1' must be a non-empty string")
    else:
        audio = get_str("audio", required=True)

    # Extras and their aliases.
    extras: dict[str, Any] = {}
    for key, alias in _ALIASES.items():
        if key in obj and alias in obj:
            raise fail(f"has both {key!r} and its alias {alias!r}")
        extras[key] = obj.get(key, obj.get(alias))

    seed = obj.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise fail(f"'seed' must be a non-negative integer, got {seed!r}")
    num_clips = extras["num_clips"]
    if num_clips is not None and (isinstance(num_clips, bool) or not isinstance(num_clips, int) or num_clips < 1):
        raise fail(f"'num_clips' must be a positive integer, got {num_clips!r}")
    negative_prompt = extras["negative_prompt"]
    if negative_prompt is not None and not isinstance(negative_prompt, str):
        raise fail(f"'negative_prompt' must be a string, got {type(negative_prompt).__name__}")

    name = get_str("name")
    if name is not None:
        why = check_name(name)
        if why:
            raise fail(f"output name {name!r} {why}")
    video = get_str("video")
    pose_video = get_str("pose_video")

    return BatchItem(
        index=index,
        image=_resolve_path(image, base_dir),
        audio=_resolve_path(audio, base_dir),
        prompt=get_str("prompt"),
        name=name,
        seed=seed,
        negative_prompt=negative_prompt,
        num_clips=num_clips,
        video=_resolve_path(video, base_dir) if video is not None else None,
        pose_video=_resolve_path(pose_video, base_dir) if pose_video is not None else None,
    )


def check_unique_names(items: Sequence[BatchItem], where: Callable[[BatchItem], str], prefix: str) -> None:
    """Raise BatchFileError listing every collision. Names are compared case-insensitively because
    on a case-insensitive file system (macOS, Windows) "A.mp4" and "a.mp4" are the same file."""
    groups: dict[str, list[BatchItem]] = {}
    for it in items:
        groups.setdefault(str(it.name).casefold(), []).append(it)
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        lines = [f"  {g[0].name!r}: " + ", ".join(f"{where(it)} ({it.name!r})" for it in g) for g in clashes]
        raise BatchFileError(f"{prefix}output names must be unique across the batch; collisions:\n" + "\n".join(lines))


def read_batch_file(path: str | os.PathLike[str]) -> tuple[list[BatchItem], list[tuple[str, str]]]:
    """Parse a batch file (JSON array, or JSONL with blank and ``#`` lines ignored), leniently: (the items that can
    run, [(where, one-line reason)] for those that cannot: bad JSON on a line, a missing key, a bad value, an output
    name already taken by an earlier item). A file that cannot be read or parsed at all, or has no items, raises
    ``BatchFileError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise BatchFileError(f"{path}: cannot read batch file: {e}") from e
    base_dir = path.resolve().parent
    entries: list[tuple[str, object]] = []  # (where, decoded object or the JSON error)
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BatchFileError(f"{path}, line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from e
        entries = [(f"item {i}", obj) for i, obj in enumerate(data)]
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            where = f"line {lineno} (item {len(entries)})"
            try:
                entries.append((where, json.loads(s)))
            except json.JSONDecodeError as e:
                entries.append((where, BatchFileError(f"{path}, {where}: invalid JSON: {e.msg} at column {e.colno} "
                                                      "(expected a JSON array or one JSON object per line)")))
    if not entries:
        raise BatchFileError(f"{path}: the batch file has no items")
    items, failed, taken, taken_names = [], [], {}, {}
    for i, (where, obj) in enumerate(entries):
        try:
            if isinstance(obj, BatchFileError):
                raise obj
            item = _parse_item(obj, i, f"{path}, {where}", base_dir)
            key = str(item.name).casefold()  # "A.mp4" and "a.mp4" are one file on macOS and Windows
            if key in taken:
                raise BatchFileError(f"{path}, {where}: output names must be unique; {item.name!r} is already used by "
                                     f"{taken[key]} ({taken_names[key]!r})")
        except BatchFileError as e:
            failed.append((where, str(e)))
            continue
        taken[key], taken_names[key] = where, item.name
        items.append(item)
    return items, failed


def load_batch_file(path: str | os.PathLike[str]) -> list[BatchItem]:
    """:func:`read_batch_file`, strictly: the first item that cannot run raises ``BatchFileError``."""
    items, failed = read_batch_file(path)
    if failed:
        raise BatchFileError(failed[0][1])
    return items


# ------------------------------------------------------------------------------------------ seeds, costs


def item_seed(item: BatchItem, base_seed: int) -> int:
    """The item's own seed if set, else ``base_seed + item.index`` (never one seed for every item)."""
    return int(item.seed) if item.seed is not None else int(base_seed) + item.index


def expected_cost(item: BatchItem) -> float:
    """Audio duration in seconds from a cheap header probe (0.0 if unreadable): it orders the queue, since the clip
    count (hence the generation time) grows with the audio. An unreadable file fails properly when generated."""
    return probe_duration(item.audio)
