"""Calibrate siamscope-default's target-present score on held-out frames.

    python main.py train --write-lovo /tmp/lovo      # first: the pseudo-labelled sequences
    python -m trackers.train.calibrate /tmp/lovo --cache /tmp/calib.npz

The default tracker is run over every pseudo-labelled sequence (trackers/train/lovo.py) and over a
"cut" version of each: half-way through, 30 frames of another video are spliced in (a shot cut:
the target is absent there, then comes back where it was), as Megamind's own cuts do. Its
long-term logic is switched off while the figures are collected (no LOST, no gating; the score
is computed with the current coefficients, since it decides when the recent view is refreshed),
so every frame gives the figures the tracker computes: the head's peak score, the appearance cosine at the
chosen cell, the verification cosines and colour similarity (DefaultTracker.verify). The score
uses `MODEL` of them, each divided by its mean over the first REFERENCE_FRAMES tracked frames. A
frame is labelled 1 when the target is in view and the tracker's box covers it (IoU >= 0.3 with the
pseudo-label), else 0.

A logistic regression of the label on those figures is fitted leaving one video out (a video and
its cut version are held out together) and the held-out predictions give the figures reported:
of the frames scored > 0.5, the fraction where the target is really there, and of those scored
<= 0.5, the fraction where it is not. The coefficients fitted on all videos are printed as
DefaultParams fields.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys

import cv2
import numpy as np

# what is recorded per frame (the candidates), and what the score is fitted on: each relative to
# its mean over the first REFERENCE_FRAMES tracked frames, as DefaultTracker.presence computes it
FEATURES = ("head_score", "appearance", "verify_fine", "verify_coarse", "colour")
MODEL = ("appearance", "verify_fine")
#: the figures each guarded tracker's score uses, chosen on the held-out rates below (CANDIDATES):
#: for NanoTrack v2 the stride-16 cosine added nothing the stride-8 one does not say, and lowered
#: the out-of-view rate (0.721 with it, 0.925 without); for the EfficientNet tracker the floor's
#: cosine at the chosen cell helps (0.930 out of view with it)
TRACKER_MODEL = {
    "siamscope-guard": ("verify_fine",),
    "siamscope-effnet": MODEL,
    # the default (NanoTrack v2's box, a score beside it): NanoTrack's own score as it is
    # (not relative: it does not depend on the target's looks) and the relative stride-8 cosine
    "siamscope-default": ("head_score", "verify_fine"),
}
PARAM_OF = {"appearance": "presence_appearance", "verify_fine": "presence_fine"}
#: the default's own parameter names (trackers/families/default.py CalibratedParams)
PARAM_OF_TRACKER = {
    "siamscope-default": {"bias": "score_bias", "head_score": "score_head", "verify_fine": "score_fine"}
}
#: figures a tracker's score takes as they are, not relative to their first-frames level
RAW = {"siamscope-default": ("head_score",)}
REFERENCE_FRAMES = 5
CANDIDATES = (("head_score",), ("verify_fine",), ("head_score", "appearance", "verify_fine"), MODEL)
CUT_FRAMES = 30
COVER_IOU = 0.3


def _frames(seq) -> list[np.ndarray]:
    return [cv2.imread(p, cv2.IMREAD_COLOR) for p in seq.frames]


def cut_version(frames, gt, other_frames, at: int):
    """`frames` with CUT_FRAMES frames of another video (resized to fit) spliced in at `at`."""
    H, W = frames[0].shape[:2]
    insert = [cv2.resize(f, (W, H)) for f in other_frames[:CUT_FRAMES]]
    out = frames[:at] + insert + frames[at:]
    g = np.concatenate([gt[:at], np.full((len(insert), 4), np.nan), gt[at:]])
    return out, g


def collect(tracker_factory, frames, gt, name: str) -> dict:
    """Run a tracker with its long-term logic off; per-frame figures, labels and boxes."""
    from trackers.run import metrics as M
    from trackers.run.session import TrackingSession
    from trackers.run.sources import FrameListSource

    start = int(np.argmax(M.valid_frames(gt)))
    rows, labels, present, ious = [], [], [], []
    session = TrackingSession.open(FrameListSource(frames), tracker_factory())
    for step in session.run(tuple(gt[start]), start=start):
        if step.kind != "track":
            continue
        i, r = step.index, step.result
        here = bool(M.valid_frames(gt[i : i + 1])[0])
        iou = float(M.iou(np.array([r.box]), np.nan_to_num(gt[i : i + 1]))[0]) if here else 0.0
        rows.append([r.extra[k] for k in FEATURES])
        present.append(here)
        ious.append(iou)
        labels.append(here and iou >= COVER_IOU)
    return {
        "name": name,
        "x": np.array(rows),
        "y": np.array(labels),
        "present": np.array(present),
        "iou": np.array(ious),
    }


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 3000) -> np.ndarray:
    """(bias, weights...) by Newton's method on the mean log-loss + l2 * |w|^2 (classes weighted
    equally, so the rarer absent frames count as much as the many present ones)."""
    X = np.hstack([np.ones((len(x), 1)), x])
    pos = max(1, int(y.sum()))
    neg = max(1, int((~y).sum()))
    sw = np.where(y, 0.5 / pos, 0.5 / neg)
    w = np.zeros(X.shape[1])
    reg = np.eye(len(w)) * l2
    reg[0, 0] = 0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-np.clip(X @ w, -50, 50)))
        g = X.T @ (sw * (p - y)) + reg @ w * 2
        Hm = (X * (sw * p * (1 - p))[:, None]).T @ X + reg * 2
        delta = np.linalg.solve(Hm + 1e-9 * np.eye(len(w)), g)
        w -= delta
        if np.abs(delta).max() < 1e-10:
            break
    return w


def predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(w[0] + x @ w[1:], -50, 50)))


def relative(run: dict, features=MODEL, raw=()) -> np.ndarray:
    idx = [FEATURES.index(f) for f in features]
    x = run["x"][:, idx]
    ref = np.maximum(x[:REFERENCE_FRAMES].mean(0), 1e-3)
    ref = np.where([f in raw for f in features], 1.0, ref)
    return x / ref


def video_of(name: str) -> str:
    """The video a run comes from: LOVO names are the video ('bag', 'bag+cut'); validation names
    are '<video>-<target>-<first frame>' or 'synth-<kind>' (the synthetic ones count as one video)."""
    return name.split("+")[0].split("-")[0]


def leave_one_video_out(runs: list[dict]):
    """Held-out predictions per run: fitted on every other video's runs."""
    videos = sorted({video_of(r["name"]) for r in runs})
    held = {}
    for v in videos:
        train = [r for r in runs if video_of(r["name"]) != v]
        w = fit_logistic(np.vstack([r["x"] for r in train]), np.concatenate([r["y"] for r in train]))
        for r in runs:
            if video_of(r["name"]) == v:
                held[r["name"]] = (w, predict(w, r["x"]))
    return held


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "folder",
        help="the sequences: the validation set (python -m trackers.train.validation DIR; "
        "held out by video) or the LOVO ones (python main.py train --write-lovo DIR)",
    )
    ap.add_argument("--json", help="write the figures and coefficients there")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--cache", help="per-frame figures .npz: read when it exists, written otherwise")
    ap.add_argument(
        "--tracker",
        default="siamscope-default",
        choices=sorted(TRACKER_MODEL),
        help="siamscope-default (NanoTrack v2's box with a calibrated score), siamscope-guard or "
        "siamscope-effnet (the long-term guard)",
    )
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    from trackers.run import metrics as M

    if args.cache and os.path.isfile(args.cache):
        runs = _read_cache(args.cache)
    else:
        runs = _collect_all(args.folder, args.tracker)
        if args.cache:
            np.savez(args.cache, **{f"{r['name']}|{k}": r[k] for r in runs for k in ("x", "y", "present", "iou")})
    print("candidate figures (relative to their first-frames level), held-out rates:")
    for feats in CANDIDATES:
        rr = [dict(r, x=relative(r, feats)) for r in runs]
        held = leave_one_video_out(rr)
        conf = np.concatenate([held[r["name"]][1] for r in rr])
        present = np.concatenate([r["present"] for r in rr])
        a = M.presence_rates(conf, np.concatenate([r["y"] for r in rr]))
        b = M.presence_rates(conf, present)
        print(
            f"  {' + '.join(feats):40s} P(there | >0.5) {a['present_given_high']:.3f}  P(not there | <=0.5) "
            f"{a['absent_given_low']:.3f}  out of view scored <=0.5: {b['absent_scored_low']:.3f}"
        )
    model = TRACKER_MODEL.get(args.tracker, MODEL)
    runs = [dict(r, x=relative(r, model, RAW.get(args.tracker, ()))) for r in runs]
    held = leave_one_video_out(runs)
    conf = np.concatenate([held[r["name"]][1] for r in runs])
    label = np.concatenate([r["y"] for r in runs])
    present = np.concatenate([r["present"] for r in runs])
    rates = M.presence_rates(conf, label)
    rates_present = M.presence_rates(conf, present)
    w = fit_logistic(np.vstack([r["x"] for r in runs]), label)
    print(
        f"the score ({' + '.join(model)}), held out by video, over {len(label)} frames ({int(label.sum())} with "
        f"the target in view and under the box, {int((~present).sum())} with the target out of view):"
    )
    print(
        f"  score > 0.5: target in view and under the box in {rates['present_given_high']:.3f} of "
        f"{rates['high_frames']} frames (in view at all: {rates_present['present_given_high']:.3f})"
    )
    print(
        f"  score <= 0.5: target not there (out of view or not under the box) in {rates['absent_given_low']:.3f} "
        f"of {rates['low_frames']} frames; of the out-of-view frames {rates_present['absent_scored_low']:.3f} "
        f"score <= 0.5"
    )
    for r in runs:
        p = held[r["name"]][1]
        sub = M.presence_rates(p, r["y"])
        print(
            f"  {r['name']:16s} frames {len(p):4d}  absent {int((~r['present']).sum()):3d}  "
            f"P(there | >0.5) {sub['present_given_high']:.3f}  P(not there | <=0.5) {sub['absent_given_low']:.3f}"
        )
    # a figure the model leaves out gets weight 0
    if args.tracker in PARAM_OF_TRACKER:
        names = PARAM_OF_TRACKER[args.tracker]
        fields = {names["bias"]: float(w[0]), **{names[f]: float(v) for f, v in zip(model, w[1:])}}
    else:
        fields = {"presence_bias": float(w[0]), "presence_appearance": 0.0, "presence_fine": 0.0}
        fields.update({PARAM_OF[f]: float(v) for f, v in zip(model, w[1:])})
    print(f"fitted on all ({args.tracker}'s params): " + ", ".join(f"{k}={v:.2f}" for k, v in fields.items()))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "rates": rates,
                    "rates_in_view": rates_present,
                    "coefficients": fields,
                    "per_sequence": {r["name"]: M.presence_rates(held[r["name"]][1], r["y"]) for r in runs},
                },
                f,
                indent=1,
            )
    return 0


