"""Shared fixtures: the shared real datasets (skipped with a reason locally, required in CI)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("PIXELSEG_SHARED_DATA", REPO.parent / "shared" / "data"))
CONFIGS = REPO / "configs"

# Two cores: keep each test single-threaded so timings are stable and helpers do not fight.
torch.set_num_threads(1)


def shared_dataset(name: str) -> Path:
    """Path of ``../shared/data/<name>``; skip (or fail when ``CI=true``) if it is missing."""
    path = SHARED_DATA / name
    if not path.is_dir():
        message = (
            f"shared dataset {path} is missing: get it as its README in docs/data.md says "
            "(or set PIXELSEG_SHARED_DATA)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + " — CI=true requires it")
        pytest.skip(message)
    return path


@pytest.fixture
def shared_data() -> Path:
    """The folder holding the shared datasets (skips / fails as :func:`shared_dataset`)."""
    if not SHARED_DATA.is_dir():
        shared_dataset("")
    return SHARED_DATA
