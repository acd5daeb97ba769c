"""The analytic memory plan (talkverse.perf.memory; docs/performance.md "Memory plan") for Wan2.2-S2V-14B."""

from __future__ import annotations

import pytest

from talkverse.configs import model_config
from talkverse.perf.memory import GB, plan, token_count, weight_bytes


def test_14b_weights_and_tokens():
    cfg = model_config("s2v_14b")
    plain = weight_bytes(cfg, fp8=False, dtype_bytes=2)
    assert sum(1 for k in plain if k.startswith("blocks.")) == 40
    # 16,295,755,609 parameters: 32.59 GB at 2 bytes, plus 2 more bytes for each fp32-island parameter
    assert sum(plain.values()) / GB == pytest.approx(33.16, abs=0.01)
    assert sum(weight_bytes(cfg, fp8=True).values()) < 0.55 * sum(plain.values())
    # 1024x704, 80 frames: 20 x 2816 noisy + 2816 reference + 2816 + 704 + 704 motion
    assert token_count(cfg, 704, 1024, 80, 8) == 63_360


def test_profiles_at_1024x704():
    low, fast = plan("low_vram"), plan("fast")
    assert low.peak_gb < 24 < fast.peak_gb
    assert low.weights_gb < 4 and low.host_gb > 15  # two groups in flight; the rest in CPU memory
    assert plan("low_vram", cfg_batch=False).activations_gb == pytest.approx(low.activations_gb / 2, rel=0.02)
