"""Drawing a TrackResult onto a frame (CLI --video-out and the GUI's export share this)."""

from __future__ import annotations

import cv2
import numpy as np

from ..core.base import TrackResult

BOX_COLOUR = (0, 255, 0)  # BGR
LOST_COLOUR = (0, 0, 255)
MASK_COLOUR = np.array([255, 80, 0], np.float32)


#: the score-map overlay, here and on the GUI's video (app/video_view.py) alike: inferno, each cell's
#: opacity rising with its score (0 at the map's minimum, HEAT_MAX_OPACITY at its maximum, along
#: score ** HEAT_OPACITY_GAMMA), so low-score cells leave the frame visible and the peak stands out
HEAT_MAX_OPACITY = 160 / 255
HEAT_OPACITY_GAMMA = 1.5


def heatmap_overlay(frame: np.ndarray, result: TrackResult, alpha: float = HEAT_MAX_OPACITY) -> np.ndarray:
    """Blend the score map over the frame at its true place (the search region's score extent), as
    the window draws it: inferno, opacity rising with the score up to `alpha`, cells unsmoothed."""
    if result.score_map is None or result.search_region is None:
        return frame
    x0, y0, x1, y1 = result.search_region.score_extent
    H, W = frame.shape[:2]
    ix0, iy0, ix1, iy1 = (int(round(v)) for v in (x0, y0, x1, y1))
    if ix1 <= ix0 or iy1 <= iy0:
        return frame
    sm = result.score_map.astype(np.float32)
    sm = (sm - sm.min()) / max(float(sm.max() - sm.min()), 1e-9)
    sm = cv2.resize(sm, (ix1 - ix0, iy1 - iy0), interpolation=cv2.INTER_NEAREST)
    heat = cv2.applyColorMap((sm * 255).astype(np.uint8), cv2.COLORMAP_INFERNO).astype(np.float32)
    opacity = (sm**HEAT_OPACITY_GAMMA * alpha)[..., None]
    cx0, cy0, cx1, cy1 = max(ix0, 0), max(iy0, 0), min(ix1, W), min(iy1, H)
    if cx1 <= cx0 or cy1 <= cy0:
        return frame
    out = frame.copy()
    region = out[cy0:cy1, cx0:cx1].astype(np.float32)
    patch = heat[cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0]
    a = opacity[cy0 - iy0 : cy1 - iy0, cx0 - ix0 : cx1 - ix0]
    out[cy0:cy1, cx0:cx1] = np.clip(region * (1 - a) + patch * a + 0.5, 0, 255).astype(np.uint8)
    return out


def draw_result(
    frame: np.ndarray,
    result: TrackResult | None,
    frame_index: int | None = None,
    heatmap: bool = False,
    thickness: int = 2,
) -> np.ndarray:
    """Return a copy of `frame` with the box, mask, polygon, distractors and score drawn."""
    out = heatmap_overlay(frame, result) if (heatmap and result is not None) else frame.copy()
    if result is None:
        return out
    if result.mask is not None and result.mask.shape[:2] == out.shape[:2]:
        m = result.mask > result.mask_threshold
        out[m] = (out[m].astype(np.float32) * 0.5 + MASK_COLOUR * 0.5).astype(np.uint8)
    for d in result.distractors:
        dx, dy, dw, dh = (int(round(v)) for v in d)
        cv2.rectangle(out, (dx, dy), (dx + dw, dy + dh), (0, 200, 255), 1)
    if result.polygon is not None:
        cv2.polylines(out, [np.round(result.polygon).astype(np.int32).reshape(-1, 1, 2)], True, (255, 255, 0), 1)
    colour = BOX_COLOUR if result.state.value == "tracking" else LOST_COLOUR
    x, y, w, h = result.box
    cv2.rectangle(out, (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h))), colour, thickness)
    label = f"{result.score:.3f}"
    if frame_index is not None:
        label = f"#{frame_index} {label}"
    if result.state.value != "tracking":
        label += f" {result.state.value}"
    cv2.putText(out, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, label, (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out


#: quality of the JPEG copies kept of camera frames (a camera cannot be re-read for a video export)
JPEG_QUALITY = 92


def encode_jpeg(frame: np.ndarray) -> bytes | None:
    """A frame as JPEG bytes, or None when OpenCV cannot encode it."""
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return buf.tobytes() if ok else None


def decode_jpeg(data: bytes) -> np.ndarray | None:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
