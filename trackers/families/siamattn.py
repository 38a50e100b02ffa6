"""SiamAttn (Yu et al., CVPR 2020): the RPN proposal (penalty, cosine window) of the shared
Siamese loop, then the region refinement module's box and mask for the picked proposal.

Network: models/siamattn.py. No weights were published; `siamattn_effnet.pth` (EfficientNet-Lite0
backbone) comes from the project's training pipeline (`python main.py train --model siamattn`,
trackers/train/siamattn_train.py) and ships in resources/ (everything but the frozen backbone,
which comes from its package; record in resources/siamattn_effnet.json): with no weights given,
that file is used (`registry.find_weights` looks in resources/ after the model folders). A whole
network's state dict (backbone included) loads too. Without any file the tracker can still be built
with a seeded random initialisation by passing `seed:N` as the weights (CLI `--weights seed:0`,
or typed into the app's checkpoint field): the whole pipeline runs, attention, heatmap, channel
maps and mask included, but the boxes mean nothing.
"""

from __future__ import annotations

import dataclasses
import math
import os

import cv2
import numpy as np
import torch

from models.checkpoint import CheckpointError, load_into, read_state_dict
from models.siamattn import SiamAttn, SiamAttnConfig, apply_box_deltas, build_siamattn

from ..core import decode as D
from ..core.base import StageTimer, TrackResult, param
from ..core.paths import RESOURCES_DIR
from ..core.registry import Variant, variant_specs
from ..core.siamese import AnchorDecoder, RPNParams, SearchContext, SiameseRPNTracker

SEED_PREFIX = "seed:"


@dataclasses.dataclass
class SiamAttnParams(RPNParams):
    """SiamRPN++ R50's tracking values (pysot) plus the refinement switches."""

    penalty_k: float = 0.05
    window_influence: float = 0.42
    lr: float = 0.38
    refine_box: bool = param(True, "replace the RPN box by the refinement module's box")
    predict_mask: bool = param(True, "compute the frame-sized mask")
    # the limit keeps an untrained or confused refinement from throwing the box across the search region
    max_refine_shift: float = param(
        0.5, "largest centre shift the refinement may apply, in box sizes", range=(0.0, 5.0)
    )


#: the project's trained weights (trackers/train/siamattn_train.py; record in resources/siamattn_effnet.json)
WEIGHTS = os.path.join(RESOURCES_DIR, "siamattn_effnet.pth")
#: neck input channels (the first RPN level's backbone channels) -> backbone, for files without the backbone
_NECK_IN = {40: "efficientnet-lite0", 512: "resnet50"}


def detect_config(state: dict) -> SiamAttnConfig | None:
    """The network configuration a SiamAttn state dict was saved from, or None if it is not one.

    Two layouts: the whole network (backbone included), or everything but a frozen EfficientNet-
    Lite0 backbone, which then comes from its package (`pretrained_backbone=True`), as the
    project's trained file holds it."""
    key = "neck.downsample2.downsample.0.weight"
    if key not in state or not any(k.startswith("attention.") for k in state):
        return None
    if "backbone.trunk._conv_stem.weight" in state:
        backbone, from_package = "efficientnet-lite0", False
    elif "backbone.trunk.conv1.weight" in state:
        backbone, from_package = "resnet50", False
    elif (
        not any(k.startswith("backbone.") for k in state)
        and _NECK_IN.get(int(state[key].shape[1])) == "efficientnet-lite0"
    ):
        backbone, from_package = "efficientnet-lite0", True
    else:
        return None
    cfg = SiamAttnConfig(backbone=backbone, pretrained_backbone=from_package)
    cfg.channels = int(state["neck.downsample2.downsample.0.weight"].shape[0])
    if "refinement.box_fuse.0.weight" in state:
        cfg.refine_channels = int(state["refinement.box_fuse.0.weight"].shape[0])
    return cfg


