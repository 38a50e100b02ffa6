"""The pysot SiamRPN family: SiamRPN (AlexNet), SiamRPN++ (ResNet-50, MobileNetV2) and the
long-term SiamRPN++.

Each tracker is the shared RPN loop (`trackers/core/siamese.py`: crop -> network -> anchor decode ->
penalty/window -> smoothing) on a network from `models/pysot.py`; the hyper-parameters of each
pysot experiment (`experiments/<name>/config.yaml`, TRACK section) are its row of VARIANTS.

Checkpoints: pysot's model zoo ships every model as `model.pth` inside a folder named after the
experiment (`siamrpn_r50_l234_dwxcorr/model.pth`, ...), so `weights_file` is that relative path:
put the experiment folder (or just its `model.pth` in a folder of that name) into a model folder
and the tracker finds it. Plain state_dicts, `{'state_dict': ..., 'epoch': ...}` training
snapshots and `module.`-prefixed keys all load.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from models.checkpoint import CheckpointError, load_checkpoint
from models.pysot import PYSOT_RPN_MODELS

from ..core import decode as D
from ..core.base import StageTimer, TrackingState, TrackResult, param
from ..core.registry import Variant, variant_specs
from ..core.siamese import AnchorDecoder, Decoded, RPNParams, SearchContext, SiameseRPNTracker

# pysot ANCHOR section, the same in all four experiments
ANCHOR_STRIDE = 8
ANCHOR_RATIOS = (0.33, 0.5, 1, 2, 3)
ANCHOR_SCALES = (8,)


@dataclasses.dataclass
class SiamRPNppLTParams(RPNParams):
    """experiments/siamrpn_r50_l234_dwxcorr_lt (pysot SiamRPNLTTracker).

    Below `confidence_low` the target counts as lost: the state is held and the next frames search
    a wide `lost_instance_size` crop with an almost flat window (`lost_window_influence`); the
    tracker returns to the normal search once a score exceeds `confidence_high`.
    """

    penalty_k: float = 0.05
    window_influence: float = 0.28
    lr: float = 0.22
    lost_instance_size: int = param(831, "search crop side while the target is lost", range=(127, 2047))
    lost_window_influence: float = param(
        0.001, "cosine window while the target is lost (almost uniform)", range=(0.0, 1.0)
    )
    confidence_low: float = param(0.8, "score below which the target counts as lost", range=(0.0, 1.0))
    confidence_high: float = param(0.998, "score above which the normal search resumes", range=(0.0, 1.0))


class SiamRPNLTTracker(SiameseRPNTracker):
    """SiamRPN++ long-term: the RPN loop plus a lost / re-detect switch (pysot SiamRPNLTTracker).

    Per frame, with `best` the argmax of the penalised, windowed score and `best_score` its raw
    score:
    * the search crop is `lost_instance_size` and the window influence `lost_window_influence`
      while in long-term mode, else the normal ones;
    * the state (centre, size) is updated only if best_score >= confidence_low, and is stored
      **unclipped**; only the returned box is clipped to the frame;
    * long-term mode starts when best_score < confidence_low and ends when best_score > confidence_high.

    TrackResult.state: LOST when best_score < confidence_low (the box is the held one);
    REDETECTING when the state was updated but the tracker stays in long-term mode (a confident
    enough match in the wide search, not yet > confidence_high); TRACKING otherwise.
    """

    extra_keys = {
        **SiameseRPNTracker.extra_keys,
        "longterm_before": "the frame was searched in long-term (lost) mode",
        "longterm": "the next frame is searched in long-term mode",
        "instance_size": "search crop side used on this frame",
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.longterm = False

    def init(self, frame: np.ndarray, box) -> None:
        super().init(frame, box)
        self.longterm = False

    def decode(self, cls: np.ndarray, loc: np.ndarray, scale_z: float, frame_shape) -> Decoded:
        p = self.params
        score, pred_bbox, best, penalty, pscore = self.candidates(
            cls, loc, scale_z, window_influence=p.lost_window_influence if self.longterm else p.window_influence
        )
        bbox_delta = pred_bbox[:, best] / scale_z
        lr = penalty[best] * score[best] * p.lr
        if score[best] >= p.confidence_low:
            cx, cy, w, h = D.smooth_update(self.center, self.size, bbox_delta, lr)
        else:
            (cx, cy), (w, h) = self.center, self.size
        # stored state unclipped (pysot keeps it so), returned box clipped
        ccx, ccy, cw, ch = D.clip_box(cx, cy, w, h, frame_shape)
        return Decoded(
            score,
            pred_bbox,
            penalty,
            pscore,
            best,
            float(lr),
            bbox_delta,
            (float(cx), float(cy)),
            (float(w), float(h)),
            (ccx - cw / 2, ccy - ch / 2, cw, ch),
        )

    def search_size(self) -> int:
        p = self.params
        return p.lost_instance_size if self.longterm else p.instance_size

    def engine_search_sizes(self) -> list:
        return [self.params.lost_instance_size]

    def finish_result(self, result: TrackResult, step: Decoded, ctx: SearchContext, timer: StageTimer) -> TrackResult:
        p = self.params
        longterm_before = self.longterm
        best_score = float(step.score[step.best])
        if best_score < p.confidence_low:
            self.longterm = True
        elif best_score > p.confidence_high:
            self.longterm = False
        if best_score < p.confidence_low:
            result.state = TrackingState.LOST
        elif self.longterm:
            result.state = TrackingState.REDETECTING
        result.extra.update(longterm_before=longterm_before, longterm=self.longterm, instance_size=ctx.instance_size)
        return result


#: the variants: each pysot experiment's TRACK values (experiments/<network>/config.yaml) where they are
#: not RPNParams' defaults; `network` is the experiment (models/pysot.py builds its network)
VARIANTS = (
    Variant(
        "siamrpn-alex",
        "SiamRPN (AlexNet, DW-XCorr)",
        dict(penalty_k=0.16, window_influence=0.4, lr=0.3, instance_size=287),
        "siamrpn_alex_dwxcorr/model.pth",
        network="siamrpn_alex_dwxcorr",
        family="SiamRPN",
        description="pysot SiamRPN on the legacy AlexNet with a depth-wise correlation RPN; 287 search, 21x21 grid.",
    ),
    Variant(
        "siamrpnpp-r50",
        "SiamRPN++ (ResNet-50, layers 2-4)",
        dict(penalty_k=0.05, window_influence=0.42, lr=0.38),
        "siamrpn_r50_l234_dwxcorr/model.pth",
        network="siamrpn_r50_l234_dwxcorr",
        description="SiamRPN++: stride-8 ResNet-50 layers 2-4, DW-XCorr RPN per level, softmax-weighted fusion.",
    ),
    Variant(
        "siamrpnpp-mobilev2",
        "SiamRPN++ (MobileNetV2, layers 3/5/7)",
        dict(penalty_k=0.04, window_influence=0.4, lr=0.5),
        "siamrpn_mobilev2_l234_dwxcorr/model.pth",
        network="siamrpn_mobilev2_l234_dwxcorr",
        description="SiamRPN++ on MobileNetV2 x1.4 levels 3/5/7, DW-XCorr RPN per level, averaged.",
    ),
    Variant(
        "siamrpnpp-r50-lt",
        "SiamRPN++ long-term (ResNet-50)",
        {},
        "siamrpn_r50_l234_dwxcorr_lt/model.pth",
        network="siamrpn_r50_l234_dwxcorr_lt",
        params_type=SiamRPNppLTParams,
        description="SiamRPN++ R50 with a lost / re-detect switch: below the confidence threshold the state "
        "is held and an 831-px search looks for the target.",
    ),
)
VARIANT_BY_NAME = {v.name: v for v in VARIANTS}


def build_network(experiment: str, weights: str | None = None) -> torch.nn.Module:
    """The pysot network of an experiment, with its checkpoint loaded (strictly) when given."""
    net = PYSOT_RPN_MODELS[experiment]()
    if weights is not None:
        load_checkpoint(net, weights, fmt=f"pysot {experiment}")
    return net.eval()


def make_tracker(v: Variant, network: torch.nn.Module, params=None, device: str = "cpu") -> SiameseRPNTracker:
    """Tracker of a variant around an already-built network (tests feed seeded or replayed networks)."""
    decoder = AnchorDecoder(ANCHOR_STRIDE, ANCHOR_RATIOS, ANCHOR_SCALES)
    tracker_type = SiamRPNLTTracker if v.params_type is SiamRPNppLTParams else SiameseRPNTracker
    return tracker_type(network, decoder, params or v.make_params(RPNParams), name=v.name, device=device)


def build(name: str, weights: str | None, device: str = "cpu") -> SiameseRPNTracker:
    v = VARIANT_BY_NAME[name]
    if weights is None:
        raise CheckpointError(f"{name} needs a checkpoint (pysot model zoo {v.weights})")
    return make_tracker(v, build_network(v.network, weights), device=device)


TRACKERS = variant_specs(VARIANTS, family="SiamRPN++", params_type=RPNParams, build=build)
