"""`eval --report FILE.html|FILE.md`: what a run measured and on what.

The HTML report is one self-contained file (the success and precision plots are embedded PNGs);
the Markdown report writes the two plots beside itself (<stem>_success.png, _precision.png).
Both hold: the overall table, the per-sequence table, fps, the long-term precision / recall /
F-score over the sequences with absence labels, the machine (CPU, cores, load, memory) and the
compute settings (device, executor, workers, threads, library versions), and the command.
"""

from __future__ import annotations

import base64
import datetime
import html
import os
import platform
import sys
import tempfile

import cv2
import numpy as np

from ..run import metrics as M
from ..run.longterm import long_term_score
from .eval_core import write_plots
from .eval_results import atomic_write


def machine() -> dict[str, str]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), cpu)
    except OSError:
        pass
    out = {
        "host OS": platform.platform(),
        "python": platform.python_version(),
        "CPU": cpu,
        "cores": str(os.cpu_count()),
    }
    try:
        out["load average (1/5/15 min)"] = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(l for l in f if l.startswith("MemTotal")).split()[1])
        out["memory"] = f"{kb / 1024**2:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    return out


def compute(info, args) -> dict[str, str]:
    import torch

    out = {
        "device": getattr(args, "device", "cpu"),
        "executor": info.executor + (f" at {info.ray_address}" if info.ray_address else ""),
        "workers": str(info.workers),
        "threads per job (torch / OpenCV)": str(info.threads)
        if info.threads
        else f"{torch.get_num_threads()} / {cv2.getNumThreads()} (process default)",
        "jobs": f"{info.jobs} ({info.reused} read back from earlier results)",
        "wall time of the jobs run": f"{info.wall_seconds:.1f} s",
        "torch": torch.__version__,
        "OpenCV": cv2.__version__,
        "numpy": np.__version__,
    }
    try:
        import onnxruntime as ort

        out["onnxruntime"] = f"{ort.__version__} ({', '.join(ort.get_available_providers())})"
    except ImportError:
        pass
    if torch.cuda.is_available():
        out["GPU"] = torch.cuda.get_device_name(0)
    return out


def long_term_rows(results, sequences, job_results) -> list[tuple[str, object]]:
    """(tracker, LongTermScore) over the scored sequences that carry absence labels, or NaN ground
    truth (the OTB layout's way to say the target is absent) in some frames."""
    lt = [
        s
        for s in sequences
        if getattr(s, "scored", True) and (getattr(s, "absent", None) is not None or not M.valid_frames(s.gt).all())
    ]
    rows = []
    for r in results:
        items = []
        for s in lt:
            jr = job_results[(r.name, s.name)]
            items.append((jr.boxes, s.gt, M.valid_frames(s.gt), jr.scores, jr.start))
        score = long_term_score(items)
        if score is not None:
            rows.append((r.name, score))
    return rows


def _tables(results, sequences, job_results, protocol=None) -> dict[str, tuple[list[str], list[list[str]]]]:
    scored = [s for s in sequences if getattr(s, "scored", True)]
    overall = (
        ["tracker", "success AUC", "P@20", "norm. P@0.2", "fps", "frames"],
        [
            [
                r.name,
                f"{r.overall.auc:.3f}",
                f"{r.overall.precision:.3f}",
                f"{r.overall.norm_precision:.3f}",
                f"{r.fps:.1f}",
                str(r.overall.frames),
            ]
            for r in sorted(results, key=lambda r: -r.overall.auc)
        ],
    )
    head = ["sequence", "layout", "frames"] + [f"{r.name} {c}" for r in results for c in ("AUC", "P@20", "fps")]
    rows = []
    for s in scored:
        row = [s.name, getattr(s, "layout", ""), str(len(s.frames))]
        for r in results:
            run = r.runs[s.name]
            row += [f"{run.score.auc:.3f}", f"{run.score.precision:.3f}", f"{run.fps:.1f}"]
        rows.append(row)
    out = {"overall": overall, "per sequence": (head, rows)}
    if protocol is not None:  # SRE / TRE: the per-start tables and the long-term rows over every start
        out.update(protocol.tables)
        lt = protocol.long_term
    else:
        lt = long_term_rows(results, sequences, job_results)
    if lt:
        out["long-term (sequences with absence labels)"] = (
            ["tracker", "precision", "recall", "F-score", "at confidence >=", "sequences"],
            [
                [n, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f_score:.3f}", f"{s.threshold:.3f}", str(s.sequences)]
                for n, s in lt
            ],
        )
    return out


