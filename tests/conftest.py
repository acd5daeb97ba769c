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
