"""Crop extraction shared by every Siamese tracker: exemplar and search sub-windows.

Follows the pysot convention exactly (the fixtures check it to the last grey level):
a square window of side `original_sz` centred on `pos` (rounded as pysot rounds), padded with
the init frame's per-channel mean where it leaves the image, resized with cv2 INTER_LINEAR to
`model_sz` only when the sizes differ.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def py2_round(x: float) -> float:
    """Python 2's round(): nearest integer, ties away from zero. DaSiamRPN and SiamDW are Python-2
    code, and their crop sides and corners hit exact .5 values."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def channel_average(frame: np.ndarray) -> np.ndarray:
    """Per-channel mean of the init frame, the padding colour (float64, as the references keep it)."""
    return np.mean(frame, axis=(0, 1))


def crop_window(pos, original_sz: float) -> tuple[float, float, float, float]:
    """(xmin, ymin, xmax, ymax) of the window, inclusive pixel indices as the references compute them."""
    c = (original_sz + 1) / 2
    xmin = math.floor(pos[0] - c + 0.5)
    ymin = math.floor(pos[1] - c + 0.5)
    return xmin, ymin, xmin + original_sz - 1, ymin + original_sz - 1


def get_subwindow(
    frame: np.ndarray, pos, model_sz: int, original_sz, avg_chans, *, corner=None, fill=None
) -> np.ndarray:
    """Cut the square window of side `original_sz` around `pos` and resize it to `model_sz`.

    Returns an (model_sz, model_sz, 3) uint8 BGR patch. Only the visible part of the frame is
    copied into a mean-filled patch, which gives the same pixels as padding the whole frame (as
    the references do) without allocating a frame-sized buffer for every search crop.
    References that round the window corner differently (SiamDW: Python 3 `round`, siamfc-pytorch:
    `np.round`) pass the top-left `corner` (x, y) themselves; `fill` overrides the padding colour
    (uint8 per channel) where a reference does not truncate the mean (cv2.copyMakeBorder rounds).
    """
    sz = int(original_sz)
    if sz < 1:
        raise ValueError(f"crop side must be at least 1 px, got {original_sz!r}")
    if corner is None:
        xmin, ymin, _, _ = crop_window(pos, original_sz)
    else:
        xmin, ymin = corner
    xmin, ymin = int(xmin), int(ymin)
    H, W = frame.shape[:2]
    if fill is None:
        # float64 mean assigned into uint8 truncates, as numpy does in the references
        fill = np.asarray(avg_chans, dtype=np.float64).astype(np.uint8)
    x0, y0 = max(xmin, 0), max(ymin, 0)
    x1, y1 = min(xmin + sz, W), min(ymin + sz, H)
    if x0 == xmin and y0 == ymin and x1 == xmin + sz and y1 == ymin + sz:
        patch = frame[y0:y1, x0:x1]
    elif x1 > x0 and y1 > y0:
        # one C call: numpy's broadcast of a 3-value fill over a window ~560 px wide cost ~0.9 ms,
        # more than the whole NanoTrack network in ONNX Runtime
        patch = cv2.copyMakeBorder(
            frame[y0:y1, x0:x1],
            y0 - ymin,
            ymin + sz - y1,
            x0 - xmin,
            xmin + sz - x1,
            cv2.BORDER_CONSTANT,
            value=[int(v) for v in np.ravel(fill)],
        )
    else:
        patch = np.empty((sz, sz, frame.shape[2]), np.uint8)
        patch[:] = fill
    if model_sz != original_sz:
        patch = cv2.resize(patch, (model_sz, model_sz))
    return np.ascontiguousarray(patch)


def to_tensor_layout(patch: np.ndarray) -> np.ndarray:
    """HxWx3 uint8 -> 1x3xHxW float32 with raw 0..255 BGR values (no normalisation, as the references)."""
    return np.ascontiguousarray(patch.transpose(2, 0, 1)[None].astype(np.float32))
