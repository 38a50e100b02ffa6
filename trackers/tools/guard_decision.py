"""The default tracker's acceptance rules (issue 22.5), checked on SRE results of the validation set
(trackers/train/validation.py) against NanoTrack v2:

1. success AUC >= NanoTrack v2's - 0.01 on every sequence (mean over its 12 SRE starts);
2. VOT-LT F >= NanoTrack v2's on every sequence with absent frames (over its starts);
3. LOST on at most 2% of the frames where the target is in view;
4. after the target comes back (absent -> present), re-found within 10 frames: some frame among
   the first REFIND_FRAMES back has IoU >= REFIND_IOU and is not LOST.

    python -m trackers.tools.guard_decision VALIDATION RESULTS/SRE --candidate siamscope-default \\
        --reference nanotrack-v2 [--json FILE]

RESULTS/SRE is what `python main.py eval VALIDATION --protocol sre --results RESULTS` wrote. The
LOST state is not in the result files; it follows from the confidence file and the tracker's
LOST rule (`LOST_RULES`: the state goes LOST after `frames` frames in a row scoring below
`below`, and back to TRACKING at a frame scoring `found` or more), which is how both the default
and the guard set it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from ..run import metrics as M
from ..run.longterm import long_term_score

AUC_MARGIN = 0.01
MAX_LOST_IN_VIEW = 0.02
REFIND_FRAMES = 10
REFIND_IOU = 0.5
#: tracker -> (below, frames, found): CalibratedParams (lost_score, lost_frames, found_score) and
#: GuardParams (lost_presence, lost_frames, found_presence)
LOST_RULES = {"siamscope-default": (0.1, 10, 0.3), "siamscope-guard": (0.5, 5, 0.6)}


def lost_states(confidence: np.ndarray, start: int, rule: tuple | None) -> np.ndarray:
    """(N,) bool: LOST per frame, replayed from the per-frame confidence (frames after `start`)."""
    lost = np.zeros(len(confidence), bool)
    if rule is None:
        return lost
    below, frames, found = rule
    state, low = False, 0
    for i in range(start + 1, len(confidence)):
        c = confidence[i]
        if state:
            if c >= found:
                state, low = False, 0
        else:
            low = low + 1 if c < below else 0
            state = low >= frames
        lost[i] = state
    return lost


def comebacks(gt: np.ndarray) -> list[int]:
    """Frames where the target comes back into view after being absent."""
    v = M.valid_frames(gt)
    return [i for i in range(1, len(v)) if v[i] and not v[i - 1]]


def refound(
    boxes: np.ndarray,
    gt: np.ndarray,
    lost: np.ndarray,
    back: int,
    frames: int = REFIND_FRAMES,
    min_iou: float = REFIND_IOU,
) -> bool:
    """Whether the target coming back at `back` is found again within `frames` frames: a frame
    with IoU >= min_iou that is not LOST."""
    end = min(len(gt), back + frames)
    v = M.valid_frames(gt[back:end])
    ious = M.iou(np.nan_to_num(boxes[back:end]), np.nan_to_num(gt[back:end]))
    return bool(np.any(v & (ious >= min_iou) & ~lost[back:end]))


def _read(folder: str, tracker: str, run: str):
    from ..run.results import read_boxes

    d = os.path.join(folder, tracker)
    boxes = read_boxes(os.path.join(d, f"{run}.txt"))
    with open(os.path.join(d, f"{run}_confidence.value")) as f:
        conf = np.array([float(v) for v in f if v.strip()])
    return boxes, conf


def sequence_figures(folder: str, tracker: str, seq, runs: list) -> dict:
    """AUC (mean over starts), VOT-LT F over the starts (None without absent frames), LOST
    frames in view, comebacks and comebacks re-found, for one tracker on one sequence."""
    aucs, items, lost_in_view, in_view, backs, found = [], [], 0, 0, 0, 0
    for r in runs:
        boxes, conf = _read(folder, tracker, r.name)
        gt = r.gt
        start = int(np.argmax(M.valid_frames(gt)))
        aucs.append(M.score_sequence(boxes, gt).auc)
        present = M.valid_frames(gt)
        items.append((boxes, gt, present, conf, start))
        lost = lost_states(conf, start, LOST_RULES.get(tracker))
        lost_in_view += int((lost & present)[start + 1 :].sum())
        in_view += int(present[start + 1 :].sum())
        for b in comebacks(gt):
            backs += 1
            found += refound(boxes, gt, lost, b)
    lt = long_term_score(items) if not M.valid_frames(seq.gt).all() else None
    return {
        "auc": float(np.mean(aucs)),
        "f": None if lt is None else lt.f_score,
        "lost_in_view": lost_in_view,
        "in_view": in_view,
        "comebacks": backs,
        "refound": found,
    }


def decide(val_dir: str, results: str, candidate: str, reference: str = "nanotrack-v2") -> dict:
    """Per sequence figures of both trackers and which rules the candidate breaks where."""
    from ..run.sequences import find_sequences
    from .eval_protocols import expand

    seqs = find_sequences(val_dir)
    runs = expand(seqs, "sre")
    table, broken = {}, []
    lost_total = view_total = backs_total = found_total = 0
    for s in seqs:
        mine = [r for r in runs if r.base_name == s.name]
        c = sequence_figures(results, candidate, s, mine)
        ref = sequence_figures(results, reference, s, mine)
        table[s.name] = {candidate: c, reference: ref}
        if c["auc"] < ref["auc"] - AUC_MARGIN:
            broken.append(f"{s.name}: AUC {c['auc']:.3f} < {reference} {ref['auc']:.3f} - {AUC_MARGIN}")
        if c["f"] is not None and ref["f"] is not None and c["f"] < ref["f"]:
            broken.append(f"{s.name}: VOT-LT F {c['f']:.3f} < {reference} {ref['f']:.3f}")
        lost_total += c["lost_in_view"]
        view_total += c["in_view"]
        backs_total += c["comebacks"]
        found_total += c["refound"]
    lost_share = lost_total / max(1, view_total)
    if lost_share > MAX_LOST_IN_VIEW:
        broken.append(f"LOST on {lost_share:.1%} of the frames in view (at most {MAX_LOST_IN_VIEW:.0%})")
    if found_total < backs_total:
        broken.append(f"re-found within {REFIND_FRAMES} frames after {found_total} of {backs_total} comebacks")
    return {
        "candidate": candidate,
        "reference": reference,
        "per_sequence": table,
        "lost_in_view": lost_share,
        "comebacks": backs_total,
        "refound": found_total,
        "broken": broken,
        "meets_all": not broken,
    }


def format_decision(d: dict) -> str:
    c, r = d["candidate"], d["reference"]
    lines = [
        f"{'sequence':28s} {c + ' AUC':>24s} {r + ' AUC':>18s} {'F':>6s} {'F ref':>6s} {'LOST/in view':>13s} "
        f"{'re-found':>9s}"
    ]
    for name, row in d["per_sequence"].items():
        a, b = row[c], row[r]
        f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(
            f"{name:28s} {a['auc']:24.3f} {b['auc']:18.3f} {f(a['f']):>6s} {f(b['f']):>6s} "
            f"{a['lost_in_view']:>6d}/{a['in_view']:<6d} {a['refound']:>4d}/{a['comebacks']:<4d}"
        )
    lines.append(
        f"LOST on {d['lost_in_view']:.2%} of the frames in view; re-found after {d['refound']} of "
        f"{d['comebacks']} comebacks"
    )
    lines.append("meets every rule" if d["meets_all"] else "breaks: " + "; ".join(d["broken"]))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m trackers.tools.guard_decision", description=__doc__.splitlines()[0])
    ap.add_argument("validation", help="the validation set (python -m trackers.train.validation DIR)")
    ap.add_argument("results", help="RESULTS/SRE written by eval --protocol sre --results RESULTS")
    ap.add_argument("--candidate", default="siamscope-default")
    ap.add_argument("--reference", default="nanotrack-v2")
    ap.add_argument("--json", help="write the figures there")
    a = ap.parse_args(argv)
    d = decide(a.validation, a.results, a.candidate, a.reference)
    print(format_decision(d))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(d, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
