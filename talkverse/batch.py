"""Batch generation: batch-file parsing and a resumable, multi-worker runner (spec §14).

This module is independent of the model. ``generate.py`` parses the batch file with
:func:`load_batch_file` and hands :func:`run_batch` a ``generate_fn(item, output_path)`` that runs the
pipeline for one item. Differences from the reference launcher (spec §15 items 4 and 5):

* output names are unique across the whole batch (an error otherwise, never a silent overwrite);
* every item gets its own seed (``item.seed`` or ``base_seed + index``);
* an existing output is skipped, so rerunning the same command resumes a batch;
* with several workers (one per GPU under ``torchrun``) the items form one shared dynamic queue, longest audio
  first; a worker claims an item by creating ``<output_dir>/.talkverse_batch/<run_id>/<name>.claim`` with
  ``O_CREAT | O_EXCL``, so each item is generated exactly once and fast workers take more items.

Claim files are small and left in place (they record which rank took which item); the whole
``.talkverse_batch`` folder can be deleted once no run is in progress.

Importing this module is cheap: torch, soundfile and PyAV are imported only when needed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BatchFileError",
    "BatchItem",
    "BatchSummary",
    "CLAIM_DIR",
    "atomic_output",
    "expected_cost",
    "gather_summaries",
    "item_seed",
    "load_batch_file",
    "make_run_id",
    "run_batch",
]

log = logging.getLogger(__name__)

#: Folder (under the output dir) that holds the per-run claim files.
CLAIM_DIR = ".talkverse_batch"

# Keys each item may carry. Aliases map to the canonical BatchItem field.
_KNOWN_KEYS = {
    "image", "audio", "prompt", "name", "cond_image", "cond_audio",
    "seed", "negative_prompt", "neg_prompt", "num_clips", "num_clip", "video",
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


def _check_name(name: str) -> str | None:
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
        why = _check_name(name)
        if why:
            raise fail(f"output name {name!r} {why}")
    video = get_str("video")

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
    )


def _check_unique_names(items: Sequence[BatchItem], where: Callable[[BatchItem], str], prefix: str) -> None:
    """Raise BatchFileError listing every collision. Names are compared case-insensitively because
    on a case-insensitive file system (macOS, Windows) "A.mp4" and "a.mp4" are the same file."""
    groups: dict[str, list[BatchItem]] = {}
    for it in items:
        groups.setdefault(str(it.name).casefold(), []).append(it)
    clashes = [g for g in groups.values() if len(g) > 1]
    if clashes:
        lines = [f"  {g[0].name!r}: " + ", ".join(f"{where(it)} ({it.name!r})" for it in g) for g in clashes]
        raise BatchFileError(f"{prefix}output names must be unique across the batch; collisions:\n" + "\n".join(lines))


def load_batch_file(path: str | os.PathLike[str]) -> list[BatchItem]:
    """Parse a batch file (JSON array, or JSONL with blank and ``#`` lines ignored) into items."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise BatchFileError(f"{path}: cannot read batch file: {e}") from e
    base_dir = path.resolve().parent
    items: list[BatchItem] = []
    where_of: dict[int, str] = {}

    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BatchFileError(f"{path}, line {e.lineno} column {e.colno}: invalid JSON: {e.msg}") from e
        for i, obj in enumerate(data):
            where_of[i] = f"item {i}"
            items.append(_parse_item(obj, i, f"{path}, item {i}", base_dir))
    else:
        for lineno, line in enumerate(text.splitlines(), start=1):
            s = line.strip()
            if not s or s.startswith("#"):
                continue
            i = len(items)
            try:
                obj = json.loads(s)
            except json.JSONDecodeError as e:
                raise BatchFileError(
                    f"{path}, line {lineno} (item {i}): invalid JSON: {e.msg} at column {e.colno} "
                    "(expected a JSON array or one JSON object per line)"
                ) from e
            where_of[i] = f"line {lineno} (item {i})"
            items.append(_parse_item(obj, i, f"{path}, line {lineno} (item {i})", base_dir))

    if not items:
        raise BatchFileError(f"{path}: the batch file has no items")
    _check_unique_names(items, lambda it: where_of[it.index], f"{path}: ")
    return items


# ------------------------------------------------------------------------------------------ seeds, costs


def item_seed(item: BatchItem, base_seed: int) -> int:
    """The item's own seed if set, else ``base_seed + item.index`` (never one seed for every item)."""
    return int(item.seed) if item.seed is not None else int(base_seed) + item.index


def expected_cost(item: BatchItem) -> float:
    """Audio duration in seconds from a cheap header probe; 0.0 if unreadable.

    The number of clips (hence the generation time) grows with the audio length, so this orders the queue.
    An unreadable file costs 0 here and fails properly (with its own error) when the item is generated.
    """
    try:
        import soundfile

        return float(soundfile.info(item.audio).duration)
    except Exception:
        pass
    try:
        import av

        with av.open(item.audio) as container:
            if container.duration is not None:
                return float(container.duration) / 1_000_000  # av.time_base
            for stream in container.streams.audio:
                if stream.duration is not None and stream.time_base is not None:
                    return float(stream.duration * stream.time_base)
    except Exception:
        pass
    return 0.0


# ---------------------------------------------------------------------------------------------- summary


@dataclass
class BatchSummary:
    """Per-worker (or merged) outcome of a batch run."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (name, "ExcType: message")

    def merge(self, other: BatchSummary) -> BatchSummary:
        """A new summary holding both (self first)."""
        return BatchSummary(self.done + other.done, self.skipped + other.skipped, self.failed + other.failed)

    def line(self) -> str:
        """``batch: N done, N skipped, N failed`` then one ``  FAILED <name>: <reason>`` line per failure."""
        lines = [f"batch: {len(self.done)} done, {len(self.skipped)} skipped, {len(self.failed)} failed"]
        lines += [f"  FAILED {name}: {reason}" for name, reason in self.failed]
        return "\n".join(lines)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def gather_summaries(summary: BatchSummary) -> BatchSummary:
    """Merge every rank's summary (in rank order) when torch.distributed is initialised; else return it.

    Collective: every rank must call it. With NCCL, ``all_gather_object`` needs the rank's CUDA device to be set
    (``torch.cuda.set_device``) beforehand.
    """
    try:
        import torch.distributed as dist
    except Exception:  # torch missing or built without distributed support
        return summary
    if not (dist.is_available() and dist.is_initialized()):
        return summary
    gathered: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, summary)
    merged = BatchSummary()
    for s in gathered:
        merged = merged.merge(s)
    return merged


def make_run_id() -> str:
    """A fresh run id, the same on every rank (rank 0's is broadcast when torch.distributed is initialised).

    Collective when distributed is initialised. ``TORCHELASTIC_RUN_ID`` is not used on purpose: without
    ``--standalone`` torchrun sets it to the constant "none", whose claims would block a rerun.
    """
    run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]
    try:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            box = [run_id]
            dist.broadcast_object_list(box, src=0)
            run_id = str(box[0])
    except ImportError:
        pass
    return run_id


# ----------------------------------------------------------------------------------------------- runner


@contextlib.contextmanager
def atomic_output(output_path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``output_path`` (same extension, so muxers infer the format); on
    success it is renamed onto ``output_path`` in one step, on error it is removed. For generate_fn authors."""
    output_path = Path(output_path)
    tmp = output_path.with_name(f".{output_path.stem}.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}{output_path.suffix}")
    try:
        yield tmp
        os.replace(tmp, output_path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _claim(claim_dir: Path, name: str, rank: int) -> bool:
    """Atomically claim ``name`` for this worker; False if another worker already has it."""
    try:
        fd = os.open(claim_dir / f"{name}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as f:  # who took it, for debugging
        f.write(json.dumps({"rank": rank, "pid": os.getpid(), "host": socket.gethostname(), "time": time.time()}))
    return True


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__


def run_batch(
    items: Sequence[BatchItem],
    output_dir: str | os.PathLike[str],
    generate_fn: Callable[[BatchItem, Path], None],
    *,
    rank: int = 0,
    world_size: int = 1,
    run_id: str | None = None,
    overwrite: bool = False,
    logger: logging.Logger | None = None,
    ext: str = ".mp4",
) -> BatchSummary:
    """Generate every item into ``output_dir/<name><ext>``; returns this worker's summary.

    ``generate_fn(item, output_path)`` must write ``output_path`` itself, atomically (see
    :func:`atomic_output`). An exception from it marks the item failed and the run goes on; KeyboardInterrupt
    and SystemExit propagate. Existing outputs are skipped unless ``overwrite``. Items are taken longest audio
    first; with ``world_size > 1`` all workers share one queue through claim files under
    ``output_dir/.talkverse_batch/<run_id>/`` (``run_id`` required, identical on every worker, and new for each
    launch -- see :func:`make_run_id`).
    """
    logger = logger or log
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world_size {world_size}")
    if world_size > 1 and not run_id:
        raise ValueError("run_id is required when world_size > 1 (all workers must share it; see make_run_id())")
    if run_id is not None and _check_name(run_id):
        raise ValueError(f"run_id {run_id!r} {_check_name(run_id)}")
    for it in items:
        why = _check_name(str(it.name))
        if why:
            raise ValueError(f"item {it.index}: output name {it.name!r} {why}")
    _check_unique_names(items, lambda it: f"item {it.index}", "")
    if not ext.startswith("."):
        ext = "." + ext

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    claim_dir: Path | None = None
    if run_id is not None:
        claim_dir = output_dir / CLAIM_DIR / run_id
        claim_dir.mkdir(parents=True, exist_ok=True)

    # The same deterministic order on every worker: longest audio first, then file order.
    costs = {it.index: expected_cost(it) for it in items}
    order = sorted(items, key=lambda it: (-costs[it.index], it.index))

    summary = BatchSummary()
    from tqdm.auto import tqdm

    bar = tqdm(total=len(order), desc=f"batch rank {rank}", unit="item", position=rank, leave=world_size == 1,
               disable=not sys.stderr.isatty())
    try:
        for it in order:
            name = str(it.name)
            bar.update(1)
            # Claim before looking at the output so that a skip is also reported by exactly one worker.
            if claim_dir is not None and not _claim(claim_dir, name, rank):
                continue
            out = output_dir / f"{name}{ext}"
            if out.exists() and not overwrite:
                logger.info("[rank %d] skip %s: %s exists", rank, name, out)
                summary.skipped.append(name)
                continue
            logger.info("[rank %d] start %s (audio %.1f s)", rank, name, costs[it.index])
            t0 = time.perf_counter()
            try:
                generate_fn(it, out)
                if not out.exists():
                    raise RuntimeError(f"generate_fn returned without writing {out}")
            except Exception as e:  # noqa: BLE001 -- one bad item must not stop the batch
                reason = _one_line(e)
                logger.error("[rank %d] FAILED %s: %s", rank, name, reason)
                logger.debug("[rank %d] traceback for %s:\n%s", rank, name, traceback.format_exc())
                summary.failed.append((name, reason))
            else:
                logger.info("[rank %d] done %s in %.1f s -> %s", rank, name, time.perf_counter() - t0, out)
                summary.done.append(name)
            bar.set_postfix(done=len(summary.done), skipped=len(summary.skipped), failed=len(summary.failed))
    finally:
        bar.close()
    return summary
