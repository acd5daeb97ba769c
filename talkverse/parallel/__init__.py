"""Multi-GPU inference of one video: Ulysses sequence parallelism and CFG parallelism (torch.distributed)."""

from .ulysses import SequenceShard, UlyssesAttnProcessor, communication_bytes_per_step, sp_forward

__all__ = ["SequenceShard", "UlyssesAttnProcessor", "communication_bytes_per_step", "sp_forward"]
