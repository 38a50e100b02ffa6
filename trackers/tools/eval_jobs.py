"""Evaluation as independent sequence x tracker jobs, run here, in local processes or on Ray.

A job names its tracker (registry name, checkpoint path, device, thread count) and its sequence
(image paths and ground truth) and returns the boxes, confidences and per-frame times; it builds
its own tracker, so it can run in any process that can see the files. Results are written by the
driver only (trackers/tools/eval_results.py), so a job that dies leaves nothing behind and is simply run
again.

Executors:
- `serial`: in this process, one job after the other (what `eval` always did);
- `processes`: a pool of local processes (one per core by default); a worker that dies takes the
  pool down with it, so the pool is rebuilt and the unfinished jobs are submitted again;
- `ray`: Ray tasks (trackers/tools/ray_eval.py), retried by Ray when their worker dies.

Each job runs its tracker with `threads` torch / OpenCV threads (1 unless told), in whichever
executor, so the boxes are the same bit for bit wherever the job ran.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

import numpy as np

from .eval_core import EvalError, Sequence, run_sequence

MAX_ATTEMPTS = 3


@dataclasses.dataclass
class EvalJob:
    tracker: str
    weights: str | None
    device: str
    threads: int
    sequence: Sequence
    engine: str = "auto"  # what runs the network (trackers/core/engines.py)
    precision: str = "fp32"  # int8: the quantised graph (trackers/core/quantize.py)

    @property
    def key(self) -> tuple[str, str]:
        return (self.tracker, self.sequence.name)


@dataclasses.dataclass
class JobResult:
    tracker: str
    sequence: str
    boxes: np.ndarray  # (N, 4), NaN before the first annotated frame
    scores: np.ndarray  # (N,) the tracker's confidence, NaN where it did not track
    times: np.ndarray  # (N,) seconds in init() / track(), NaN where neither ran
    start: int = 0  # the init frame

    @property
    def key(self) -> tuple[str, str]:
        return (self.tracker, self.sequence)

    @property
    def tracked(self) -> int:
        return int(np.isfinite(self.times[self.start + 1 :]).sum())

    @property
    def seconds(self) -> float:
        t = self.times[self.start + 1 :]
        return float(np.nansum(t)) if np.isfinite(t).any() else 0.0


def set_threads(n: int) -> None:
    """The job's compute policy (trackers/core/compute.py): n threads for torch, ONNX Runtime and OpenCV."""
    from trackers.core import compute

    compute.apply(compute.decide(max(1, n)))


def run_job(job: EvalJob, set_thread_count: bool = True) -> JobResult:
    """Build the tracker and run one OPE pass over the sequence."""
    from trackers.core import registry
    from trackers.run import metrics as M

    if set_thread_count:
        set_threads(job.threads)
    seq = job.sequence
    start = int(np.argmax(M.valid_frames(seq.gt)))
    run = run_sequence(
        registry.build(job.tracker, job.weights, job.device, engine=job.engine, precision=job.precision), seq
    )
    return JobResult(job.tracker, seq.name, run.boxes, run.scores, run.times, start)


# -- progress ---------------------------------------------------------------------------------------
def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


