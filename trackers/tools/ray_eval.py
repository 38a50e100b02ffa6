"""`eval --ray [ADDRESS]`: sequence x tracker jobs as Ray tasks.

With an address (`ray://head:10001`, `head:6379` or `auto`) the jobs go to that cluster; every
node needs SiamScope importable and the dataset's images at the same path (a shared file system):
a job reads its frames itself and returns only boxes, confidences and times, which the driver
writes. Without an address a local Ray is started with this machine's cores.

A task whose worker process dies (killed, out of memory, node lost) is run again by Ray
(`max_retries`); a job that raises is not retried (the same input fails the same way) and its
error is reported.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from ..core.paths import REPO_ROOT
from .eval_core import EvalError
from .eval_jobs import MAX_ATTEMPTS, EvalJob, JobResult, default_workers, run_job


def available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def _run_job_task(job: EvalJob) -> JobResult:
    return run_job(job)


def run_ray(
    jobs: list[EvalJob],
    on_result: Callable[[JobResult], None],
    address: str | None = None,
    note: Callable[[str], None] = lambda m: None,
) -> int:
    """Run the jobs as Ray tasks; on_result is called in the driver as each one finishes. Returns the
    number of CPUs the cluster offered."""
    import ray

    env = {"PYTHONPATH": os.pathsep.join(p for p in (REPO_ROOT, os.environ.get("PYTHONPATH")) if p)}
    for var in ("SIAMSCOPE_MODELS", "SIAMSCOPE_QUICK_PARITY"):
        if var in os.environ:
            env[var] = os.environ[var]
    started_here = not ray.is_initialized()
    if started_here:
        kwargs = dict(
            runtime_env={"env_vars": env}, include_dashboard=False, log_to_driver=False, configure_logging=False
        )
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                # a small object store: the results are a few arrays per job
                ray.init(num_cpus=default_workers(), object_store_memory=200 * 1024 * 1024, **kwargs)
        except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ValueError...
            where = f"the Ray cluster at {address!r}" if address else "a local Ray"
            raise EvalError(f"cannot start or reach {where}: {' '.join(str(e).split())[:300]}") from None
    try:
        cpus = int(ray.cluster_resources().get("CPU", 0))
        note(f"ray: {len(jobs)} jobs on {cpus} CPUs" + (f" at {address}" if address else " (local)"))
        task = ray.remote(num_cpus=1, max_retries=MAX_ATTEMPTS - 1, retry_exceptions=False)(_run_job_task)
        pending = {task.options(name=f"eval {j.tracker} x {j.sequence.name}").remote(j): j for j in jobs}
        try:
            _collect(ray, pending, on_result)
        except BaseException:
            # SIGINT / SIGTERM (eval_jobs.SignalStop) or an error: the jobs still running are cancelled,
            # their workers killed; a local Ray is shut down below (its worker processes with it)
            for ref in pending:
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - a task that finished meanwhile cannot be cancelled
                    pass
            raise
        return cpus
    finally:
        if started_here:
            ray.shutdown()


def _collect(ray, pending: dict, on_result: Callable[[JobResult], None]) -> None:
    """Hand each finished task's result to on_result (through eval_jobs.deliver) as it arrives."""
    from .eval_jobs import deliver

    while pending:
        # a bounded wait: the driver returns to Python often enough for a signal to stop it
        done, _ = ray.wait(list(pending), num_returns=1, timeout=0.5)
        if not done:
            continue
        ref = done[0]
        job = pending.pop(ref)
        try:
            result = ray.get(ref)
        except ray.exceptions.WorkerCrashedError:
            raise EvalError(f"job {job.tracker} x {job.sequence.name}: its worker died {MAX_ATTEMPTS} times") from None
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if getattr(e, "cause", None) is not None else e
            if isinstance(cause, EvalError):
                raise EvalError(str(cause)) from None
            raise EvalError(
                f"job {job.tracker} x {job.sequence.name} failed: {type(cause).__name__}: {cause}"
            ) from None
        deliver(on_result, result)
