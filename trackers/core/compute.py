"""One compute policy for every thread pool in the process (Qt-free).

Tracking speed on a desktop is lost mostly to thread pools fighting each other: torch's OpenMP
pool spin-waits between ops, ONNX Runtime's pool does the same, OpenCV has its own, and the Qt
thread plus whatever else runs on the machine want the same cores. This module decides all of
them in one place:

* the OpenMP wait policy (``OMP_WAIT_POLICY=PASSIVE``: idle OpenMP threads sleep instead of
  spinning). OpenMP reads it once, when the runtime starts, so `prepare_environment()` must run
  before torch is imported (main.py calls it first thing);
* torch intra-op threads (= the policy's thread count) and inter-op threads (1: the trackers run
  one op after another, a second pool would only compete);
* each ONNX Runtime session's intra-op threads (same count), inter-op threads (1) and
  spin-waiting (off: spinning threads steal the core the GUI, the decoder or another process
  needs; with one busy core it cost the default tracker 3.5x in speed);
* OpenCV's threads (same count: its DNN module, cv2.TrackerNano, is timed against ours).

Threads default to the cores this process may run on; the GUI keeps one of them for the Qt thread.
`track`, `eval` and `bench` take ``--threads N``; the GUI a remembered preference. `describe()`
is what `bench` prints and exports record.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

#: OpenMP's wait policy as we set it (unless the user set one)
OMP_WAIT_POLICY = "PASSIVE"


def prepare_environment(environ=None) -> None:
    """Set the OpenMP wait policy before any library starts its OpenMP runtime.

    Call before `import torch` (or anything importing it); an explicit user setting wins."""
    env = os.environ if environ is None else environ
    env.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)


def available_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's total)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


@dataclasses.dataclass(frozen=True)
class ComputePolicy:
    cores: int                  # cores available to the process
    threads: int                # compute threads (torch intra-op = ORT intra-op = OpenCV)
    torch_interop_threads: int
    ort_intra_op_threads: int
    ort_inter_op_threads: int
    ort_allow_spinning: bool
    opencv_threads: int
    omp_wait_policy: str
    gui_reserved_cores: int     # cores left to the Qt thread (GUI only)
    source: str                 # why these values: "default", "--threads", "preference"

    def describe(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line, as `bench` prints it."""
        return (f"compute policy ({self.source}): {self.cores} cores, {self.threads} compute threads "
                f"(torch intra-op {self.threads} / inter-op {self.torch_interop_threads}, ONNX Runtime "
                f"intra-op {self.ort_intra_op_threads} / inter-op {self.ort_inter_op_threads}, spinning "
                f"{'on' if self.ort_allow_spinning else 'off'}, OpenCV {self.opencv_threads}), "
                f"OMP_WAIT_POLICY={self.omp_wait_policy}"
                + (f", {self.gui_reserved_cores} core kept for the GUI" if self.gui_reserved_cores else ""))


def decide(threads: Optional[int] = None, gui: bool = False, cores: Optional[int] = None) -> ComputePolicy:
    """The policy for `threads` compute threads (None or 0: automatic).

    Automatic: every available core; in the GUI one fewer (at least 1), so the Qt thread that
    draws the heatmap and the channel grid never waits for a compute thread."""
    cores = available_cores() if cores is None else max(1, int(cores))
    if threads is not None and int(threads) < 0:
        raise ValueError(f"threads must be 0 (automatic) or a positive count, got {threads}")
    reserved = 1 if gui and cores > 1 else 0
    if threads:
        n, source = int(threads), ("preference" if gui else "--threads")
    else:
        n, source = cores - reserved, "default"
    return ComputePolicy(
        cores=cores, threads=n, torch_interop_threads=1, ort_intra_op_threads=n, ort_inter_op_threads=1,
        ort_allow_spinning=False, opencv_threads=n,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        gui_reserved_cores=reserved if not threads else 0, source=source)


_applied: Optional[ComputePolicy] = None


def apply(policy: ComputePolicy) -> ComputePolicy:
    """Set torch's and OpenCV's thread pools; ONNX Runtime sessions read it via `ort_session_options`."""
    global _applied
    import cv2
    import torch
    torch.set_num_threads(policy.threads)
    try:
        torch.set_num_interop_threads(policy.torch_interop_threads)
    except RuntimeError:
        # torch allows it once, before any inter-op work; a second apply keeps the first value
        pass
    cv2.setNumThreads(policy.opencv_threads)
    _applied = policy
    return policy


def current() -> ComputePolicy:
    """The policy applied in this process (applying the automatic one on first use)."""
    return _applied if _applied is not None else apply(decide())


def ort_session_options(policy: Optional[ComputePolicy] = None):
    """onnxruntime.SessionOptions following the policy (threads, no spin-waiting, full graph
    optimisation, quiet logging)."""
    import onnxruntime as ort
    policy = policy or current()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = policy.ort_intra_op_threads
    opts.inter_op_num_threads = policy.ort_inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    spin = "1" if policy.ort_allow_spinning else "0"
    opts.add_session_config_entry("session.intra_op.allow_spinning", spin)
    opts.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return opts


def ort_providers() -> list[str]:
    """ONNX Runtime providers to request: CUDA only where ORT has it AND torch sees a GPU."""
    import onnxruntime as ort
    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        import torch
        if torch.cuda.is_available():
            providers.insert(0, "CUDAExecutionProvider")
    return providers


# -- the command line: `track`, `eval` and `bench` take the same two options ---------------------
def add_compute_arguments(p) -> None:
    """--threads and --engine, the same for track, eval and bench (trackers/core/compute.py, engines.py)."""
    p.add_argument("--threads", type=int, default=0,
                   help="compute threads for torch, ONNX Runtime and OpenCV (default 0: every core)")
    p.add_argument("--engine", default="auto", choices=["auto", "torch", "onnxruntime"],
                   help="what runs the per-frame network (default auto: the one measured fastest here, "
                        "decided once per model and cached)")


def apply_compute(args):
    """Apply the compute policy --threads asks for; returns it."""
    from .base import UsageError
    if args.threads is not None and args.threads < 0:
        raise UsageError(f"--threads must be 0 (every core) or a positive count, got {args.threads}")
    return apply(decide(args.threads))
