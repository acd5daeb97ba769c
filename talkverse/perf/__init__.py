"""Performance tooling: the analytic FLOP model (``flops``), timing helpers (``timing``) and the switchable
inference optimisations with the 24 GB profile (``optimize``). See docs/performance.md."""

from .flops import DiTShape, dit_forward_flops, dit_shape_from_config, mfu
from .optimize import (
                       ATTENTION_BACKENDS,
                       PROFILES,
                       PerfOptions,
                       apply_optimizations,
                       available_attention_backends,
                       best_attention_backend,
                       resolve_profile,
)

__all__ = ["DiTShape", "dit_forward_flops", "dit_shape_from_config", "mfu", "ATTENTION_BACKENDS", "PROFILES",
           "PerfOptions", "apply_optimizations", "available_attention_backends", "best_attention_backend",
           "resolve_profile"]
