"""Long-term tracking precision, recall and F-score (VOT-LT; Lukezic et al., "Now you see me:
evaluating performance in long-term visual tracking", 2018), for sequences whose target leaves
the view (GOT-10k absence labels, LaSOT full occlusion / out of view).

A tracker reports a box and a confidence each frame. At a confidence threshold tau it claims the
target where its confidence >= tau and reports nothing elsewhere. Over the frames after the init
frame:

- precision Pr(tau): mean IoU over the frames where it claims the target (IoU 0 where the target
  is absent: a claim on an absent target is wrong);
- recall Re(tau): mean IoU over the frames where the target is present (0 where it claims
  nothing);
- F(tau) = 2 Pr Re / (Pr + Re). Pr and Re are averaged over sequences at each tau (a sequence
  where nothing is claimed at tau has no precision and is left out of that average), and the
  F-score is F at the tau that maximises it.

Thresholds: the distinct confidences the tracker gave (at most 100, evenly spaced quantiles of
them where there are more), so the result does not depend on a chosen grid.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..run import metrics as M

MAX_THRESHOLDS = 100


@dataclasses.dataclass
class LongTermScore:
    precision: float
    recall: float
    f_score: float
    threshold: float
    sequences: int


def thresholds(confidences: np.ndarray) -> np.ndarray:
    c = np.unique(confidences[np.isfinite(confidences)])
    if len(c) > MAX_THRESHOLDS:
        c = np.unique(np.quantile(c, np.linspace(0, 1, MAX_THRESHOLDS)))
    return c


def sequence_curves(pred, gt, present, confidence, taus, start: int = 0):
    """(precision, recall) over taus for one sequence; precision NaN where nothing is claimed.
    present: (N,) bool, the target is in view; frames up to `start` (the init frame) are left out."""
    p, g = M._as_boxes(pred)[start + 1 :], M._as_boxes(gt)[start + 1 :]
    present = np.asarray(present, dtype=bool)[start + 1 :]
    conf = np.nan_to_num(np.asarray(confidence, dtype=np.float64)[start + 1 :], nan=-np.inf)
    overlap = np.where(present, M.iou(p, g), 0.0)
    overlap = np.where(np.all(np.isfinite(p), axis=1), overlap, 0.0)
    claimed = conf[None, :] >= np.asarray(taus)[:, None]  # (T, N)
    n_claimed = claimed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_claimed > 0, (claimed * overlap).sum(axis=1) / n_claimed, np.nan)
    n_present = int(present.sum())
    recall = (claimed * overlap).sum(axis=1) / n_present if n_present else np.full(len(taus), np.nan)
    return precision, recall


def long_term_score(items) -> LongTermScore | None:
    """items: (pred, gt, present, confidence, start) per sequence. None when there is none."""
    items = list(items)
    if not items:
        return None
    taus = thresholds(np.concatenate([np.asarray(c, dtype=np.float64)[s + 1 :] for _, _, _, c, s in items]))
    if len(taus) == 0:
        return None
    curves = [sequence_curves(p, g, pr, c, taus, s) for p, g, pr, c, s in items]
    with np.errstate(invalid="ignore"), _quiet():
        pr = np.nanmean(np.stack([c[0] for c in curves]), axis=0)
        re = np.nanmean(np.stack([c[1] for c in curves]), axis=0)
    pr, re = np.nan_to_num(pr), np.nan_to_num(re)
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(pr + re > 0, 2 * pr * re / (pr + re), 0.0)
    best = int(np.argmax(f))
    return LongTermScore(float(pr[best]), float(re[best]), float(f[best]), float(taus[best]), len(items))


class _quiet:
    """np.nanmean warns on an all-NaN column (a threshold above every confidence): expected here."""

    def __enter__(self):
        import warnings

        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._w.__exit__(*exc)
