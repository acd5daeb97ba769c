"""The resumable, multi-worker batch queue (spec §14).

``run_batch`` hands each item to a ``generate_fn(item, output_path)`` (generate.py's runs the pipeline through
``talkverse.runner``); one failed item never stops the batch. Differences from the reference launcher (spec §15
items 4 and 5): an existing output is skipped, so rerunning the same command resumes a batch; with several workers
(one per GPU under ``torchrun``) the items form one shared dynamic queue, longest audio first; a worker claims an item
by creating ``<output_dir>/.talkverse_batch/<run_id>/<name>.claim`` with ``O_CREAT | O_EXCL``, so each item is
generated exactly once and fast workers take more items.

Claim files are small and left in place (they record which rank took which item); the whole ``.talkverse_batch``
folder can be deleted once no run is in progress. Importing this module is cheap: torch is imported only when needed.
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

from .items import BatchItem, check_name, check_unique_names, expected_cost

log = logging.getLogger("talkverse.batch")

#: Folder (under the output dir) that holds the per-run claim files.
CLAIM_DIR = ".talkverse_batch"


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
    invalid: Sequence[tuple[str, str]] = (),
) -> BatchSummary:
    """Generate every item into ``output_dir/<name><ext>``; returns this worker's summary.

    ``generate_fn(item, output_path)`` must write ``output_path`` itself, atomically (see
    :func:`atomic_output`). An exception from it marks the item failed and the run goes on; KeyboardInterrupt
    and SystemExit propagate. Existing outputs are skipped unless ``overwrite``. Items are taken longest audio
    first; with ``world_size > 1`` all workers share one queue through claim files under
    ``output_dir/.talkverse_batch/<run_id>/`` (``run_id`` required, identical on every worker, and new for each
    launch -- see :func:`make_run_id`). ``invalid``: (where, reason) of the batch file's unusable items
    (:func:`~talkverse.batch.items.read_batch_file`), counted as failed on rank 0.
    """
    logger = logger or log
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} for world_size {world_size}")
    if world_size > 1 and not run_id:
        raise ValueError("run_id is required when world_size > 1 (all workers must share it; see make_run_id())")
    if run_id is not None and check_name(run_id):
        raise ValueError(f"run_id {run_id!r} {check_name(run_id)}")
    for it in items:
        why = check_name(str(it.name))
        if why:
            raise ValueError(f"item {it.index}: output name {it.name!r} {why}")
    check_unique_names(items, lambda it: f"item {it.index}", "")
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
    if rank == 0:  # items the batch file could not describe (read_batch_file): failed, reported once
        for where, reason in invalid:
            logger.error("[rank 0] FAILED %s: %s", where, reason)
            summary.failed.append((where, reason))
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
