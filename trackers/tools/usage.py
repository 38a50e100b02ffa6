"""What the command line shares and the core does not know: the usage error (one line, exit code 2)
and the options `track`, `eval` and `bench` take alike (--threads, --engine).

`UsageError` is here rather than in cli.py so that the commands cli.py lists can raise it without
importing cli.py back. Below the commands, code raises `trackers.core.base.InvalidRequest` (a
ValueError), which the command line reports the same way."""

from __future__ import annotations

from ..core import compute
from ..core.base import InvalidRequest


class UsageError(InvalidRequest):
    """A problem with what the user asked for on the command line: printed as one line, exit code 2."""


def add_compute_arguments(p) -> None:
    """--threads and --engine, the same for track, eval and bench (trackers/core/compute.py, engines.py)."""
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="compute threads for torch, ONNX Runtime and OpenCV (default 0: every core but one)",
    )
    p.add_argument(
        "--engine",
        default="auto",
        choices=["auto", "torch", "onnxruntime"],
        help="what runs the per-frame network (default auto: the one measured fastest here, "
        "decided once per model and cached)",
    )


def apply_compute(args) -> compute.ComputePolicy:
    """Apply the compute policy --threads asks for; returns it."""
    if args.threads is not None and args.threads < 0:
        raise UsageError(f"--threads must be 0 (automatic: every core but one) or a positive count, got {args.threads}")
    return compute.apply(compute.decide(args.threads))
