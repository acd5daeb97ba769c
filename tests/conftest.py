from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO

SHARED = REPO.parent / "shared"
PARITY = SHARED / "reference" / "parity"


@pytest.fixture
def parity_dir() -> Path:
    if not PARITY.is_dir():
        pytest.skip(f"parity fixtures not present at {PARITY} (../shared/reference/parity)")
    return PARITY


@pytest.fixture(scope="session")
def ray_local():
    """One real local Ray for the whole test session (2 CPUs, no dashboard), started on first use; its address lets a
    subprocess join it (talkverse-curate --ray_address)."""
    from talkverse.curation.engine import ensure_ray

    ensure_ray(None, num_cpus=2)
    import ray

    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


PARITY_S2V14B = SHARED / "reference" / "parity_s2v14b"


@pytest.fixture
def parity14_dir() -> Path:
    if not PARITY_S2V14B.is_dir():
        pytest.skip(f"S2V-14B parity fixtures not present at {PARITY_S2V14B} (../shared/reference/parity_s2v14b)")
    return PARITY_S2V14B
