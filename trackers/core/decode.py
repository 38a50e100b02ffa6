"""Decoding parts shared by the RPN family (pysot SiamRPN/SiamRPN++, NanoTrack, SiamDW SiamRPN+, ...).

Anchors or points -> candidate boxes; scale/ratio penalty; cosine window; best candidate;
learning-rate size smoothing; clipping. The formulas and their order are those of the
references (pysot `SiamRPNTracker.track`), which the fixtures pin down.
"""

from __future__ import annotations

import math

import numpy as np


def generate_anchors(stride: int, ratios, scales, score_size: int) -> np.ndarray:
    """pysot anchors: (A*S*S, 4) float32 rows (cx, cy, w, h), offsets from the crop centre.

    Anchor a at cell (y, x) sits at row a*S*S + y*S + x, the flattening of a (1, A, S, S) map.
    """
    size = stride * stride
    shapes = []
    for r in ratios:
        ws = int(math.sqrt(size * 1.0 / r))
        hs = int(ws * r)
        for s in scales:
            shapes.append((ws * s, hs * s))
    shapes = np.asarray(shapes, np.float32)
    # corners -> centre form, the round trip the reference makes (x1 = -w/2 ... in float32)
    half = shapes * 0.5
    x1, y1, x2, y2 = -half[:, 0], -half[:, 1], half[:, 0], half[:, 1]
    anchor = np.stack([(x1 + x2) * 0.5, (y1 + y2) * 0.5, x2 - x1, y2 - y1], 1)
    anchor_num = anchor.shape[0]
    anchor = np.tile(anchor, score_size * score_size).reshape((-1, 4))
    ori = -(score_size // 2) * stride
    grid = ori + stride * np.arange(score_size)
    xx, yy = np.meshgrid(grid, grid)
    anchor[:, 0] = np.tile(xx.flatten(), (anchor_num, 1)).flatten().astype(np.float32)
    anchor[:, 1] = np.tile(yy.flatten(), (anchor_num, 1)).flatten().astype(np.float32)
    return anchor


def generate_points(stride: int, score_size: int) -> np.ndarray:
    """Anchor-free grid (NanoTrack / BAN): (S*S, 2) float32 (x, y) offsets from the crop centre."""
    ori = -(score_size // 2) * stride
    grid = ori + stride * np.arange(score_size)
    xx, yy = np.meshgrid(grid, grid)
    return np.stack([xx.flatten(), yy.flatten()], 1).astype(np.float32)


def cosine_window(score_size: int, anchor_num: int = 1) -> np.ndarray:
    """outer(hanning, hanning) flattened and tiled once per anchor."""
    hanning = np.hanning(score_size)
    window = np.outer(hanning, hanning)
    return np.tile(window.flatten(), anchor_num)


def softmax_fg(cls: np.ndarray) -> np.ndarray:
    """Foreground probability of a (2, N) logit pair array (background row 0, foreground row 1)."""
    m = cls.max(axis=0, keepdims=True)
    e = np.exp(cls - m)
    return e[1] / e.sum(axis=0)


def _change(r):
    return np.maximum(r, 1.0 / r)


def _sz(w, h):
    pad = (w + h) * 0.5
    return np.sqrt((w + pad) * (h + pad))


def scale_ratio_penalty(pred_w, pred_h, target_w, target_h, penalty_k: float) -> np.ndarray:
    """exp(-(r_c * s_c - 1) * k): punishes candidates whose size or aspect jump away from the target's."""
    s_c = _change(_sz(pred_w, pred_h) / _sz(target_w, target_h))
    r_c = _change((target_w / target_h) / (pred_w / pred_h))
    return np.exp(-(r_c * s_c - 1) * penalty_k)


def clip_box(cx, cy, w, h, frame_shape):
    """Keep the centre inside the frame and the size in [10, frame size], as the references do."""
    H, W = frame_shape[:2]
    cx = max(0, min(cx, W))
    cy = max(0, min(cy, H))
    w = max(10, min(w, W))
    h = max(10, min(h, H))
    return cx, cy, w, h


def pick_best(
    score: np.ndarray, pred_bbox: np.ndarray, size_scaled, penalty_k: float, window: np.ndarray, window_influence: float
):
    """Penalty, window, argmax. Returns (best index, penalty, pscore).

    `pred_bbox` is (4, N) rows cx, cy, w, h in crop pixels; `size_scaled` the current target size
    in crop pixels (size * scale_z).
    """
    penalty = scale_ratio_penalty(pred_bbox[2], pred_bbox[3], size_scaled[0], size_scaled[1], penalty_k)
    pscore = penalty * score
    pscore = pscore * (1 - window_influence) + window * window_influence
    return int(np.argmax(pscore)), penalty, pscore


def smooth_update(center, size, bbox_delta, lr: float):
    """centre += delta; size = (1-lr) * size + lr * predicted size (all in frame pixels)."""
    cx = bbox_delta[0] + center[0]
    cy = bbox_delta[1] + center[1]
    w = size[0] * (1 - lr) + bbox_delta[2] * lr
    h = size[1] * (1 - lr) + bbox_delta[3] * lr
    return cx, cy, w, h