def load_siamattn(weights: str) -> SiamAttn:
    """A network from a checkpoint (strict), or seeded random weights for `seed:N`."""
    if weights.startswith(SEED_PREFIX):
        try:
            seed = int(weights[len(SEED_PREFIX) :])
        except ValueError:
            raise CheckpointError(f"{weights!r}: expected seed:N with an integer N") from None
        return build_siamattn(SiamAttnConfig(), seed=seed).eval()
    state = read_state_dict(weights)
    cfg = detect_config(state)
    if cfg is None:
        net = build_siamattn(SiamAttnConfig(pretrained_backbone=False))
        load_into(net, state, weights, "not a SiamAttn checkpoint")  # raises with the key report
    net = build_siamattn(cfg)
    ignore = lambda k: k.endswith("num_batches_tracked")  # noqa: E731
    if cfg.pretrained_backbone:
        # backbone from the package; every other weight from the file, strictly
        trained = torch.nn.ModuleDict({n: m for n, m in net.named_children() if n != "backbone"})
        load_into(trained, state, weights, f"siamattn-{cfg.backbone} (all but the backbone)", ignore=ignore)
    else:
        load_into(net, state, weights, f"siamattn-{cfg.backbone}", ignore=ignore)
    return net.eval()


class SiamAttnTracker(SiameseRPNTracker):
    extra_keys = {
        **SiameseRPNTracker.extra_keys,
        "rpn_box": "the RPN's box after smoothing, before refinement",
        "proposal": "the picked proposal itself (the refined region)",
    }

    def __init__(self, network: SiamAttn, params: SiamAttnParams, name: str = "siamattn", device: str = "cpu"):
        super().__init__(network, AnchorDecoder(stride=network.cfg.stride), params, name=name, device=device)

    @torch.inference_mode()
    def init(self, frame, box) -> None:
        super().init(frame, box)

    @torch.inference_mode()
    def run_network(self, patch: np.ndarray) -> dict:
        return self.network_track(self._tensor(patch))

    # -- the template's hooks (SiameseRPNTracker.track) ---------------------------------------
    def refine_step(self, step, ctx: SearchContext, timer: StageTimer):
        p: SiamAttnParams = self.params
        ctx.notes["rpn_box"] = step.box  # the RPN's box after smoothing, before refinement
        ctx.notes["proposal"] = self.proposal_in_frame(step, ctx.scale_z, ctx.center_before)
        ctx.notes["mask"] = None
        if p.refine_box or p.predict_mask:
            with timer.stage("refine"):
                step, ctx.notes["mask"] = self.refine(step, ctx.scale_z, ctx.center_before, ctx.frame_shape)
        return step

    def finish_result(self, result: TrackResult, step, ctx: SearchContext, timer: StageTimer) -> TrackResult:
        result.mask = ctx.notes["mask"]
        result.extra["rpn_box"] = ctx.notes["rpn_box"]
        result.extra["proposal"] = ctx.notes["proposal"]  # the picked proposal itself (the refined region)
        return result

    def proposal_in_frame(self, step, scale_z: float, center_before) -> tuple[float, float, float, float]:
        """The picked RPN proposal (before size smoothing) as a frame box x, y, w, h."""
        cx, cy, w, h = (float(v) / scale_z for v in step.pred_bbox[:, step.best])
        cx, cy = cx + float(center_before[0]), cy + float(center_before[1])
        return (cx - w / 2, cy - h / 2, w, h)

    def refine(self, step, scale_z: float, center_before, frame_shape):
        """The refinement module on the picked proposal: (updated step, frame-sized mask or None)."""
        p: SiamAttnParams = self.params
        c = (p.instance_size - 1) / 2
        cx, cy, w, h = (float(v) for v in step.pred_bbox[:, step.best])
        roi = torch.tensor(
            [[c + cx - w / 2, c + cy - h / 2, c + cx + w / 2, c + cy + h / 2]], dtype=torch.float32, device=self.device
        )
        with torch.inference_mode():
            # the roi in the network's precision; the box arithmetic after it stays float32
            deltas, mask_logits = self.network.refine(roi.to(self.dtype))
            deltas = deltas.float()
            lim = p.max_refine_shift
            deltas[:, :2] = deltas[:, :2].clamp(-lim, lim)
            refined = apply_box_deltas(roi, deltas)[0].cpu().numpy()
        mask = None
        if p.predict_mask:
            prob = torch.sigmoid(mask_logits[0, 0]).float().cpu().numpy()
            mask = paste_mask(prob, roi[0].cpu().numpy(), c, scale_z, center_before, frame_shape)
        if p.refine_box:
            x1, y1, x2, y2 = (float(v) for v in refined)
            bbox_delta = np.array([(x1 + x2) / 2 - c, (y1 + y2) / 2 - c, x2 - x1, y2 - y1]) / scale_z
            cx, cy, w, h = D.smooth_update(center_before, self.size, bbox_delta, step.lr)
            cx, cy, w, h = D.clip_box(cx, cy, w, h, frame_shape)
            step = dataclasses.replace(
                step, bbox_delta=bbox_delta, center=(cx, cy), size=(w, h), box=(cx - w / 2, cy - h / 2, w, h)
            )
        return step, mask


