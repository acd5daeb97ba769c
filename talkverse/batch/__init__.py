"""Batch generation: batch files (``items``) and the resumable multi-worker queue (``queue``). Light to import."""

from .items import BatchFileError, BatchItem, expected_cost, item_seed, load_batch_file, read_batch_file
from .queue import CLAIM_DIR, BatchSummary, atomic_output, gather_summaries, make_run_id, run_batch

__all__ = ["CLAIM_DIR", "BatchFileError", "BatchItem", "BatchSummary", "atomic_output", "expected_cost",
           "gather_summaries", "item_seed", "load_batch_file", "make_run_id", "read_batch_file", "run_batch"]
