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

Threads default to the cores this process may run on LESS ONE, which is left to the rest of the
desktop; the GUI keeps one more for its Qt thread (at least 1 thread in every case). `track`,
`eval` and `bench` take ``--threads N``; the GUI a remembered preference. `describe()` is what
`bench` prints and exports record.

Why one core is left free (measured 2026-11-26 on the 2-core development machine with
`python main.py bench --load --threads N`, bag frames, ONNX Runtime, fps idle / with one core
spinning in another process, median of 3 alternating rounds each; the benchmark ran in its own
scheduler autogroup at nice -10, so other sessions' jobs barely counted):

    tracker              1 thread: idle / busy core (ratio)   2 threads: idle / busy core (ratio)
    siamscope-default        71.1 /  60.2 (0.85)                  47.5 /  63.9 (1.34: idle is the slow one)
    nanotrack-v2            447.6 / 369.6 (0.83)                 379.3 / 250.8 (0.66)
    siamrpn-alex             18.1 /  14.6 (0.81)                  26.1 /  15.9 (0.61)
    siamrpnpp-mobilev2       13.5 /  11.5 (0.85)                  18.4 /  10.8 (0.59)
    siamfc                   13.6 /  11.8 (0.87)                  15.6 /  10.4 (0.67)

Every parallel region (an OpenMP loop, an ONNX Runtime kernel split over its pool) ends when its
slowest thread does. With as many threads as cores, one core taken by anything else halves the
share of the thread that lands there and every region waits for it: the 2-thread column loses a
third to two fifths. With one core left free the pool never shares a core, so a busy core costs
10-20 % (the decoder, the OS and the busy process's cache traffic), and on this machine that
pool's loaded figure is as high as the all-cores one (alex 14.6 vs 15.9, mobilev2 11.5 vs 10.8,
siamfc 11.8 vs 10.4). What it gives up is idle speed on the bigger networks (alex -31 %,
mobilev2 -27 %, siamfc -13 %); the two the app is used with most (nanotrack-v2, siamscope-default)
are faster at 1 thread even idle (their networks are too small to split). A desktop always has
something else running, so the default is the loaded case's. Someone with a quiet machine and a
big network passes ``--threads`` (or picks the count in the app).
"""

from __future__ import annotations

import dataclasses
import os

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
    cores: int  # cores available to the process
    threads: int  # compute threads (torch intra-op = ORT intra-op = OpenCV)
    torch_interop_threads: int
    ort_intra_op_threads: int
    ort_inter_op_threads: int
    ort_allow_spinning: bool
    opencv_threads: int
    omp_wait_policy: str
    gui_reserved_cores: int  # cores left to the Qt thread (GUI only)
    source: str  # why these values: "default", "--threads", "preference"

    def describe(self) -> dict:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line, as `bench` prints it."""
        return (
            f"compute policy ({self.source}): {self.cores} cores, {self.threads} compute threads "
            f"(torch intra-op {self.threads} / inter-op {self.torch_interop_threads}, ONNX Runtime "
            f"intra-op {self.ort_intra_op_threads} / inter-op {self.ort_inter_op_threads}, spinning "
            f"{'on' if self.ort_allow_spinning else 'off'}, OpenCV {self.opencv_threads}), "
            f"OMP_WAIT_POLICY={self.omp_wait_policy}"
            + (f", {self.gui_reserved_cores} core kept for the GUI" if self.gui_reserved_cores else "")
            + (
                f", {self.cores - self.threads - self.gui_reserved_cores} left to the rest of the machine"
                if self.source == "default" and self.cores > self.threads + self.gui_reserved_cores
                else ""
            )
        )


#: cores every automatic policy leaves to the rest of the machine (see the module's docstring)
FREE_CORES = 1


def decide(threads: int | None = None, gui: bool = False, cores: int | None = None) -> ComputePolicy:
    """The policy for `threads` compute threads (None or 0: automatic).

    Automatic: the available cores less FREE_CORES (left to the rest of the desktop, so one busy
    core does not stall every parallel region); in the GUI one fewer again, so the Qt thread that
    draws the heatmap and the channel grid never waits for a compute thread; at least 1."""
    cores = available_cores() if cores is None else max(1, int(cores))
    if threads is not None and int(threads) < 0:
        raise ValueError(f"threads must be 0 (automatic) or a positive count, got {threads}")
    if threads:
        n, source, reserved = int(threads), ("preference" if gui else "--threads"), 0
    else:
        headless = max(1, cores - FREE_CORES)
        n, source = max(1, headless - (1 if gui else 0)), "default"
        reserved = headless - n
    return ComputePolicy(
        cores=cores,
        threads=n,
        torch_interop_threads=1,
        ort_intra_op_threads=n,
        ort_inter_op_threads=1,
        ort_allow_spinning=False,
        opencv_threads=n,
        omp_wait_policy=os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        gui_reserved_cores=reserved,
        source=source,
    )


_applied: ComputePolicy | None = None


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


def ort_session_options(policy: ComputePolicy | None = None):
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


def ort_options_signature(policy: ComputePolicy | None = None) -> str:
    """The session options `ort_session_options` sets, as one short string (names `auto`'s cached
    decisions: a change of options decides again)."""
    policy = policy or current()
    opts = ort_session_options(policy)
    return (
        f"opt={int(opts.graph_optimization_level)},intra={opts.intra_op_num_threads},"
        f"inter={opts.inter_op_num_threads},mem_pattern={int(opts.enable_mem_pattern)},"
        f"arena={int(opts.enable_cpu_mem_arena)},spin={int(policy.ort_allow_spinning)}"
    )


def ort_providers() -> list[str]:
    """ONNX Runtime providers to request: CUDA only where ORT has it AND torch sees a GPU."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    if "CUDAExecutionProvider" in ort.get_available_providers():
        import torch

        if torch.cuda.is_available():
            providers.insert(0, "CUDAExecutionProvider")
    return providers
