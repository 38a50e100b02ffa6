"""siamscope-default: the tracker a new user meets first. NanoTrack v2 (Apache-2.0 weights,
nanotrackv2.pth from ../shared/models/nanotrack or `python main.py download nanotrack-v2`) picks the
candidate, under SiamScope's long-term guard (trackers/families/guard.py): calibrated
target-present score, a box that changes size only as far as that score supports, LOST and
re-detection.

It is the default because the leave-one-video-out table chose it (trackers/train/lovo.py; record:
resources/default_tracker.json "lovo_2026_11_27"): it beats the training-free floor and CSRT on
every held-out video, where the EfficientNet head trained here (siamscope-effnet) does not.
"""
from __future__ import annotations

import dataclasses
from typing import Optional

from models.checkpoint import CheckpointError
from models.efficientnet_lite import efficientnet_lite0
from models.siamscope import BACKBONE_STAGE

from ..core.registry import Variant, variant_specs
from ..core.siamese import SiameseRPNTracker
from .guard import VERIFY_STAGE, GuardParams, LongTermGuard
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


class DefaultTracker(LongTermGuard, NanoTracker):
    """NanoTrack v2 (Apache-2.0 weights, ../shared/models/nanotrack or the model zoo) as the
    localiser, under the long-term guard; the verifier is a frozen ImageNet EfficientNet-Lite0 of
    its own (stride 8 and 16); the presence score uses the stride-8 figure alone (calibration:
    the stride-16 one added nothing), the stride-16 cosine is reported as `appearance`."""

    extra_keys = {**SiameseRPNTracker.extra_keys, **LongTermGuard.extra_keys,
                  "head_score": "NanoTrack v2's own score at the chosen cell",
                  "appearance": "stride-16 cosine of the first frame's target with the candidate (not in the score)"}

    def __init__(self, network, params: DefaultParams, name: str, device: str = "cpu", engine: str = "auto"):
        # before the localiser's set_engine, which exports the verification module with its graph
        self._verify_trunk = efficientnet_lite0((VERIFY_STAGE, BACKBONE_STAGE)).eval()
        super().__init__(network, params, name=name, device=device, engine=engine)
        self._verify_trunk.to(self.device)


    def verify_backbone(self):
        return self._verify_trunk

    def to(self, device: str) -> "DefaultTracker":
        super().to(device)
        self._verify_trunk.to(self.device)
        return self


VARIANTS = (Variant("siamscope-default", "SiamScope default (NanoTrack v2 + long-term guard)", {}, "nanotrackv2.pth"),)


def build(name: str, weights: Optional[str] = None, device: str = "cpu") -> DefaultTracker:
    if weights is None:
        raise CheckpointError(f"{name} needs NanoTrack v2's checkpoint (nanotrackv2.pth: "
                              "python main.py download nanotrack-v2, or ../shared/models/nanotrack)")
    return DefaultTracker(load_nanotrack("v2", weights), DefaultParams(), name=name, device=device)


TRACKERS = variant_specs(
    VARIANTS, family="SiamScope", params_type=DefaultParams, build=build,
    description="NanoTrack v2 (Apache-2.0 weights) localises; a frozen ImageNet EfficientNet-Lite0 checks the "
                "candidate against the first frame; calibrated target-present score, a box that changes size "
                "only as far as that score supports, LOST and re-detection. Chosen on the leave-one-video-out "
                "table (trackers/train/lovo.py).")
