"""One-pass evaluation (OPE), the part every evaluation path shares: the OPE run of one tracker over
one sequence (the sequences themselves: trackers/run/sequences.py) (driven through
trackers/run/session.py, frames read as the app reads them), the per-tracker results, the table
and the plots. `python main.py eval` (trackers/tools/evaluate.py), the
job runners (eval_jobs.py, eval_run.py, ray_eval.py), the dataset layouts (datasets.py) and the
reports (eval_report.py) build on it; it imports none of them, so there is no import cycle.

Layout (OTB / GOT-10k): FOLDER/<seq>/img/*.jpg and FOLDER/<seq>/groundtruth.txt, one 'x,y,w,h'
line per frame, NaN where the target is absent. Each tracker is initialised on the first frame
with a ground-truth box and runs to the end without re-initialisation (OPE). The table gives per
sequence and overall success AUC, precision at 20 px, normalised precision at 0.2 and fps
(frames / seconds spent in track(), image decoding excluded), trackers side by side. Metrics:
trackers/run/metrics.py.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable

import cv2
import numpy as np

from ..core.paths import shared_path
from ..run import metrics as M
from ..run.sequences import EvalError, Sequence
from ..run.session import SessionError, TrackingSession

#: ../shared/bench beside the checkout (or $SIAMSCOPE_SHARED/bench); None for an installed package,
#: where the command asks for the folder (no guess from the current folder)
DEFAULT_FOLDER = shared_path("bench")


@dataclasses.dataclass
class SequenceRun:
    boxes: np.ndarray  # (N, 4), the first valid frame holds the init box
    seconds: float  # time spent in track()
    tracked: int  # frames passed to track()
    score: M.SequenceScore
    scores: np.ndarray | None = None  # (N,) the tracker's confidence (1 at init), NaN where it did not run
    times: np.ndarray | None = None  # (N,) seconds in init() / track(), NaN where neither ran

    @property
    def fps(self) -> float:
        return self.tracked / self.seconds if self.seconds > 0 else 0.0


def run_sequence(tracker, seq: Sequence) -> SequenceRun:
    """One OPE pass: init on the first frame with a ground-truth box, track every later frame.
    A sequence that carries an `init_box` (an SRE start: trackers/tools/eval_protocols.py) is
    initialised on that box instead, on the same frame."""
    valid = M.valid_frames(seq.gt)
    start = int(np.argmax(valid))
    boxes = np.full((len(seq.frames), 4), np.nan)
    scores, times = np.full(len(seq.frames), np.nan), np.full(len(seq.frames), np.nan)
    with TrackingSession.open(seq.source(), tracker) as session:
        init_box = getattr(seq, "init_box", None)
        init = tuple(init_box) if init_box is not None else tuple(seq.gt[start])
        try:
            for step in session.run(init, start=start, stop=len(seq.frames)):
                scores[step.index], times[step.index] = step.score, step.seconds
        except SessionError:
            raise EvalError(f"sequence {seq.name!r}: cannot read frame {start}") from None
        for i, box in session.boxes.items():
            boxes[i] = box
    return SequenceRun(
        boxes, session.tracked_seconds, session.tracked_frames, M.score_sequence(boxes, seq.gt), scores, times
    )


@dataclasses.dataclass
class TrackerRuns:
    name: str
    runs: dict[str, SequenceRun]

    @property
    def overall(self) -> M.SequenceScore:
        return M.mean_score([r.score for r in self.runs.values()])

    @property
    def fps(self) -> float:
        s = sum(r.seconds for r in self.runs.values())
        return sum(r.tracked for r in self.runs.values()) / s if s > 0 else 0.0


def evaluate(
    builders: dict[str, Callable[[], object]],
    sequences: list[Sequence],
    progress: Callable[[str], None] | None = None,
) -> list[TrackerRuns]:
    """Run each tracker (built fresh per sequence by its builder) over every sequence."""
    out = []
    for name, build in builders.items():
        runs = {}
        for seq in sequences:
            run = run_sequence(build(), seq)
            runs[seq.name] = run
            if progress:
                progress(f"{name} {seq.name}: AUC {run.score.auc:.3f}  {run.fps:.1f} fps")
        out.append(TrackerRuns(name, runs))
    return out


# -- report ------------------------------------------------------------------------------------
def format_table(results: list[TrackerRuns], sequences: list[Sequence]) -> str:
    cols = ("AUC", "P@20", "NP", "fps")
    cell = "{:>6s} {:>6s} {:>6s} {:>6s}"
    width = len(cell.format(*cols))
    name_w = max([len("sequence"), len("overall")] + [len(s.name) for s in sequences])
    head1 = f"{'':{name_w}s} {'':>6s} | " + " | ".join(f"{r.name[:width]:^{width}s}" for r in results)
    head2 = f"{'sequence':{name_w}s} {'frames':>6s} | " + " | ".join(cell.format(*cols) for _ in results)
    lines = [head1, head2, "-" * len(head2)]

    def row(label, n, scores_fps):
        cells = [
            cell.format(f"{s.auc:.3f}", f"{s.precision:.3f}", f"{s.norm_precision:.3f}", f"{fps:.1f}")
            for s, fps in scores_fps
        ]
        return f"{label:{name_w}s} {n:>6d} | " + " | ".join(cells)

    for seq in sequences:
        lines.append(row(seq.name, len(seq.frames), [(r.runs[seq.name].score, r.runs[seq.name].fps) for r in results]))
    lines.append("-" * len(head2))
    lines.append(row("overall", sum(len(s.frames) for s in sequences), [(r.overall, r.fps) for r in results]))
    lines.append(
        "AUC: success AUC (IoU > t, t = 0:0.05:1; perfect = 0.952), P@20: precision at 20 px, "
        "NP: normalised precision at 0.2, fps: frames / time in track(); overall = mean over sequences"
    )
    return "\n".join(lines)


_COLOURS = [
    (200, 80, 20),
    (30, 30, 220),
    (40, 160, 40),
    (20, 140, 230),
    (160, 40, 160),
    (120, 120, 0),
    (0, 0, 0),
    (90, 90, 200),
]


def draw_plot(
    path: str,
    title: str,
    xlabel: str,
    ylabel: str,
    x: np.ndarray,
    curves: list[tuple[str, np.ndarray]],
    xticks,
    size=(720, 540),
) -> None:
    """A line plot drawn with OpenCV (no plotting library is a dependency): curves over x in
    [x[0], x[-1]], y in [0, 1], legend in the lower corner the curves leave free."""
    W, H = size
    left, right, top, bottom = 70, 20, 40, 60
    img = np.full((H, W, 3), 255, np.uint8)
    pw, ph = W - left - right, H - top - bottom
    x0, x1 = float(x[0]), float(x[-1])

    def px(xv, yv):
        return (int(round(left + (xv - x0) / (x1 - x0) * pw)), int(round(top + (1 - yv) * ph)))

    font = cv2.FONT_HERSHEY_SIMPLEX
    for k in range(11):  # grid and y ticks
        yv = k / 10
        cv2.line(img, px(x0, yv), px(x1, yv), (225, 225, 225), 1)
        cv2.putText(img, f"{yv:.1f}", (left - 40, px(x0, yv)[1] + 5), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    for xv in xticks:
        cv2.line(img, px(xv, 0), px(xv, 1), (225, 225, 225), 1)
        label = f"{xv:g}"
        cv2.putText(img, label, (px(xv, 0)[0] - 4 * len(label), top + ph + 20), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.rectangle(img, (left, top), (left + pw, top + ph), (0, 0, 0), 1)
    for i, (_, ys) in enumerate(curves):
        pts = np.array([px(a, b) for a, b in zip(x, ys)], np.int32)
        cv2.polylines(img, [pts], False, _COLOURS[i % len(_COLOURS)], 2, cv2.LINE_AA)
    cv2.putText(img, title, (left, 28), font, 0.65, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, (left + pw // 2 - 5 * len(xlabel), H - 15), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ylab = np.full((24, 10 * len(ylabel) + 10, 3), 255, np.uint8)
    cv2.putText(ylab, ylabel, (4, 17), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    ylab = cv2.rotate(ylab, cv2.ROTATE_90_COUNTERCLOCKWISE)
    y_at = max(0, top + ph // 2 - ylab.shape[0] // 2)
    h = min(ylab.shape[0], H - y_at)
    img[y_at : y_at + h, 2 : 2 + ylab.shape[1]] = ylab[:h]
    # legend: lower left for falling curves (success), lower right for rising ones (precision)
    rising = np.mean([c[-1] - c[0] for _, c in curves]) > 0 if curves else False
    lw = max(len(name) for name, _ in curves) * 9 + 50 if curves else 0
    lx = left + pw - lw - 10 if rising else left + 10
    ly = top + ph - 14 - 22 * len(curves)
    cv2.rectangle(img, (lx - 6, ly - 6), (lx + lw, top + ph - 8), (255, 255, 255), -1)
    cv2.rectangle(img, (lx - 6, ly - 6), (lx + lw, top + ph - 8), (160, 160, 160), 1)
    for i, (name, _) in enumerate(curves):
        yy = ly + 10 + 22 * i
        cv2.line(img, (lx, yy), (lx + 28, yy), _COLOURS[i % len(_COLOURS)], 3, cv2.LINE_AA)
        cv2.putText(img, name, (lx + 36, yy + 5), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    from ..run.safe_output import commit, discard, temp_path_for

    tmp = temp_path_for(path)  # a temporary .png beside it, renamed over it once written
    try:
        if not cv2.imwrite(tmp, img):
            raise OSError(f"cannot write plot {path!r}")
        commit(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def write_plots(outdir: str, results: list[TrackerRuns], title: str = "", protocol: str = "OPE") -> list[str]:
    """success.png and precision.png (OTB style: legend entries carry AUC / P@20) in `outdir`."""
    os.makedirs(outdir, exist_ok=True)
    ranked_s = sorted(results, key=lambda r: -r.overall.auc)
    ranked_p = sorted(results, key=lambda r: -r.overall.precision)
    success = os.path.join(outdir, "success.png")
    precision = os.path.join(outdir, "precision.png")
    suffix = f" - {title}" if title else ""
    draw_plot(
        success,
        f"Success plot of {protocol}" + suffix,
        "overlap threshold",
        "success rate",
        M.SUCCESS_THRESHOLDS,
        [(f"{r.name} [{r.overall.auc:.3f}]", r.overall.success_curve) for r in ranked_s],
        xticks=np.linspace(0, 1, 11),
    )
    draw_plot(
        precision,
        f"Precision plot of {protocol}" + suffix,
        "location error threshold (px)",
        "precision",
        M.PRECISION_THRESHOLDS,
        [(f"{r.name} [{r.overall.precision:.3f}]", r.overall.precision_curve) for r in ranked_p],
        xticks=range(0, 51, 5),
    )
    return [success, precision]