class ProgressBar:
    """'[#####.....] 3/10 jobs  0:12 elapsed  ETA 0:28' on stderr: redrawn in place on a terminal,
    one line per finished job otherwise (logs, CI)."""

    def __init__(self, total: int, stream=None, width: int = 30):
        self.total, self.done, self.width = total, 0, width
        self.stream = stream or sys.stderr
        self.t0 = time.monotonic()
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def line(self, now: float | None = None) -> str:
        elapsed = (now if now is not None else time.monotonic()) - self.t0
        filled = int(self.width * self.done / self.total) if self.total else self.width
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        return (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} jobs  "
            f"{_clock(elapsed)} elapsed  ETA {_clock(eta) if eta is not None else '?'}"
        )

    def advance(self, note: str = "") -> None:
        self.done += 1
        text = self.line() + (f"  {note}" if note else "")
        if self.tty:
            self.stream.write("\r" + text + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write("# " + text + "\n")
        self.stream.flush()


# -- interrupts -------------------------------------------------------------------------------------
class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM during a run: the executor stopped its workers, what finished was kept.
    The message is the one line to print; `exit_code` is 128 + the signal (130, 143)."""

    def __init__(self, signum: int, message: str = ""):
        super().__init__(message or f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + int(self.signum)


class SignalStop:
    """While active (in the main thread), SIGINT and SIGTERM raise Interrupted there, so the
    executor's cleanup runs: its workers are stopped, none is left orphaned. A signal that comes
    while a finished result is being written (`hold()`) waits for the write to end; further signals
    while stopping are not acted on twice."""

    def __init__(self):
        self.signum: int | None = None
        self._raised = False
        self._held = 0
        self._old: dict = {}

    def __enter__(self):
        global _active
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
            _active = self
        return self

    def __exit__(self, *exc):
        global _active
        for sig, old in self._old.items():
            signal.signal(sig, old)
        if _active is self:
            _active = None
        return False

    def _handle(self, signum, frame):
        if self.signum is not None:
            return
        self.signum = signum
        if not self._held:
            self._raised = True
            raise Interrupted(signum)

    @contextlib.contextmanager
    def hold(self):
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
        if not self._held and self.signum is not None and not self._raised:
            self._raised = True
            raise Interrupted(self.signum)


_active: SignalStop | None = None


def deliver(on_result: Callable[[JobResult], None], result: JobResult) -> None:
    """on_result(result), a signal meanwhile waiting for it to end (a result is written whole)."""
    with _active.hold() if _active is not None else contextlib.nullcontext():
        on_result(result)


# -- executors --------------------------------------------------------------------------------------
def run_serial(jobs: list[EvalJob], on_result: Callable[[JobResult], None]) -> None:
    for job in jobs:
        deliver(on_result, run_job(job, set_thread_count=False))


def _worker_start() -> None:
    """A pool worker leaves Ctrl-C to the driver (a terminal sends it to the whole process group):
    the driver stops the workers itself and says so once, with no traceback from each worker."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    # spawn, not fork: torch's and OpenCV's thread pools do not survive a fork
    return cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_start
    )


def stop_pool(pool: cf.ProcessPoolExecutor, grace: float = 5.0) -> None:
    """End the pool's worker processes now (SIGTERM, then SIGKILL after `grace` seconds) and
    shut it down without waiting for their jobs: nothing of it outlives the driver. (The pool's
    resource tracker ends by itself once the driver and the workers, who hold its pipe, are gone.)"""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join()
    pool.shutdown(wait=True, cancel_futures=True)


def run_processes(
    jobs: list[EvalJob],
    on_result: Callable[[JobResult], None],
    workers: int,
    note: Callable[[str], None] = lambda m: None,
) -> None:
    """Jobs in a pool of local processes. A worker that dies breaks the whole pool: the pool is
    rebuilt and the jobs it had not finished are submitted again (at most MAX_ATTEMPTS times)."""
    attempts = {job.key: 0 for job in jobs}
    pending = list(jobs)
    while pending:
        with _pool(workers) as pool:
            try:
                futures = {}
                for job in pending:
                    attempts[job.key] += 1
                    futures[pool.submit(run_job, job)] = job
                broken = []
                for fut in cf.as_completed(futures):
                    job = futures[fut]
                    try:
                        result = fut.result()
                    except cf.process.BrokenProcessPool:
                        broken.append(job)
                        continue
                    deliver(on_result, result)
            except BaseException:
                stop_pool(pool)  # an interrupt (or an error writing a result): no worker is left running
                raise
        pending = []
        for job in broken:
            if attempts[job.key] >= MAX_ATTEMPTS:
                raise EvalError(
                    f"job {job.tracker} x {job.sequence.name}: its worker process died {MAX_ATTEMPTS} times"
                )
            pending.append(job)
        if pending:
            note(f"a worker process died: {len(pending)} unfinished job(s) submitted again")


def default_workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