def paste_mask(prob: np.ndarray, roi, crop_center: float, scale_z: float, frame_center, frame_shape) -> np.ndarray:
    """An (m, m) mask over roi (x1, y1, x2, y2 crop pixels) -> (H, W) float32 frame mask, zero elsewhere.

    Crop pixel p lies at frame_center + (p - crop_center) / scale_z (the decode's mapping); mask
    cell j's centre at roi x1 + (j + 0.5) * w / m.
    """
    H, W = frame_shape[:2]
    m = prob.shape[0]
    x1, y1, x2, y2 = (float(v) for v in roi)
    ax = (x2 - x1) / m / scale_z
    ay = (y2 - y1) / m / scale_z
    bx = frame_center[0] + (x1 + 0.5 * (x2 - x1) / m - crop_center) / scale_z
    by = frame_center[1] + (y1 + 0.5 * (y2 - y1) / m - crop_center) / scale_z
    M = np.array([[ax, 0, bx], [0, ay, by]], np.float64)
    if not (math.isfinite(ax) and math.isfinite(ay) and ax > 0 and ay > 0):
        return np.zeros((H, W), np.float32)
    return cv2.warpAffine(
        prob.astype(np.float32), M, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0
    )


def build(name: str, weights: str | None, device: str = "cpu", params: SiamAttnParams | None = None) -> SiamAttnTracker:
    if weights is None and os.path.isfile(WEIGHTS):
        weights = WEIGHTS
    if weights is None:
        raise CheckpointError(
            "siamattn needs its checkpoint siamattn_effnet.pth (from the project's training "
            "pipeline), or seed:N for a seeded random network"
        )
    net = load_siamattn(str(weights))
    return SiamAttnTracker(net, params or SiamAttnParams(), name=name, device=device)


#: issue 22.6: trained here, not shown to beat the training-free floor (effnet-siamfc-floor) on the
#: SRE validation table (docs/validation.md, resources/default_tracker.json "sre_2026_12_03")
EXPERIMENTAL_SIAMATTN = (
    "below effnet-siamfc-floor: validation set under SRE (19 sequences x 12 starts), AUC 0.573 "
    "against the floor's 0.587, behind it on 11 of 19 sequences (VOT-LT F 0.542 against 0.539)"
)

VARIANTS = (
    Variant(
        "siamattn",
        "SiamAttn (deformable Siamese attention, EfficientNet-Lite0)",
        {},
        "siamattn_effnet.pth",
        note=EXPERIMENTAL_SIAMATTN,
        experimental=True,
    ),
)

TRACKERS = variant_specs(
    VARIANTS,
    family="SiamAttn",
    params_type=SiamAttnParams,
    build=build,
    description="Deformable Siamese attention (spatial/channel self-attention, cross-attention, deformable "
    "conv) + SiamRPN++ heads + region refinement (box and mask). Weights come from the project's "
    "training pipeline; 'seed:N' as the checkpoint builds a seeded random network for a demo.",
)
