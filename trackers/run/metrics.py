"""One-pass evaluation (OPE) metrics, written from the OTB definitions (Wu et al., "Object
Tracking Benchmark", TPAMI 2015) with the normalised precision of TrackingNet / LaSOT.

Boxes are (N, 4) arrays of x, y, w, h in frame pixels, one row per frame, the first being the
init box (OTB includes it). A ground-truth row that is NaN or has no area marks a frame where
the target is absent: it is left out of every metric (numerator and denominator). A predicted
row that is NaN (the tracker reported nothing) counts as a miss: IoU 0, infinite centre error.

- success: fraction of frames with IoU > t for t = 0, 0.05, ..., 1 (21 thresholds); its mean
  over the thresholds is the success AUC. IoU is 1 at best and the last threshold asks IoU > 1,
  so a perfect tracker scores 20/21 = 0.952.
- precision: fraction of frames whose centre error is <= d px for d = 0..50; P@20 is the
  figure reported.
- normalised precision: centre error with each axis divided by the ground-truth box size,
  fraction <= r for r = 0, 0.01, ..., 0.5; reported at r = 0.2 (as pysot and pytracking do).
"""

from __future__ import annotations

import dataclasses

import numpy as np

SUCCESS_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_PRECISION_THRESHOLDS = np.arange(0, 51, dtype=np.float64) / 100
PRECISION_AT = 20.0
NORM_PRECISION_AT = 0.2


def _as_boxes(boxes) -> np.ndarray:
    b = np.asarray(boxes, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 4:
        raise ValueError(f"boxes must be an (N, 4) array of x,y,w,h, got shape {b.shape}")
    return b


def iou(pred, gt) -> np.ndarray:
    """Per-row intersection over union of x,y,w,h boxes (continuous coordinates); NaN rows give 0."""
    p, g = _as_boxes(pred), _as_boxes(gt)
    x0 = np.maximum(p[:, 0], g[:, 0])
    y0 = np.maximum(p[:, 1], g[:, 1])
    x1 = np.minimum(p[:, 0] + p[:, 2], g[:, 0] + g[:, 2])
    y1 = np.minimum(p[:, 1] + p[:, 3], g[:, 1] + g[:, 3])
    with np.errstate(invalid="ignore"):
        inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
        union = np.clip(p[:, 2], 0, None) * np.clip(p[:, 3], 0, None) + g[:, 2] * g[:, 3] - inter
        out = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    # inter / union of identical float boxes can round to 1 + 1e-16, which would pass IoU > 1
    return np.clip(np.nan_to_num(out, nan=0.0), 0.0, 1.0)


def centres(boxes) -> np.ndarray:
    b = _as_boxes(boxes)
    return b[:, :2] + b[:, 2:] / 2


def centre_error(pred, gt) -> np.ndarray:
    """Euclidean distance between box centres in pixels; inf where the prediction is NaN."""
    d = np.linalg.norm(centres(pred) - centres(gt), axis=1)
    return np.where(np.isfinite(d), d, np.inf)


def normalised_centre_error(pred, gt) -> np.ndarray:
    """Centre error with x divided by the ground-truth width and y by its height."""
    g = _as_boxes(gt)
    d = (centres(pred) - centres(g)) / g[:, 2:]
    n = np.linalg.norm(d, axis=1)
    return np.where(np.isfinite(n), n, np.inf)


def valid_frames(gt) -> np.ndarray:
    """Frames where the target is present: finite ground truth with positive width and height."""
    g = _as_boxes(gt)
    return np.all(np.isfinite(g), axis=1) & (g[:, 2] > 0) & (g[:, 3] > 0)


@dataclasses.dataclass
class SequenceScore:
    """The OPE curves of one tracker on one sequence, and the figures read off them."""

    success_curve: np.ndarray  # (21,) over SUCCESS_THRESHOLDS
    precision_curve: np.ndarray  # (51,) over PRECISION_THRESHOLDS
    norm_precision_curve: np.ndarray  # (51,) over NORM_PRECISION_THRESHOLDS
    frames: int  # frames scored (target present)

    @property
    def auc(self) -> float:
        return float(np.mean(self.success_curve))

    @property
    def precision(self) -> float:
        return float(self.precision_curve[int(np.searchsorted(PRECISION_THRESHOLDS, PRECISION_AT))])

    @property
    def norm_precision(self) -> float:
        i = int(np.argmin(np.abs(NORM_PRECISION_THRESHOLDS - NORM_PRECISION_AT)))
        return float(self.norm_precision_curve[i])


def score_sequence(pred, gt) -> SequenceScore:
    """Score one sequence: pred and gt are (N, 4) x,y,w,h with the same N."""
    p, g = _as_boxes(pred), _as_boxes(gt)
    if len(p) != len(g):
        raise ValueError(f"{len(p)} predicted boxes for {len(g)} ground-truth frames")
    keep = valid_frames(g)
    n = int(keep.sum())
    if n == 0:
        raise ValueError("no frame with a ground-truth box to score")
    p, g = p[keep], g[keep]
    overlaps = iou(p, g)
    err = centre_error(p, g)
    nerr = normalised_centre_error(p, g)
    success = (overlaps[None, :] > SUCCESS_THRESHOLDS[:, None]).mean(axis=1)
    precision = (err[None, :] <= PRECISION_THRESHOLDS[:, None]).mean(axis=1)
    norm_precision = (nerr[None, :] <= NORM_PRECISION_THRESHOLDS[:, None]).mean(axis=1)
    return SequenceScore(success, precision, norm_precision, n)


def mean_score(scores: list[SequenceScore]) -> SequenceScore:
    """Overall curves: the mean over sequences of the per-sequence curves (pysot's OPE toolkit
    averages per sequence, so a long sequence does not outweigh a short one)."""
    if not scores:
        raise ValueError("no sequences to average")
    return SequenceScore(
        np.mean([s.success_curve for s in scores], axis=0),
        np.mean([s.precision_curve for s in scores], axis=0),
        np.mean([s.norm_precision_curve for s in scores], axis=0),
        int(sum(s.frames for s in scores)),
    )


# -- confidence ----------------------------------------------------------------------------------
def presence_rates(confidence, present, threshold: float = 0.5) -> dict:
    """How far a confidence can be read as "the target is there": of the frames scored above
    `threshold`, the fraction where the target is present; of those at or below it, the fraction
    where it is absent; and the counts behind both."""
    conf = np.asarray(confidence, dtype=np.float64)
    present = np.asarray(present, dtype=bool)
    high = conf > threshold
    return {
        "threshold": threshold,
        "present_given_high": float(present[high].mean()) if high.any() else float("nan"),
        "absent_given_low": float((~present[~high]).mean()) if (~high).any() else float("nan"),
        "high_frames": int(high.sum()),
        "low_frames": int((~high).sum()),
        "present_frames": int(present.sum()),
        "absent_frames": int((~present).sum()),
        "present_scored_high": float(high[present].mean()) if present.any() else float("nan"),
        "absent_scored_low": float((~high[~present]).mean()) if (~present).any() else float("nan"),
    }
