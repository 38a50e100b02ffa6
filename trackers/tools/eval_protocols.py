"""`eval --protocol ope|sre|tre`: the OTB benchmark's three ways to start a tracker (Wu, Lim and Yang,
"Online Object Tracking: A Benchmark", CVPR 2013; TPAMI 2015).

- OPE (one-pass evaluation): one start, on the first frame with a ground-truth box (what `eval`
  always did).
- SRE (spatial robustness): 12 starts on that same frame from a perturbed box, as a box drawn by
  hand would be: the box shifted by 10% of the target's width / height left, right, up, down and
  to the four diagonals (8), and scaled by 0.8, 0.9, 1.1, 1.2 about its centre (4). Scored against
  the unperturbed ground truth over the whole sequence.
- TRE (temporal robustness): 20 starts at evenly spaced frames of the sequence, each from the
  ground-truth box there, each run to the end of the sequence and scored over frames from its
  start. A start that falls on a frame where the target is absent moves to the next present frame.

The protocol lives only in how the starts are generated and how their results are put together:
each start is an ordinary sequence (a copy of the original, clipped for TRE, with its init box
for SRE) that the existing job runners run, write and read back like any other; nothing in the
tracking loop knows about protocols.

Naming follows the OTB MATLAB toolkit (main_running.m: `subS.name = [s.name '_' num2str(idx)]`,
idx counting from 1 in the order of `shiftTypeSet` = {'left','right','up','down','topLeft',
'topRight','bottomLeft','bottomRight','scale_8','scale_9','scale_11','scale_12'} for SRE and in
segment order for TRE): start k of sequence `bag` is the sequence `bag_k`, so its boxes are
written as RESULTS/<PROTOCOL>/<tracker>/bag_k.txt (the toolkit keeps each protocol in its own
results_<PROTOCOL> folder, which also keeps SRE's bag_1 apart from TRE's).

Two deliberate differences from the toolkit's shiftInitBB.m: the four diagonal starts move the
whole box (by 10% in x and in y) rather than one corner, as the paper describes them ("shifted
by 10% of the target size"), and boxes are kept in continuous coordinates (no rounding), clipped
to the frame as the toolkit clips them.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..run import metrics as M
from ..run.sequences import EvalError, Sequence

PROTOCOLS = ("ope", "sre", "tre")
TRE_SEGMENTS = 20
TRE_MIN_FRAMES = 20  # the toolkit's minNum: the last start leaves at least this many frames

# (toolkit name, dx, dy in units of w / h, scale)
SRE_STARTS = (
    ("left", -0.1, 0.0, 1.0),
    ("right", 0.1, 0.0, 1.0),
    ("up", 0.0, -0.1, 1.0),
    ("down", 0.0, 0.1, 1.0),
    ("topLeft", -0.1, -0.1, 1.0),
    ("topRight", 0.1, -0.1, 1.0),
    ("bottomLeft", -0.1, 0.1, 1.0),
    ("bottomRight", 0.1, 0.1, 1.0),
    ("scale_8", 0.0, 0.0, 0.8),
    ("scale_9", 0.0, 0.0, 0.9),
    ("scale_11", 0.0, 0.0, 1.1),
    ("scale_12", 0.0, 0.0, 1.2),
)


@dataclasses.dataclass(frozen=True)
class Start:
    index: int  # 1-based, the toolkit's idx
    label: str  # 'left' ... 'scale_12' (SRE), 'frame 57' (TRE), 'first frame' (OPE)
    frame: int  # the init frame in the original sequence
    box: tuple  # the init box (x, y, w, h)


def perturb_box(box, dx: float, dy: float, scale: float, frame_size: tuple | None = None) -> tuple:
    """The SRE start: `box` moved by (dx * w, dy * h) and scaled by `scale` about its centre, then
    clipped to the frame (width, height) where it is given."""
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2 + dx * w, y + h / 2 + dy * h
    nw, nh = w * scale, h * scale
    x0, y0, x1, y1 = cx - nw / 2, cy - nh / 2, cx + nw / 2, cy + nh / 2
    if frame_size is not None:
        fw, fh = frame_size
        x0, y0, x1, y1 = max(0.0, x0), max(0.0, y0), min(float(fw), x1), min(float(fh), y1)
    return (x0, y0, x1 - x0, y1 - y0)


def tre_start_frames(gt: np.ndarray, segments: int = TRE_SEGMENTS, min_frames: int = TRE_MIN_FRAMES) -> list[int]:
    """`segments` evenly spaced start frames over the frames where the target is present, the last
    leaving at least `min_frames` frames (fewer frames than that: all of them may start). A start
    on an absent frame, or on one an earlier start already took, moves to the next present frame
    (split_seq_TRE in the toolkit skips absent frames too); a sequence with fewer present frames
    than `segments` gets one start per present frame."""
    n = len(gt)
    present = np.flatnonzero(M.valid_frames(gt))
    if len(present) == 0:
        return []
    usable = present[present <= max(int(present[0]), n - min_frames)]
    grid = np.linspace(int(present[0]), int(usable[-1]), segments)
    out: list[int] = []
    for f in grid:
        k = int(np.searchsorted(present, int(np.floor(f))))  # the next present frame at or after f
        while k < len(present) and out and present[k] <= out[-1]:
            k += 1
        if k < len(present):
            out.append(int(present[k]))
    return out


def starts(seq: Sequence, protocol: str, frame_size: tuple | None = None) -> list[Start]:
    protocol = protocol.lower()
    valid = M.valid_frames(seq.gt)
    if not valid.any():
        raise EvalError(f"sequence {seq.name!r} has no frame with a ground-truth box")
    first = int(np.argmax(valid))
    if protocol == "ope":
        return [Start(1, "first frame", first, tuple(float(v) for v in seq.gt[first]))]
    if protocol == "sre":
        return [
            Start(i + 1, name, first, perturb_box(seq.gt[first], dx, dy, s, frame_size))
            for i, (name, dx, dy, s) in enumerate(SRE_STARTS)
        ]
    if protocol == "tre":
        return [
            Start(i + 1, f"frame {f}", f, tuple(float(v) for v in seq.gt[f]))
            for i, f in enumerate(tre_start_frames(seq.gt))
        ]
    raise EvalError(f"unknown protocol {protocol!r} (one of {', '.join(PROTOCOLS)})")


def frame_size(seq: Sequence) -> tuple | None:
    import cv2

    img = cv2.imread(seq.frames[0], cv2.IMREAD_UNCHANGED) if seq.frames else None
    return (img.shape[1], img.shape[0]) if img is not None else None


def start_sequence(seq: Sequence, start: Start, protocol: str) -> Sequence:
    """Start `start` of `seq` as a sequence of its own, named `<seq>_<idx>` (the toolkit's name):
    TRE clips the frames from the start frame on; SRE keeps them and carries the perturbed box as
    `init_box` (eval_core.run_sequence initialises on it instead of the ground truth). The original
    name, the start and the protocol travel along as attributes (a job may be pickled to another
    process: instance attributes go with it)."""
    per_frame = {}
    if protocol == "tre" and start.frame:
        per_frame = {"frames": seq.frames[start.frame :], "gt": seq.gt[start.frame :]}
        if getattr(seq, "absent", None) is not None:
            per_frame["absent"] = seq.absent[start.frame :]
    out = dataclasses.replace(seq, name=f"{seq.name}_{start.index}", **per_frame)
    out.base_name = seq.name
    out.start = start
    out.protocol = protocol
    out.init_box = start.box if protocol == "sre" else None
    return out


def expand(sequences: list[Sequence], protocol: str) -> list[Sequence]:
    """Every start of every sequence as its own sequence (OPE: the sequences themselves)."""
    protocol = protocol.lower()
    if protocol == "ope":
        return list(sequences)
    out = []
    for seq in sequences:
        size = frame_size(seq) if protocol == "sre" else None
        out += [start_sequence(seq, st, protocol) for st in starts(seq, protocol, size)]
    return out


# -- putting the starts together ---------------------------------------------------------------------
def aggregate(results, sequences: list[Sequence], expanded: list[Sequence]):
    """Per-start TrackerRuns (keyed by `<seq>_<idx>`) -> per-sequence TrackerRuns (keyed by the
    original name): a sequence's curves are the mean of its starts' curves (the toolkit's
    per-sequence average over its 12 / 20 runs), its time and frames the sum. The overall figure
    (TrackerRuns.overall) is then the mean over sequences, as for OPE."""
    from .eval_core import SequenceRun, TrackerRuns

    by_base: dict[str, list[str]] = {}
    for s in expanded:
        by_base.setdefault(getattr(s, "base_name", s.name), []).append(s.name)
    out = []
    for r in results:
        runs = {}
        for seq in sequences:
            parts = [r.runs[n] for n in by_base.get(seq.name, []) if n in r.runs]
            if not parts:
                continue
            runs[seq.name] = SequenceRun(
                np.empty((0, 4)),
                sum(p.seconds for p in parts),
                sum(p.tracked for p in parts),
                M.mean_score([p.score for p in parts]),
            )
        out.append(TrackerRuns(r.name, runs))
    return out


def per_start_rows(results, expanded: list[Sequence]) -> tuple[list[str], list[list[str]]]:
    """(head, rows): for each start index, its label(s) and each tracker's mean AUC over the
    sequences (SRE: the same 12 perturbations for every sequence; TRE: the k-th segment)."""
    by_index: dict[int, list[Sequence]] = {}
    for s in expanded:
        by_index.setdefault(s.start.index, []).append(s)
    head = ["start", "init"] + [f"{r.name} AUC" for r in results]
    rows = []
    for idx in sorted(by_index):
        seqs = by_index[idx]
        labels = sorted({s.start.label for s in seqs})
        label = labels[0] if len(labels) == 1 else f"{len(seqs)} sequences"
        row = [str(idx), label]
        for r in results:
            aucs = [r.runs[s.name].score.auc for s in seqs if s.name in r.runs]
            row.append(f"{np.mean(aucs):.3f}" if aucs else "-")
        rows.append(row)
    return head, rows


def per_run_rows(results, expanded: list[Sequence]) -> tuple[list[str], list[list[str]]]:
    """(head, rows): every (sequence, start) with its init frame and box and each tracker's AUC."""
    head = ["run", "sequence", "start", "init frame", "init box"] + [f"{r.name} AUC" for r in results]
    rows = []
    for s in expanded:
        st = s.start
        row = [s.name, s.base_name, st.label, str(st.frame), ",".join(f"{v:.1f}" for v in st.box)]
        row += [f"{r.runs[s.name].score.auc:.3f}" if s.name in r.runs else "-" for r in results]
        rows.append(row)
    return head, rows


def format_rows(head: list[str], rows: list[list[str]]) -> str:
    """A plain-text table for the terminal."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(
        c.rjust(w) if i > 1 else c.ljust(w)  # noqa: E731
        for i, (c, w) in enumerate(zip(cells, widths))
    )
    return "\n".join([line(head), "-" * len(line(head))] + [line(r) for r in rows])


def long_term_per_sequence(results, sequences: list[Sequence], expanded: list[Sequence], job_results):
    """{sequence: [(tracker, LongTermScore)]} for each scored sequence with absent frames, over all
    of its starts (VOT-LT precision / recall / F kept under every protocol)."""
    from .eval_report import long_term_rows

    out = {}
    for seq in sequences:
        mine = [s for s in expanded if getattr(s, "base_name", s.name) == seq.name]
        rows = long_term_rows(results, mine, job_results)
        if rows:
            out[seq.name] = rows
    return out


@dataclasses.dataclass
class ProtocolSummary:
    name: str  # "sre" / "tre"
    results: list  # TrackerRuns per original sequence (means over its starts)
    tables: dict  # {title: (head, rows)}: per start, per run, long-term per sequence
    long_term: list  # [(tracker, LongTermScore)] over every start of every sequence
    long_term_by_sequence: dict  # {sequence: [(tracker, LongTermScore)]}


def summarise(
    protocol: str, results, sequences: list[Sequence], expanded: list[Sequence], job_results
) -> ProtocolSummary:
    from .eval_report import long_term_rows

    scored = [s for s in sequences if getattr(s, "scored", True)]
    scored_runs = [s for s in expanded if getattr(s, "scored", True)]
    by_seq = long_term_per_sequence(results, scored, scored_runs, job_results)
    tables = {
        f"{protocol.upper()} per start (mean AUC over sequences)": per_start_rows(results, scored_runs),
        f"{protocol.upper()} per run": per_run_rows(results, scored_runs),
    }
    if by_seq:
        tables["long-term per sequence (over its starts)"] = (
            ["sequence", "tracker", "precision", "recall", "F-score"],
            [
                [seq, n, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f_score:.3f}"]
                for seq, rows in by_seq.items()
                for n, s in rows
            ],
        )
    return ProtocolSummary(
        protocol,
        aggregate(results, scored, scored_runs),
        tables,
        long_term_rows(results, expanded, job_results),
        by_seq,
    )
