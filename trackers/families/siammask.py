"""SiamMask (pysot `SiamMaskTracker`, experiments/siammask_r50_l3).

The box step is the shared RPN loop (`SiameseRPNTracker`: crop, DW-XCorr RPN, anchor decode,
penalty, window, lr smoothing, clip). Then, at the chosen score cell, the refine head produces a
127x127 mask for the exemplar-sized window around that cell; the mask is warped back into the
frame (one cv2.warpAffine, bilinear, zero outside), thresholded at `mask_threshold`, and the
largest outer contour gives the rotated rectangle (`cv2.minAreaRect` -> 4 corners). A mask whose
largest contour has no more than 100 px of area falls back to the RPN box's corners (pysot).

`TrackResult.mask` is the frame-sized float mask (probabilities), `TrackResult.polygon` the 4
corners. The returned box is pysot's RPN box, or with `box_from_mask` the axis-aligned extent of
the mask's rotated rectangle (the polygon's bounds). The tracker state always follows the RPN box,
as in pysot.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import torch

from models.checkpoint import CheckpointError, load_checkpoint
from models.siammask import REFINE_SIDE, REFINE_WINDOW_SHAPES, RefineDecode, SiamMaskNet

from ..core.base import StageTimer, TrackResult, param
from ..core.registry import Variant, variant_specs
from ..core.siamese import AnchorDecoder, Decoded, RPNParams, SearchContext, SiameseRPNTracker


@dataclasses.dataclass
class SiamMaskParams(RPNParams):
    """experiments/siammask_r50_l3/config.yaml TRACK section."""

    penalty_k: float = 0.1
    window_influence: float = 0.41
    lr: float = 0.32
    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    base_size: int = param(
        8, "TRACK.BASE_SIZE: score grid = (255-127)/8 + 1 + 8 = 25 (fixed by the network)", live=False
    )
    anchor_stride: int = param(8, "anchor spacing in search-crop pixels (fixed by the network)", live=False)
    mask_threshold: float = param(
        0.15, "mask probability above which a pixel is the target (TRACK.MASK_THERSHOLD)", range=(0.0, 1.0)
    )
    min_contour_area: float = param(100.0, "mask area (px) below which the mask is taken as empty", range=(0.0, 1e6))
    box_from_mask: bool = param(False, "return the mask's axis-aligned extent instead of the RPN box")


def mask_to_frame(mask: np.ndarray, sub_box, frame_shape) -> np.ndarray:
    """Paste a (127, 127) mask covering `sub_box` (x, y, w, h, frame px) into a frame-sized float
    mask: pysot's `_crop_back`, the affine map frame -> mask-window expressed as a warp of the mask."""
    H, W = frame_shape[:2]
    out = mask.shape[0]
    s = out / sub_box[2]
    back = (-sub_box[0] * s, -sub_box[1] * s, W * s, H * s)
    a = (W - 1) / back[2]
    b = (H - 1) / back[3]
    mapping = np.array([[a, 0, -a * back[0]], [0, b, -b * back[1]]], dtype=np.float64)
    return cv2.warpAffine(mask, mapping, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def mask_polygon(mask_in_img: np.ndarray, threshold: float, min_area: float):
    """4 corners (4, 2) float32 of the min-area rectangle around the largest outer contour of
    mask > threshold, or None when there is no contour larger than min_area px."""
    binary = (mask_in_img > threshold).astype(np.uint8)
    contours = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[-2]
    if not contours:
        return None
    areas = [cv2.contourArea(c) for c in contours]
    if np.max(areas) <= min_area:
        return None
    contour = contours[int(np.argmax(areas))].reshape(-1, 2)
    return cv2.boxPoints(cv2.minAreaRect(contour))


class SiamMaskTracker(SiameseRPNTracker):
    extra_keys = {
        **SiameseRPNTracker.extra_keys,
        "mask_cell": "the score cell whose mask was refined",
        "sub_box": "the frame box (x, y, w, h) the 127x127 mask covers",
        "mask_crop": "the refined 127x127 mask before the paste-back",
    }

    def __init__(self, network: SiamMaskNet, params: SiamMaskParams, name: str = "", device: str = "cpu"):
        super().__init__(network, AnchorDecoder(params.anchor_stride), params, name=name, device=device)

    def engine_modules(self) -> dict:
        """The refinement's convolutions on one cell's windows run in the main network's engine
        (pysot runs them in torch: 16 ms of a 170 ms frame there, bench --profile)."""
        return {"refine": (RefineDecode(self.network.refine_head), REFINE_WINDOW_SHAPES)}

    def mask_step(self, step: Decoded, center_before, s_x: float, frame_shape):
        """Mask at the chosen cell -> (127x127 mask, sub_box, frame-sized mask, polygon (4, 2))."""
        p = self.params
        S = int(round(np.sqrt(step.score.size / self.decoder.anchor_num)))
        _, dy, dx = np.unravel_index(step.best, (self.decoder.anchor_num, S, S))
        with torch.no_grad():
            logits = self.run_module("refine", *self.network.refine_windows((int(dy), int(dx))))
        mask = logits.sigmoid().reshape(REFINE_SIDE, REFINE_SIDE).float().cpu().numpy()
        # the exemplar-sized window of the search crop centred on the chosen cell, in frame px
        s = s_x / p.instance_size
        crop_x, crop_y = center_before[0] - s_x / 2, center_before[1] - s_x / 2
        sub_box = (
            crop_x + (dx - p.base_size / 2) * p.anchor_stride * s,
            crop_y + (dy - p.base_size / 2) * p.anchor_stride * s,
            s * p.exemplar_size,
            s * p.exemplar_size,
        )
        mask_in_img = mask_to_frame(mask, sub_box, frame_shape)
        polygon = mask_polygon(mask_in_img, p.mask_threshold, p.min_contour_area)
        if polygon is None:  # empty mask: the RPN box's corners
            x, y, w, h = step.box
            polygon = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
        return mask, sub_box, mask_in_img, np.asarray(polygon, np.float64), (int(dy), int(dx))

    def finish_result(self, result: TrackResult, step: Decoded, ctx: SearchContext, timer: StageTimer) -> TrackResult:
        p = self.params
        with timer.stage("mask"):
            mask, sub_box, mask_in_img, polygon, cell = self.mask_step(
                step, ctx.center_before, ctx.s_x, ctx.frame_shape
            )
        result.mask = mask_in_img.astype(np.float32, copy=False)
        result.mask_threshold = p.mask_threshold
        result.polygon = polygon
        # the refined 127x127 mask over sub_box (x, y, w, h frame px), before the paste-back
        result.extra.update({"mask_cell": cell, "sub_box": sub_box, "mask_crop": mask})
        if p.box_from_mask:
            x0, y0 = polygon.min(0)
            x1, y1 = polygon.max(0)
            result.box = (float(x0), float(y0), float(x1 - x0), float(y1 - y0))
        return result


def load_siammask(weights: str) -> SiamMaskNet:
    net = SiamMaskNet()
    load_checkpoint(net, weights, fmt="pysot siammask_r50_l3")
    return net.eval()


VARIANTS = (Variant("siammask-r50", "SiamMask (ResNet-50)", {}, "siammask_r50_l3/model.pth"),)


def build(name: str, weights: str | None, device: str = "cpu") -> SiamMaskTracker:
    if weights is None:
        raise CheckpointError(f"{name} needs its checkpoint siammask_r50_l3/model.pth")
    return SiamMaskTracker(load_siammask(weights), SiamMaskParams(), name=name, device=device)


TRACKERS = variant_specs(
    VARIANTS,
    family="SiamMask",
    params_type=SiamMaskParams,
    build=build,
    description="SiamRPN++ box branch plus a refined segmentation mask and its rotated rectangle "
    "(pysot siammask_r50_l3)",
)
