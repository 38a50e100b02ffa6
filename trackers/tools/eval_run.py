"""One evaluation run: sequence x tracker jobs, finished ones read back, the rest run by an
executor (this process, local processes or Ray), each result written as it arrives.

The driver alone writes results (trackers/tools/eval_results.py), so whatever executor ran a job, the
files and the scores are the same.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from ..run import metrics as M
from . import eval_jobs as J
from .eval_core import EvalError, SequenceRun, TrackerRuns
from .eval_results import read_result, write_result


@dataclasses.dataclass
class RunInfo:
    executor: str  # "serial", "processes" or "ray"
    workers: int  # processes / Ray CPUs (1 for serial)
    jobs: int  # sequence x tracker pairs in the run
    reused: int  # of those, read back from an earlier run's results
    wall_seconds: float  # running the jobs (reused ones excluded)
    threads: int | None  # torch / OpenCV threads per job (None: this process's default)
    ray_address: str | None = None


def sequence_run(result: J.JobResult, seq) -> SequenceRun:
    return SequenceRun(result.boxes, result.seconds, result.tracked, M.score_sequence(result.boxes, seq.gt))


def run_evaluation(
    trackers: dict[str, str | None],
    sequences,
    device: str = "cpu",
    threads: int | None = None,
    executor: str = "serial",
    workers: int = 1,
    ray_address: str | None = None,
    results_dir: str | None = None,
    result_format: str = "otb",
    note: Callable[[str], None] = lambda m: None,
    progress_stream=None,
    show_progress: bool = True,
    engine: str = "auto",
    precision: str = "fp32",
):
    """trackers: name -> checkpoint path (None where the tracker needs none). Returns
    (list[TrackerRuns] over the scored sequences, {(tracker, seq): JobResult}, RunInfo)."""
    by_name = {s.name: s for s in sequences}
    jobs = [
        J.EvalJob(name, weights, device, threads or 1, seq, engine, precision)
        for name, weights in trackers.items()
        for seq in sequences
    ]
    results: dict[tuple[str, str], J.JobResult] = {}
    if results_dir:
        for job in jobs:
            seq = job.sequence
            start = int(M.valid_frames(seq.gt).argmax())
            # an SRE start (trackers/tools/eval_protocols.py) began from its perturbed box, not the ground truth
            init_box = getattr(seq, "init_box", None)
            done = read_result(
                results_dir,
                result_format,
                job.tracker,
                seq.name,
                len(seq.frames),
                start,
                init_box=seq.gt[start] if init_box is None else init_box,
            )
            if done is not None:
                results[job.key] = done
        if results:
            note(f"{len(results)} of {len(jobs)} sequence x tracker results already in {results_dir}: not run again")
    todo = [j for j in jobs if j.key not in results]
    if executor != "serial":
        # longest sequences first: the last jobs to start are the short ones, so workers finish together
        todo.sort(key=lambda j: -len(j.sequence.frames))
    bar = J.ProgressBar(len(todo), progress_stream) if show_progress and todo else None

    def on_result(result: J.JobResult) -> None:
        if results_dir:
            write_result(results_dir, result_format, result)
        results[result.key] = result
        if bar:
            seq = by_name[result.sequence]
            score = f"AUC {sequence_run(result, seq).score.auc:.3f}  " if getattr(seq, "scored", True) else ""
            fps = result.tracked / result.seconds if result.seconds > 0 else 0.0
            bar.advance(f"{result.tracker} x {result.sequence}: {score}{fps:.1f} fps")

    t0 = time.perf_counter()
    used_workers = 1
    reused = len(results)
    # SIGINT / SIGTERM: the executor stops its workers, what finished is already written, one line says so
    with J.SignalStop():
        try:
            if todo:
                if executor == "ray":
                    from .ray_eval import run_ray

                    used_workers = run_ray(todo, on_result, ray_address, note)
                elif executor == "processes":
                    used_workers = min(workers, len(todo))
                    run_processes_note = f"running {len(todo)} jobs in {used_workers} local processes"
                    note(run_processes_note)
                    J.run_processes(todo, on_result, used_workers, note)
                elif executor == "serial":
                    J.run_serial(todo, on_result)
                else:
                    raise EvalError(f"unknown executor {executor!r}")
        except J.Interrupted as e:
            done = len(results) - reused
            kept = (
                f", written to {results_dir} (the same command runs the rest)"
                if results_dir and done
                else ""
                if results_dir
                else " (no --results: nothing kept)"
            )
            raise J.Interrupted(
                e.signum, f"eval interrupted by {e.name}: {done} of {len(todo)} jobs finished{kept}"
            ) from None
    wall = time.perf_counter() - t0

    out = []
    for name in trackers:
        runs = {s.name: sequence_run(results[(name, s.name)], s) for s in sequences if getattr(s, "scored", True)}
        out.append(TrackerRuns(name, runs))
    info = RunInfo(executor, used_workers, len(jobs), len(jobs) - len(todo), wall, threads, ray_address)
    return out, results, info


def load_published(folder: str, sequences):
    """Raw results someone else published (pysot / OTB one txt per sequence, or GOT-10k
    <seq>/<seq>_001.txt), scored beside ours: (TrackerRuns named after the folder, {key: JobResult})."""
    import os

    name = os.path.basename(os.path.normpath(folder))
    root = os.path.dirname(os.path.normpath(folder)) or "."
    found = {}
    for seq in sequences:
        start = int(M.valid_frames(seq.gt).argmax())
        for fmt in ("otb", "got10k"):
            r = read_result(root, fmt, name, seq.name, len(seq.frames), start)
            if r is not None:
                found[(name, seq.name)] = r
                break
        else:
            raise EvalError(
                f"--compare {folder!r}: no result with {len(seq.frames)} boxes for sequence "
                f"{seq.name!r} ({seq.name}.txt or {seq.name}/{seq.name}_001.txt)"
            )
    runs = {s.name: sequence_run(found[(name, s.name)], s) for s in sequences if getattr(s, "scored", True)}
    return TrackerRuns(name, runs), found
