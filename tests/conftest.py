"""Shared test helpers: where ../shared lives, and skipping with a clear message when a file is absent."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("SIAMSCOPE_SHARED", os.path.join(ROOT, "..", "shared"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def shared_path(*parts: str) -> str:
    """Path of a file in ../shared; skips the test (naming the file) when it is absent."""
    p = os.path.join(SHARED, *parts)
    if not os.path.exists(p):
        pytest.skip(f"shared file {os.path.join('..', 'shared', *parts)} is absent")
    return p


@pytest.fixture(autouse=True, scope="session")
def _torch_threads():
    # Same thread count as the fixtures were recorded with; also keeps the 2-core CI machine sane.
    import torch
    torch.set_num_threads(2)
