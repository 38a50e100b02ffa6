"""Shared test helpers: where ../shared lives (skipping with a clear message when a file is absent),
the IoU of two boxes, a one-thread fixture."""
import os
import sys
import tempfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
SHARED = os.environ.get("SIAMSCOPE_SHARED", os.path.join(ROOT, "..", "shared"))

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# exported ONNX graphs and `auto` engine decisions go to a throw-away folder, not the user's cache
os.environ.setdefault("SIAMSCOPE_CACHE", tempfile.mkdtemp(prefix="siamscope-test-cache-"))


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


@pytest.fixture
def one_thread():
    """One torch thread for the test: on the shared 2-core CI machine one is faster than two fighting."""
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def box_iou(a, b) -> float:
    """Intersection over union of two (x, y, w, h) boxes."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0
