"""`python main.py eval`: one-pass evaluation of trackers over a folder of sequences (the command;
what every evaluation path shares, the layout it reads and the table it prints are
trackers/tools/eval_core.py's, re-exported here)."""

from __future__ import annotations

import os
import sys

# the shared part, under the names callers have always used (trackers.tools.evaluate.run_sequence, ...)
from ..run.sequences import EvalError, Sequence, find_sequences, load_sequence  # noqa: F401
from .eval_core import (  # noqa: F401  (re-exported under the names callers use)
    DEFAULT_FOLDER,
    SequenceRun,
    TrackerRuns,
    draw_plot,
    evaluate,
    format_table,
    run_sequence,
    write_plots,
)
from .usage import UsageError


def clip_sequence(seq: Sequence, first: int, end) -> Sequence:
    """Frames [first, end) of a sequence (`eval --start / --frames`: first frames that cannot be used)."""
    import dataclasses

    import numpy as np

    from ..run import metrics as M

    per_frame = {"frames": seq.frames[first:end], "gt": seq.gt[first:end]}
    if getattr(seq, "absent", None) is not None:
        per_frame["absent"] = seq.absent[first:end]
    if len(per_frame["frames"]) < 2 or not M.valid_frames(np.asarray(per_frame["gt"])).any():
        raise EvalError(f"sequence {seq.name!r} has no ground-truth box in frames {first}:{end if end else ''}")
    return dataclasses.replace(seq, **per_frame)


# -- command -----------------------------------------------------------------------------------
def default_trackers() -> list[str]:
    from trackers.core import registry

    names = {s.name for s in registry.all_trackers()}
    return [n for n in ("siamscope-default", "siamscope-effnet", "nanotrack-v2", "csrt") if n in names]


def parse_weights(items) -> dict[str, str]:
    out = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--weights takes NAME=PATH, got {item!r}")
        out[name.strip()] = path.strip()
    return out


def require_dataset_folder(folder, usage: str) -> None:
    """Outside a checkout there is no ../shared/bench to default to: say which argument to give."""
    if not folder:
        from .program import program_name

        raise UsageError(
            f"no dataset folder given (../shared/bench is the default only in a checkout): {program_name()} {usage}"
        )


