"""Where a tracker's network runs and in which precision; headless (no Qt). It lives in models/
so that the ONNX Runtime engines here use the same provider checks as the trackers above.

* `check_device(name)`: a torch device the machine really has, or one DeviceError that says why
  not (asked for CUDA on a machine without a usable GPU, a typo), before any weights are loaded.
* `ort_providers(device)` / `ort_session(...)`: ONNX Runtime's providers for a device. A session
  asked for the CUDA provider that ORT silently built on the CPU instead (onnxruntime-gpu lists the
  provider even where the CUDA libraries or the GPU are missing) is refused with the reason, so a
  "CUDA" figure is never a CPU one.
* fp32 on CUDA means fp32: cuDNN's TF32 convolutions (on by default in torch) round inputs to a
  10-bit mantissa, which moves the networks' outputs by ~1e-3 relative and breaks the parity the
  tests prove; `strict_fp32` turns TF32 off. fp16 is a separate, explicit precision.
"""

from __future__ import annotations

import torch

PRECISIONS = ("fp32", "fp16", "int8")
#: int8 is an ONNX Runtime graph (trackers/core/quantize.py): the torch module around it stays fp32
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "int8": torch.float32}


class DeviceError(ValueError):
    """A device, provider or precision this machine or tracker cannot give (one clear line)."""


def check_device(name: str | torch.device) -> torch.device:
    """The torch device for `name` ("cpu", "cuda", "cuda:1"), checked against this machine."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"unknown device {name!r}: use cpu or cuda ({e})") from None
    if dev.type == "cpu":
        return dev
    if dev.type != "cuda":
        raise DeviceError(f"device {name!r} is not supported: use cpu or cuda")
    if not torch.cuda.is_available():
        build = f"torch {torch.__version__}" + ("" if torch.version.cuda else ", a build without CUDA")
        raise DeviceError(f"device {name!r} asked for, but {build} sees no CUDA GPU here: use cpu")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    strict_fp32(dev)
    return dev


def strict_fp32(device: torch.device) -> None:
    """No TF32 on CUDA: fp32 results stay within the parity tolerances of the CPU ones."""
    if device.type == "cuda":
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def check_precision(precision: str, device: torch.device) -> torch.dtype:
    """The torch dtype for a precision on a device; fp16 only on CUDA (on the CPU it is slower
    than fp32 and some kernels have no half version); int8 only on the CPU (its torch side is fp32)."""
    if precision not in DTYPES:
        raise DeviceError(f"unknown precision {precision!r}: use {' or '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise DeviceError("fp16 runs on CUDA only (on the CPU it is slower than fp32): use --device cuda")
    if precision == "int8" and device.type != "cpu":
        raise DeviceError("int8 runs on the CPU only (ONNX Runtime's int8 kernels): use --device cpu")
    return DTYPES[precision]


def check_finite(tracker, *arrays) -> None:
    """After an fp16 network call: non-finite outputs mean the activations overflowed half
    precision's range (65504), seen with the fixtures' seeded random weights; say so instead of
    tracking on NaNs."""
    import numpy as np

    if not all(np.isfinite(a).all() for a in arrays):
        raise DeviceError(
            f"{tracker.name or type(tracker).__name__}: the network's {tracker.precision} outputs are "
            "not finite (its activations overflow half precision): run it in fp32"
        )


CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"


def ort_providers(device: torch.device) -> list:
    """ONNX Runtime providers for `device`, in order of preference."""
    import onnxruntime as ort

    if device.type != "cuda":
        return [CPU_PROVIDER]
    available = ort.get_available_providers()
    if CUDA_PROVIDER not in available:
        raise DeviceError(
            f"ONNX Runtime {ort.__version__} has no CUDA provider (it has {', '.join(available)}): "
            "install onnxruntime-gpu, or run the network with torch"
        )
    return [(CUDA_PROVIDER, {"device_id": device.index or 0}), CPU_PROVIDER]


def ort_session(model: bytes, options, device: torch.device):
    """An InferenceSession for `device`; raises DeviceError when CUDA was asked for and the session
    did not get it (ORT falls back to the CPU with only a log line)."""
    import onnxruntime as ort

    providers = ort_providers(device)
    try:
        session = ort.InferenceSession(model, options, providers=providers)
    except Exception as e:  # noqa: BLE001 - ORT raises its own exception types, one per failure
        if device.type != "cuda":
            raise
        raise DeviceError(f"ONNX Runtime could not start its CUDA provider: {str(e).splitlines()[0]}") from None
    if device.type == "cuda" and CUDA_PROVIDER not in session.get_providers():
        raise DeviceError(
            f"ONNX Runtime {ort.__version__} fell back to {', '.join(session.get_providers())}: "
            "its CUDA provider cannot run here (no GPU, or CUDA / cuDNN libraries it was built "
            "for are missing)"
        )
    return session


def move_cached_tensors(module: torch.nn.Module, device: torch.device, dtype: torch.dtype) -> None:
    """Move what the networks keep between calls outside their parameters and buffers (the
    template features of `template(z)`: tensors, and lists / tuples / dicts of them, set as plain
    attributes) to `device` and, for floating tensors, `dtype`. `Module.to` leaves those behind, so
    a tracker moved or switched to fp16 after init would feed its old template to the new network."""

    def move(v):
        if isinstance(v, torch.Tensor):
            return v.to(device, dtype) if v.is_floating_point() else v.to(device)
        if isinstance(v, list):
            return [move(x) for x in v]
        if isinstance(v, tuple):
            return tuple(move(x) for x in v)
        if isinstance(v, dict):
            return {k: move(x) for k, x in v.items()}
        return v

    for m in module.modules():
        for name, value in list(vars(m).items()):
            if name.startswith("_") and name in ("_parameters", "_buffers", "_modules") or name == "training":
                continue
            if isinstance(value, (torch.Tensor, list, tuple, dict)) and _holds_tensor(value):
                setattr(m, name, move(value))


def _holds_tensor(v) -> bool:
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, (list, tuple)):
        return any(_holds_tensor(x) for x in v)
    if isinstance(v, dict):
        return any(_holds_tensor(x) for x in v.values())
    return False
