"""Shared test helpers: where ../shared lives (skipping with a clear message when a file is absent),
the IoU of two boxes, a one-thread fixture, the torch device the device-aware tests run on."""

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

import trackers.families  # noqa: E402,F401 - the project's trackers in the registry (as the app and CLI do)

#: where the device-aware tests (those taking the `device` fixture) run their networks:
#: SIAMSCOPE_DEVICE=cuda runs them on the GPU (.ci/gpu-check does), default the CPU
TEST_DEVICE = os.environ.get("SIAMSCOPE_DEVICE", "cpu")
#: network-output tolerance (of max|ref|) on CUDA: cuDNN's fp32 kernels sum in another order than
#: the CPU's, like ONNX Runtime's, so the fixture README's tolerance for another engine applies
CUDA_NET_RTOL = 1e-4


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


@pytest.fixture(scope="session")
def device() -> str:
    """The torch device named by SIAMSCOPE_DEVICE ("cpu" by default); skips, saying why, when this
    machine does not have it (SIAMSCOPE_DEVICE=cuda without a usable GPU)."""
    if TEST_DEVICE != "cpu":
        from models.device import DeviceError, check_device

        try:
            check_device(TEST_DEVICE)
        except DeviceError as e:
            pytest.skip(f"SIAMSCOPE_DEVICE={TEST_DEVICE}: {e}")
    return TEST_DEVICE


@pytest.fixture(scope="session")
def cuda() -> str:
    """For CUDA-only tests: "cuda", or a skip naming why there is no GPU here."""
    from models.device import DeviceError, check_device

    try:
        check_device("cuda")
    except DeviceError as e:
        pytest.skip(f"needs a CUDA GPU: {e}")
    return "cuda"


def net_rtol(device: str, cpu_rtol: float) -> float:
    """A parity test's network tolerance on `device` (its own CPU tolerance on the CPU)."""
    return cpu_rtol if device == "cpu" else max(cpu_rtol, CUDA_NET_RTOL)


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


def pytest_collection_modifyitems(config, items):
    """SIAMSCOPE_DEVICE_ONLY=1 keeps only the tests that run on SIAMSCOPE_DEVICE (those taking the
    `device` or `cuda` fixture) and tests/test_device.py: .ci/gpu-check's short list for the GPU."""
    if os.environ.get("SIAMSCOPE_DEVICE_ONLY") != "1":
        return
    keep, drop = [], []
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        (keep if uses & {"device", "cuda"} or item.fspath.basename == "test_device.py" else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