def _collect_all(folder: str, tracker: str = "siamscope-default") -> list[dict]:
    from trackers.core import registry
    from trackers.run.sequences import find_sequences

    spec = registry.get(tracker)
    weights = registry.find_weights(spec)

    def factory():
        t = registry.build(tracker, weights)
        # never LOST and the box moved and resized whatever the score, so the figures hardly depend
        # on the coefficients being fitted; the score itself is computed with the tracker's current
        # coefficients, because it decides when the recent view is refreshed (TargetVerifier.refresh):
        # a score forced to 1 would refresh it on every frame, after a shot cut too, and the
        # figures collected would not be the ones the tracker sees. Run it again after putting the
        # fitted coefficients in the params, until they settle (one round moved them by < 0.1).
        if hasattr(t.params, "lost_presence"):  # the guard; the default's score never moves its box
            t.params = dataclasses.replace(t.params, lost_presence=0.0, resize_min_presence=0.0, move_min_presence=0.0)
        return t

    loaded = {s.name: (_frames(s), s.gt) for s in find_sequences(folder)}
    names = sorted(loaded)
    runs = []
    for k, name in enumerate(names):
        frames, gt = loaded[name]
        runs.append(collect(factory, frames, gt, name))
        other = loaded[names[(k + 1) % len(names)]][0]
        at = len(frames) // 2
        cf, cg = cut_version(frames, gt, other[len(other) // 3 :], at)
        runs.append(collect(factory, cf, cg, f"{name}+cut"))
        print(f"# {name}: {len(frames)} frames (+{CUT_FRAMES} cut in at {at})", file=sys.stderr, flush=True)
    return runs


def _read_cache(path: str) -> list[dict]:
    data = np.load(path)
    runs: dict[str, dict] = {}
    for key in data.files:
        name, field = key.split("|")
        runs.setdefault(name, {"name": name})[field] = data[key]
    return list(runs.values())


if __name__ == "__main__":
    sys.exit(main())
