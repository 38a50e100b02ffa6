"""siamscope-default: the tracker a new user meets first. Plain NanoTrack v2 (Apache-2.0 weights,
nanotrackv2.pth) moves the box, bit for bit as `nanotrack-v2` does; SiamScope adds what NanoTrack
lacks without touching the box: a calibrated target-present score and a LOST state
(`CalibratedNanoTracker`).

Why not the long-term guard (`siamscope-guard`, trackers/families/guard.py, the default until
2026-12-03): on the validation set under SRE (hand-drawn-like starts; trackers/train/validation.py,
docs/validation.md, record resources/default_tracker.json "sre_2026_12_03") the guard cost AUC
against NanoTrack v2 on several sequences: a box drawn slightly off the target made its verifier
doubt the target, hold the box and go LOST (bag from 297,133,136,122: LOST on 177 of 196 frames).
The guard stays available as its own tracker.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from models.checkpoint import CheckpointError
from models.efficientnet_lite import efficientnet_lite0
from models.siamscope import BACKBONE_STAGE

from ..core.base import TrackingState, param
from ..core.registry import Variant, variant_specs
from ..core.siamese import SiameseRPNTracker
from .guard import VERIFY_STAGE, GuardParams, LongTermGuard, TargetVerifier
from .nanotrack import NanoTracker, NanoTrackParams, load_nanotrack


@dataclasses.dataclass
class DefaultParams(GuardParams, NanoTrackParams):
    """NanoTrack v2's loop (its reference config) plus the long-term part (GuardParams). The presence
    coefficients are this localiser's own fit, leaving one video out (`python -m
    trackers.train.calibrate /tmp/lovo --tracker siamscope-default`): the stride-8 verification
    alone, the stride-16 appearance figure adding nothing there (weight 0)."""

    presence_bias: float = -2.71
    presence_appearance: float = 0.0
    presence_fine: float = 5.46
    # chosen on the leave-one-video-out table (trackers/train/lovo.py); the scores behind each value are
    # in resources/default_tracker.json, records "lovo_2026_11_26" and "lovo_2026_11_27"
    follow_localiser_score: float = 0.9
    resize_min_presence: float = 0.2
    lost_window_influence: float = 0.25


class DefaultTracker(LongTermGuard, NanoTracker):  # registered as siamscope-guard
    """NanoTrack v2 (Apache-2.0 weights, ../shared/models/nanotrack or the model zoo) as the
    localiser, under the long-term guard; the verifier is a frozen ImageNet EfficientNet-Lite0 of
    its own (stride 8 and 16); the presence score uses the stride-8 figure alone (calibration:
    the stride-16 one added nothing), the stride-16 cosine is reported as `appearance`."""

    extra_keys = {
        **SiameseRPNTracker.extra_keys,
        **LongTermGuard.extra_keys,
        "head_score": "NanoTrack v2's own score at the chosen cell",
        "appearance": "stride-16 cosine of the first frame's target with the candidate (not in the score)",
    }

    def __init__(self, network, params: DefaultParams, name: str, device: str = "cpu", engine: str = "auto"):
        # before the localiser's set_engine, which exports the verification module with its graph
        self._verify_trunk = efficientnet_lite0((VERIFY_STAGE, BACKBONE_STAGE)).eval()
        super().__init__(network, params, name=name, device=device, engine=engine)
        self._verify_trunk.to(self.device)

    def verify_backbone(self):
        return self._verify_trunk

    def to(self, device: str) -> DefaultTracker:
        super().to(device)
        self._verify_trunk.to(self.device)
        return self


# -- the default: NanoTrack v2's box, a calibrated score and a LOST state beside it ------------------
@dataclasses.dataclass
class CalibratedParams(NanoTrackParams):
    """NanoTrack v2's reference config (the box) plus the score and the state, which never move it.

    score = sigmoid(bias + w_head * NanoTrack's own score at its box
                    + w_fine * stride-8 verification cosine / its level over the first frames),
    fitted by logistic regression on the validation set, held out by video
    (`python -m trackers.train.calibrate VALIDATION --tracker siamscope-default`; record in
    resources/default_tracker.json "sre_2026_12_03" -> "calibration_2026_12_03")."""

    # fitted on the validation set's 19 sequences and a shot-cut version of each (3848 frames), held
    # out by video: of the frames scoring > 0.5 the target is in view and under the box in 0.896, of
    # those scoring <= 0.5 it is not in 0.708; 0.772 of the out-of-view frames score <= 0.5
    score_bias: float = param(-4.51, "calibrated score: bias of the logistic")
    score_head: float = param(2.70, "calibrated score: weight of NanoTrack v2's own score")
    score_fine: float = param(4.33, "calibrated score: weight of the relative stride-8 verification")
    reference_frames: int = param(5, "tracked frames that set the verification's own level", live=False)
    # the state: chosen on the same held-out scores (trackers/tools/guard_decision.py rules): with
    # LOST after 10 frames below 0.1 and TRACKING again at 0.3, LOST on 0.6% of the frames in view
    # (0.6% of those where the box is on the target) and on 21% of those out of view; at 0.5 / 10 /
    # 0.5 it was 14.7% in view (7.6% on the target): NanoTrack's box stays on a deforming target
    # whose verification drops (bag from a hand-drawn box: 0.26 at its lowest)
    lost_score: float = param(0.1, "a frame scoring below this counts towards LOST", range=(0, 1))
    lost_frames: int = param(10, "frames in a row below lost_score before the state is LOST")
    found_score: float = param(0.3, "while LOST, a frame scoring this much is TRACKING again", range=(0, 1))


class CalibratedNanoTracker(NanoTracker):
    """NanoTrack v2 as it is (its box, its search, its update), then per frame: the stride-8 /
    stride-16 EfficientNet-Lite0 comparison of the box NanoTrack chose with the first frame's
    target (the guard's `TargetVerifier`, run in the same engine as the network), the calibrated
    score from that and NanoTrack's own score, and the state: LOST after `lost_frames` frames in a
    row below `lost_score`, TRACKING again at `found_score`. The box is never changed by either:
    `track` returns NanoTrack's box bit for bit (tests/test_default_tracker.py)."""

    extra_keys = {
        **SiameseRPNTracker.extra_keys,
        "head_score": "NanoTrack v2's own score at its box",
        "verify_fine": "stride-8 cosine of the first frame's target with the box",
        "verify_coarse": "the same at stride 16",
        "appearance": "the same as verify_coarse (the calibration's name for it)",
        "colour": "hue-saturation histogram similarity of the box with the first box",
    }

    def __init__(self, network, params: CalibratedParams, name: str, device: str = "cpu", engine: str = "auto"):
        self._verify_trunk = efficientnet_lite0((VERIFY_STAGE, BACKBONE_STAGE)).eval()
        super().__init__(network, params, name=name, device=device, engine=engine)
        self._verify_trunk.to(self.device)
        self.verifier = TargetVerifier(self._verify_features, params.exemplar_size, params.context_amount)
        self.lost = False
        self.low_frames = 0
        self.reference: list[float] = []

    # the verification crop runs where the network runs (the guard's own plumbing)
    verify_backbone = DefaultTracker.verify_backbone
    engine_modules = LongTermGuard.engine_modules
    _verify_features = LongTermGuard._verify_features

    def to(self, device: str) -> CalibratedNanoTracker:
        super().to(device)
        self._verify_trunk.to(self.device)
        return self

    def init(self, frame, box) -> None:
        super().init(frame, box)
        self.verifier.set_target(frame, self.center, self.size, self.channel_average)
        self.lost = False
        self.low_frames = 0
        self.reference = []

    def score_of(self, head: float, fine: float) -> float:
        p = self.params
        if len(self.reference) < p.reference_frames:
            self.reference.append(fine)
        z = p.score_bias + p.score_head * head + p.score_fine * fine / max(float(np.mean(self.reference)), 1e-3)
        return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))

    def finish_result(self, result, step, ctx, timer):
        """After NanoTrack v2's own step (its box untouched): the verification, the calibrated score
        and the state. A hook of the shared loop, not a track() of its own, so several targets of
        this tracker still share one batched NanoTrack call (core/batching.py) and each verifies here."""
        result = super().finish_result(result, step, ctx, timer)
        frame = ctx.frame
        p = self.params
        fine, coarse, colour = self.verifier.compare(frame, self.center, self.size)
        head = float(result.score)
        score = self.score_of(head, fine)
        if self.lost:
            if score >= p.found_score:
                self.lost, self.low_frames = False, 0
        else:
            self.low_frames = self.low_frames + 1 if score < p.lost_score else 0
            self.lost = self.low_frames >= p.lost_frames
        result.score = score
        result.state = TrackingState.LOST if self.lost else TrackingState.TRACKING
        result.extra.update(head_score=head, verify_fine=fine, verify_coarse=coarse, appearance=coarse, colour=colour)
        return result


VARIANTS = (
    Variant(
        "siamscope-default",
        "SiamScope default (NanoTrack v2 + calibrated score and LOST state)",
        {},
        "nanotrackv2.pth",
        params_type=CalibratedParams,
        description="NanoTrack v2 (Apache-2.0 weights) moves the box exactly as nanotrack-v2 does; a frozen "
        "ImageNet EfficientNet-Lite0 compares the box with the first frame's target, and a score "
        "calibrated on the validation set (held out by video) gives the confidence and a LOST "
        "state, neither of which moves the box. Chosen on the SRE validation table "
        "(docs/validation.md).",
    ),
    Variant(
        "siamscope-guard",
        "SiamScope guard (NanoTrack v2 + long-term guard)",
        {},
        "nanotrackv2.pth",
        params_type=DefaultParams,
        description="NanoTrack v2 (Apache-2.0 weights) localises; a frozen ImageNet EfficientNet-Lite0 checks "
        "the candidate against the first frame; calibrated target-present score, a box that changes "
        "size only as far as that score supports, LOST and re-detection. The default until "
        "2026-12-03; it cost AUC from hand-drawn-like (SRE) starts (docs/validation.md).",
    ),
)


def build(name: str, weights: str | None = None, device: str = "cpu"):
    if weights is None:
        raise CheckpointError(
            f"{name} needs NanoTrack v2's checkpoint (nanotrackv2.pth: "
            "python main.py download nanotrack-v2, or ../shared/models/nanotrack)"
        )
    if name == "siamscope-guard":
        return DefaultTracker(load_nanotrack("v2", weights), DefaultParams(), name=name, device=device)
    return CalibratedNanoTracker(load_nanotrack("v2", weights), CalibratedParams(), name=name, device=device)


TRACKERS = variant_specs(VARIANTS, family="SiamScope", params_type=CalibratedParams, build=build)