def cmd_eval(args) -> int:
    from models.checkpoint import CheckpointError
    from trackers.core import registry

    from .usage import apply_compute

    apply_compute(args)
    require_dataset_folder(args.folder, "eval DIR")
    weights = parse_weights(args.weights)
    if args.report:
        from .eval_report import check_report_path

        check_report_path(args.report)
    # the output folders are checked before any tracking: a run is never thrown away for them
    from ..run.safe_output import check_output_folder

    if args.results:
        check_output_folder(args.results, "--results folder")
    if args.plots:
        check_output_folder(args.plots, "--plots folder")
    explicit = bool(args.trackers)
    names = [n.strip() for n in args.trackers.split(",") if n.strip()] if explicit else default_trackers()
    for n in names:
        registry.get(n)  # unknown names fail before any tracking
    unused = set(weights) - set(names)
    if unused:
        raise UsageError(f"--weights for {', '.join(sorted(unused))}, which is not among the trackers evaluated")
    from ..run.frame_range import parse_frame_range

    first, end = parse_frame_range(args.start, args.frames)
    try:
        from .datasets import load_dataset

        sequences = load_dataset(args.folder, args.max_frames)
        if first or end is not None:
            sequences = [clip_sequence(s, first, end) for s in sequences]
    except EvalError as e:
        raise UsageError(str(e)) from None

    builders = {}
    for n in names:
        try:
            registry.build(n, weights.get(n), args.device, engine=args.engine, precision=args.precision)  # fail now
        except CheckpointError as e:
            if explicit:
                raise
            # a default tracker whose checkpoint is not here is left out, said so, not fatal
            print(f"# {n} left out: {' '.join(str(e).split())}", file=sys.stderr)
            continue
        # jobs may run in other processes: they get the checkpoint's path, not a builder
        spec = registry.get(n)
        builders[n] = weights.get(n) or (registry.find_weights(spec) if spec.needs_weights else None)
    if not builders:
        raise UsageError("no tracker to evaluate")
    from .eval_protocols import expand

    protocol = (args.protocol or "ope").lower()
    if protocol != "ope" and args.compare:
        raise UsageError("--compare reads published OPE results: use it with --protocol ope")
    base_sequences = sequences
    try:
        sequences = expand(base_sequences, protocol)  # SRE / TRE: every start is a sequence of its own
    except EvalError as e:
        raise UsageError(str(e)) from None
    # the toolkit keeps each protocol's results apart (results_SRE, results_TRE): RESULTS/SRE/<tracker>/<seq>_<idx>.txt
    results_dir = os.path.join(args.results, protocol.upper()) if args.results and protocol != "ope" else args.results
    from .eval_run import run_evaluation

    note = lambda msg: print("# " + msg, file=sys.stderr, flush=True)  # noqa: E731
    executor, workers = choose_executor(args, len(builders) * len(sequences), note)
    fmt = args.result_format or ("got10k" if all(getattr(s, "layout", "") == "got10k" for s in sequences) else "otb")
    try:
        from .eval_run import load_published

        published = [load_published(folder, sequences) for folder in args.compare or []]  # before any tracking
        results, job_results, info = run_evaluation(
            builders,
            sequences,
            args.device,
            args.threads,
            executor,
            workers,
            args.ray or None,
            results_dir,
            fmt,
            note,
            show_progress=not args.quiet,
            engine=args.engine,
            precision=args.precision,
        )
        results += [p for p, _ in published]
        for _, jobs in published:
            job_results.update(jobs)
    except EvalError as e:
        raise UsageError(str(e)) from None
    summary = None
    if protocol != "ope":
        from .eval_protocols import summarise

        summary = summarise(protocol, results, base_sequences, sequences, job_results)
    runs_of = sequences
    sequences = base_sequences
    scored = [s for s in sequences if getattr(s, "scored", True)]
    print(
        f"{len(sequences)} sequences in {args.folder}"
        + (f", first {args.max_frames} frames" if args.max_frames else "")
    )
    if len(scored) < len(sequences):
        print(
            f"{len(sequences) - len(scored)} sequences have a box for the first frame only (a test split): "
            f"run and written, not scored"
        )
    if scored:
        from .eval_report import long_term_rows

        if summary is None:
            print(format_table(results, scored))
            long_term = long_term_rows(results, sequences, job_results)
        else:
            print(print_protocol(summary, results, scored, runs_of))
            results, long_term = summary.results, summary.long_term
        for name, lt in long_term:
            print(
                f"long-term ({lt.sequences} sequences with absence labels"
                + (f", {protocol.upper()} runs" if summary else "")
                + f") {name}: precision {lt.precision:.3f} "
                f"recall {lt.recall:.3f} F {lt.f_score:.3f} (confidence >= {lt.threshold:.3f})"
            )
    print(
        f"{info.jobs} jobs ({info.reused} read back) in {info.wall_seconds:.1f} s, {info.executor}"
        + (f" x {info.workers}" if info.executor != "serial" else "")
    )
    if args.results:
        print(
            f"results written to {results_dir} ({fmt} layout"
            + (", one file per start: <seq>_<start>.txt" if summary else "")
            + ")"
        )
    if args.report:
        from .eval_report import write_report

        print(f"report written to {write_report(args.report, results, sequences, job_results, info, args, summary)}")
    if not scored:
        return 0
    if args.plots:
        for p in write_plots(args.plots, results, os.path.basename(os.path.normpath(args.folder)), protocol.upper()):
            print(f"plot written to {p}")
    return 0


def print_protocol(summary, runs, sequences, starts) -> str:
    """The SRE / TRE table: per sequence the mean over its starts, overall the mean over sequences
    (as for OPE), then the mean over sequences of each start, then long-term F per sequence."""
    from .eval_protocols import format_rows

    n_starts = len([s for s in starts if getattr(s, "scored", True)])
    lines = [
        f"{summary.name.upper()}: {n_starts} runs over {len(sequences)} sequences; each sequence's figures "
        f"are the mean over its starts",
        format_table(summary.results, sequences),
    ]
    for title, (head, rows) in summary.tables.items():
        if title.endswith("per run"):
            continue  # one line per run: in --report and --results, not on the terminal
        lines += ["", title, format_rows(head, rows)]
    return "\n".join(lines)


