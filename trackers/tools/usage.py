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


def add_compute_arguments(p, precision: bool = False) -> None:
    """--threads and --engine, the same for track, eval and bench (trackers/core/compute.py, engines.py);
    with `precision`, --precision too (track declares its own, with --device beside it)."""
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
    if precision:
        add_precision_argument(p)


PRECISION_HELP = (
    "the network's precision: fp32 (default), fp16 (CUDA only), int8 (CPU, ONNX Runtime, opt-in: "
    "quantised on real frames from the shared folder, never chosen by --engine auto; docs/speed-int8.md)"
)


def add_precision_argument(p) -> None:
    # no argparse `choices`: a bad value is one line (apply_compute), not a usage screen
    p.add_argument("--precision", default="fp32", metavar="{fp32,fp16,int8}", help=PRECISION_HELP)


def check_precision_arg(args) -> None:
    """--precision, where the command has it: one of models.device.PRECISIONS (one line otherwise)."""
    from models.device import PRECISIONS

    value = getattr(args, "precision", "fp32")
    if value not in PRECISIONS:
        raise UsageError(f"--precision {value!r} is not one of {', '.join(PRECISIONS)}")


def apply_compute(args) -> compute.ComputePolicy:
    """Apply the compute policy --threads asks for; returns it."""
    check_precision_arg(args)
    if args.threads is not None and args.threads < 0:
        raise UsageError(f"--threads must be 0 (automatic: every core but one) or a positive count, got {args.threads}")
    return compute.apply(compute.decide(args.threads))
