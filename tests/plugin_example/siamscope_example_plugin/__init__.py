"""example-match: the target's first view found again in each frame by OpenCV's normalised
cross-correlation, within a search window around its last place. No network, no checkpoint: a
tracker in one file, registered through the `siamscope.trackers` entry-point group."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

from trackers.core.base import Tracker, TrackingState, TrackResult, param, validate_box
from trackers.core.registry import Variant, variant_specs


@dataclasses.dataclass
class MatchParams:
    search_ratio: float = param(2.0, "search window side as a multiple of the box's sides", range=(1.0, 8.0))


class MatchTracker(Tracker):
    name = "example-match"

    def __init__(self, params: MatchParams):
        self.params = params

    def init(self, frame: np.ndarray, box) -> None:
        x, y, w, h = validate_box(box, frame.shape)
        x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
        self.template = frame[y0 : y0 + max(1, int(round(h))), x0 : x0 + max(1, int(round(w)))].copy()
        self.box = (float(x0), float(y0), float(self.template.shape[1]), float(self.template.shape[0]))

    def track(self, frame: np.ndarray) -> TrackResult:
        x, y, w, h = self.box
        H, W = frame.shape[:2]
        r = self.params.search_ratio
        sx0, sy0 = int(max(0, x - (r - 1) * w / 2)), int(max(0, y - (r - 1) * h / 2))
        sx1, sy1 = int(min(W, x + w + (r - 1) * w / 2)), int(min(H, y + h + (r - 1) * h / 2))
        window = frame[sy0:sy1, sx0:sx1]
        th, tw = self.template.shape[:2]
        if window.shape[0] < th or window.shape[1] < tw:
            return TrackResult(box=self.box, score=0.0, state=TrackingState.LOST)
        response = cv2.matchTemplate(window, self.template, cv2.TM_CCOEFF_NORMED)
        _, peak, _, (px, py) = cv2.minMaxLoc(response)
        self.box = (float(sx0 + px), float(sy0 + py), float(tw), float(th))
        return TrackResult(box=self.box, score=float(max(0.0, peak)), score_map=response.astype(np.float32))


def build(name: str, weights=None, device: str = "cpu") -> MatchTracker:
    return MatchTracker(MatchParams())


TRACKERS = variant_specs(
    [
        Variant(
            "example-match",
            "Template matching (example plugin)",
            experimental=True,
            note="an example of a third-party tracker, not a serious one",
        )
    ],
    family="Examples",
    params_type=MatchParams,
    build=build,
    needs_weights=False,
    description="OpenCV normalised cross-correlation of the first view within a window around the last box.",
)
