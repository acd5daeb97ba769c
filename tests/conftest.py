from __future__ import annotations

from pathlib import Path

import pytest

from helpers import REPO

SHARED = REPO.parent / "shared"
PARITY = SHARED / "reference" / "parity"


def _fixtures(folder: Path, what: str) -> Path:
    """The parity fixtures folder; its absence (a checkout without ../shared) is the one accepted skip."""
    if not folder.is_dir():
        pytest.skip(f"{what} parity fixtures not present at {folder} (../shared/reference/{folder.name})")
    return folder


@pytest.fixture
def parity_dir() -> Path:
    return _fixtures(PARITY, "TalkVerse-5B")


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
    return _fixtures(PARITY_S2V14B, "S2V-14B")