def _html_table(head, rows) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(head, rows) -> str:
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _write(path: str, data) -> None:
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def check_report_path(path: str) -> None:
    """Before any tracking: a report name that cannot be written is said at once."""
    from .usage import UsageError

    if os.path.splitext(path)[1].lower() not in (".html", ".htm", ".md"):
        raise UsageError(f"--report must end in .html or .md, got {path!r}")
    if os.path.isdir(path):
        raise UsageError(f"--report {path!r} is a folder; give a file name ending in .html or .md")


def write_report(path: str, results, sequences, job_results, info, args, protocol=None) -> str:
    """protocol: None for OPE; for SRE / TRE an object with `name`, `tables` ({title: (head, rows)},
    the per-start tables) and `long_term` ([(tracker, LongTermScore)] over every start), with
    `results` already put together per sequence (trackers/tools/eval_protocols.py)."""
    check_report_path(path)
    ext = os.path.splitext(path)[1].lower()
    title = f"SiamScope evaluation: {os.path.basename(os.path.normpath(args.folder))}"
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    command = " ".join([os.path.basename(sys.argv[0])] + sys.argv[1:]) if sys.argv else ""
    tables = _tables(results, sequences, job_results, protocol)
    if protocol is not None:
        title += f" ({protocol.name.upper()})"
    settings = {"machine": machine(), "compute": compute(info, args)}
    unscored = [s.name for s in sequences if not getattr(s, "scored", True)]
    note = (
        f"{len(unscored)} sequences have a box for the first frame only (a test split) and are not scored."
        if unscored
        else ""
    )
    with tempfile.TemporaryDirectory() as tmp:
        plots = (
            write_plots(
                tmp,
                results,
                os.path.basename(os.path.normpath(args.folder)),
                protocol.name.upper() if protocol is not None else "OPE",
            )
            if results and any(r.runs for r in results)
            else []
        )
        pngs = {}
        for p in plots:
            with open(p, "rb") as f:
                pngs[os.path.basename(p)] = f.read()
    if ext == ".md":
        stem = os.path.splitext(path)[0]
        lines = [
            f"# {title}",
            "",
            f"{when} · `{command}`",
            "",
            f"Dataset: `{args.folder}`, {len(sequences)} sequences.",
        ]
        if note:
            lines += ["", note]
        for name, data in pngs.items():
            out = f"{stem}_{name}"
            atomic_write(out, lambda t, data=data: _write(t, data))
            lines += ["", f"![{name[:-4]}]({os.path.basename(out)})"]
        for name, (head, rows) in tables.items():
            lines += ["", f"## {name[:1].upper() + name[1:]}", "", _md_table(head, rows)]
        for name, kv in settings.items():
            lines += ["", f"## {name[:1].upper() + name[1:]}", "", _md_table(["", ""], [[k, v] for k, v in kv.items()])]
        text = "\n".join(lines) + "\n\n" + _LEGEND_MD
    else:
        imgs = "".join(
            f'<img alt="{n[:-4]}" src="data:image/png;base64,{base64.b64encode(d).decode()}">' for n, d in pngs.items()
        )
        parts = [
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{html.escape(when)} · <code>{html.escape(command)}</code></p>",
            f"<p>Dataset: <code>{html.escape(args.folder)}</code>, {len(sequences)} sequences. {html.escape(note)}</p>",
            f"<div>{imgs}</div>",
        ]
        for name, (head, rows) in tables.items():
            parts += [f"<h2>{html.escape(name[:1].upper() + name[1:])}</h2>", _html_table(head, rows)]
        for name, kv in settings.items():
            parts += [
                f"<h2>{html.escape(name[:1].upper() + name[1:])}</h2>",
                _html_table(["", ""], [[k, v] for k, v in kv.items()]),
            ]
        parts.append(f"<p>{html.escape(_LEGEND_MD)}</p>")
        text = (
            f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>" + "\n".join(parts) + "</body></html>\n"
        )
    atomic_write(path, lambda t: _write(t, text))
    return path


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
    "img{max-width:48%;margin-right:1%}"
)
_LEGEND_MD = (
    "Success AUC: mean over IoU thresholds 0:0.05:1 of the fraction of frames with IoU > t (perfect 0.952); "
    "P@20: centre error <= 20 px; norm. P@0.2: centre error / box size <= 0.2; fps: frames / seconds in "
    "track(); overall: mean over sequences. Frames a dataset labels absent are not scored by these; the "
    "long-term table scores them (VOT-LT precision / recall / F at the best confidence threshold).\n"
)