def choose_executor(args, n_jobs: int, note) -> tuple[str, int]:
    """`--ray [ADDRESS]`: Ray (local processes, said so, where ray is not installed);
    `--workers N`: N local processes; neither: this process."""
    from .eval_jobs import default_workers

    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.ray is not None:
        from .ray_eval import available

        if available():
            return "ray", 0
        n = args.workers or default_workers()
        note(
            f"ray is not installed (pip install -e '.[ray]'): the {n_jobs} jobs run in {n} local processes "
            f"(one per core) instead"
        )
        return "processes", n
    if args.workers and args.workers > 1:
        return "processes", args.workers
    return "serial", 1


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate trackers on a benchmark (OTB, GOT-10k, LaSOT, TrackingNet, VOT layouts or a pysot JSON file)",
    )
    p.add_argument(
        "folder",
        nargs="?",
        default=DEFAULT_FOLDER,
        help=f"dataset folder (OTB, GOT-10k, LaSOT, TrackingNet or VOT as shipped), one sequence, or "
        f"a pysot JSON annotation file (default {DEFAULT_FOLDER})",
    )
    p.add_argument(
        "--trackers",
        help="comma-separated tracker names (default: the default tracker, "
        "nanotrack-v2, csrt; those without a checkpoint are left out)",
    )
    p.add_argument(
        "--weights",
        action="append",
        metavar="NAME=PATH",
        help="checkpoint for one tracker (repeatable); default: found in the model folders",
    )
    p.add_argument("--plots", metavar="OUTDIR", help="write success.png and precision.png there")
    p.add_argument(
        "--results",
        metavar="OUTDIR",
        help="write each result as it finishes, in the toolkits' layout (--result-format); "
        "results already there are read back, not run again (resume)",
    )
    p.add_argument(
        "--result-format",
        choices=("otb", "got10k"),
        help="otb: OUTDIR/<tracker>/<seq>.txt (pysot/OTB/LaSOT/TrackingNet); got10k: "
        "OUTDIR/<tracker>/<seq>/<seq>_001.txt; both with <seq>_time.txt "
        "(default: got10k for a GOT-10k folder, else otb)",
    )
    p.add_argument(
        "--compare",
        action="append",
        metavar="DIR",
        help="published raw results (DIR/<seq>.txt or DIR/<seq>/<seq>_001.txt, named after DIR) "
        "scored beside the trackers run (repeatable)",
    )
    p.add_argument("--report", metavar="FILE", help="write a report: FILE.html (self-contained) or FILE.md")
    p.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run the sequence x tracker jobs as Ray tasks on the cluster at ADDRESS, or on a "
        "local Ray with this machine's cores (needs the 'ray' extra; without it: local processes)",
    )
    p.add_argument("--workers", type=int, metavar="N", help="run the jobs in N local processes")
    p.add_argument(
        "--protocol",
        choices=("ope", "sre", "tre"),
        default="ope",
        help="ope: one start from the first ground-truth box; sre: the OTB's 12 perturbed starts "
        "(shifts of 10%% of w/h in 8 directions, scales 0.8/0.9/1.1/1.2); tre: 20 starts at "
        "evenly spaced frames. Results: OUTDIR/SRE|TRE/<tracker>/<seq>_<start>.txt "
        "(docs/eval-protocols.md)",
    )
    p.add_argument("--max-frames", type=int, help="only the first N frames of each sequence (quick checks)")
    from ..run.frame_range import add_frame_range_arguments

    add_frame_range_arguments(p, "start each sequence (first ground-truth box from there)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    from .usage import add_compute_arguments

    add_compute_arguments(p, precision=True)
    p.add_argument("-q", "--quiet", action="store_true", help="no per-sequence progress on stderr")
    p.set_defaults(func=cmd_eval)
