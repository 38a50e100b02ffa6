"""SiamFC-style multi-scale trackers: siamfc-pytorch's TrackerSiamFC and SiamDW's SiamFC+.

One loop (Bertinetto et al., SiamFC): crop the search region at a few scales around the last
centre, correlate each with the exemplar, upsample the 17x17 responses (bicubic, x16), pick the
scale whose peak is highest after a penalty on the non-unit scales, normalise that map, blend in a
hanning window, take its argmax as the new centre, and damp the scale change.

The two references differ in the details the fixtures pin down, so those live in two classes:
* `SiamFCTracker` (siamfc-pytorch): RGB input, one crop per scale from the frame
  (`np.round` corners, padding colour rounded by cv2), map centre (272 - 1) / 2, displacement
  scaled by the chosen scale's crop side, size damped multiplicatively, float32 state.
* `SiamFCPlusTracker` (SiamDW SiamFC+): BGR input, a scale pyramid cut from one search region
  (`make_scale_pyramid`), map centre ceil(272 / 2), displacement scaled by the unscaled search
  side, search side damped and clamped to [0.2, 5] x its initial value, state clamped to the frame.

Confidence (`TrackResult.score`): both networks are trained with a logistic loss on the raw
response, so sigmoid(peak of the chosen scale's raw 17x17 response) is the probability the
network gives to "the target is here"; it lies in [0, 1] (random weights saturate it at 1).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import cv2
import numpy as np
import torch

from models.device import check_device, check_finite

from ..core.base import (
    Box,
    ChannelMaps,
    SearchRegion,
    StageTimer,
    Tracker,
    TrackingState,
    TrackResult,
    param,
    validate_box,
)
from ..core.crop import get_subwindow, to_tensor_layout
from ..core.engines import EngineMixin
from ..core.registry import Variant, variant_specs


@dataclasses.dataclass
class SiamFCParams:
    """Hyper-parameters (defaults: siamfc-pytorch `TrackerSiamFC.parse_args`)."""

    exemplar_size: int = param(127, "template crop side in pixels (fixed by the network)", live=False)
    instance_size: int = param(255, "search crop side in pixels (the response size follows from it)", live=False)
    context_amount: float = param(
        0.5, "context added around the box for the crops, as a fraction of (w + h)", range=(0.0, 2.0)
    )
    scale_num: int = param(3, "search scales tried per frame", range=(1, 9))
    scale_step: float = param(1.0375, "ratio between neighbouring search scales", range=(1.0, 2.0))
    scale_lr: float = param(0.59, "how fast the box size follows the best scale", range=(0.0, 1.0))
    scale_penalty: float = param(
        0.9745, "factor on the peaks of the scales other than the current one", range=(0.0, 1.0)
    )
    window_influence: float = param(
        0.176, "weight of the cosine window: higher prefers positions near the last centre", range=(0.0, 1.0)
    )
    response_size: int = param(17, "side of the network's response map (fixed by the crop sizes)", live=False)
    response_up: int = param(16, "upsampling of the response before the peak is taken", range=(1, 32))
    total_stride: int = param(8, "response cell size in search-crop pixels (fixed by the network)", live=False)


@dataclasses.dataclass
class SiamFCPlusParams(SiamFCParams):
    """SiamDW SiamFC+ hyper-parameters (defaults: SiamFCRes22.yaml, section TEST.OTB2015; the
    CIResInception/CIResNeXt configs use instance 263 and thus exemplar 263 - 128 = 135)."""

    scale_step: float = 1.1897
    scale_lr: float = 0.2226
    scale_penalty: float = 0.937
    window_influence: float = 0.2897
    min_search_ratio: float = param(0.2, "search side kept at least this times its initial value", range=(0.01, 1.0))
    max_search_ratio: float = param(5.0, "search side kept at most this times its initial value", range=(1.0, 100.0))


@dataclasses.dataclass
class FCStep:
    """What one scoring step produced (the parity tests compare each field)."""

    raw: np.ndarray  # (n, 17, 17) float32 network responses, scale order small..large
    up_max: np.ndarray  # (n,) max of each upsampled map
    up_max_penalized: np.ndarray
    best_scale: int
    chosen_up: np.ndarray  # (U, U) float32 upsampled map of the chosen scale
    chosen_min: float
    chosen_sum: float  # sum after subtracting the min (the divisor)
    final: np.ndarray  # (U, U) float64 (1 - w) * normalised + w * window
    peak_rc: tuple[int, int]
    disp_response: np.ndarray  # (dx, dy) in upsampled-map pixels from the map centre


def penalize_scales(up_max: np.ndarray, scale_penalty: float) -> np.ndarray:
    """Scale penalty on the non-unit scales' peaks (float32 maps times a Python float, as
    siamfc-pytorch multiplies them)."""
    out = up_max.copy()
    n = len(out)
    out[: n // 2] *= scale_penalty
    out[n // 2 + 1 :] *= scale_penalty
    return out


def hann_window(size: int) -> np.ndarray:
    """The (size, size) cosine window, summing to 1."""
    w = np.outer(np.hanning(size), np.hanning(size))
    return w / w.sum()


def score_responses(
    raw: np.ndarray,
    up_size: int,
    window: np.ndarray,
    window_influence: float,
    penalize: Callable[[np.ndarray], np.ndarray],
    peak_origin: float,
) -> FCStep:
    """SiamFC's scoring of per-scale responses (n, S, S): upsample to up_size, choose the scale
    (penalised peaks), normalise, window, argmax, in both references' order. The floor tracker
    (trackers/families/floor.py) scores its cosine maps with it too."""
    n = raw.shape[0]
    up = np.stack([cv2.resize(r, (up_size, up_size), interpolation=cv2.INTER_CUBIC) for r in raw])
    up_max = up.reshape(n, -1).max(1)
    up_max_pen = penalize(up_max)
    best = int(np.argmax(up_max_pen))
    chosen = up[best]
    # float32 like the references: map - min, then / sum
    cmin = chosen.min()
    norm = chosen - cmin
    csum = norm.sum()
    norm = norm / csum
    final = (1 - window_influence) * norm + window_influence * window
    r, c = np.unravel_index(int(final.argmax()), final.shape)
    disp = np.array([c, r], np.float64) - peak_origin
    return FCStep(raw, up_max, up_max_pen, best, chosen, float(cmin), float(csum), final, (int(r), int(c)), disp)


class SiamFCTracker(EngineMixin, Tracker):
    """siamfc-pytorch's TrackerSiamFC. `network` is a models.siamfc.SiamFCBase."""

    extra_keys = {
        "scale": "index of the best search scale",
        "peak_rc": "row, column of the response peak",
        "raw_peak": "the raw response at the peak (the score is its sigmoid)",
    }

    rgb_input = True
    dtype = torch.float32  # of the network's weights and inputs (set_precision)

    def __init__(
        self, network: torch.nn.Module, params: SiamFCParams | None = None, name: str = "siamfc", device: str = "cpu"
    ):
        self.network = network.eval()
        self.params = params or SiamFCParams()
        self.name = name
        self.device = check_device(device)
        self.network.to(self.device)
        self.collect_channels = True
        self._windows: dict[int, np.ndarray] = {}

    # -- shared parts -------------------------------------------------------------------------
    def scale_factors(self) -> np.ndarray:
        n = self.params.scale_num
        return self.params.scale_step ** np.linspace(-(n // 2), n // 2, n)

    def upscale_size(self) -> int:
        return self.params.response_up * self.params.response_size

    def window(self) -> np.ndarray:
        U = self.upscale_size()
        if U not in self._windows:
            self._windows[U] = hann_window(U)
        return self._windows[U]

    def peak_origin(self) -> float:
        """Map pixel that means 'no displacement' (siamfc-pytorch: the exact centre)."""
        return (self.upscale_size() - 1) / 2

    def penalize(self, up_max: np.ndarray) -> np.ndarray:
        return penalize_scales(up_max, self.params.scale_penalty)

    def _input(self, frame: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if self.rgb_input else frame

    def _batch(self, patches) -> torch.Tensor:
        return torch.from_numpy(np.concatenate([to_tensor_layout(p) for p in patches])).to(self.device, self.dtype)

    @torch.no_grad()
    def run_network(self, patches) -> dict:
        return self.network_track(self._batch(patches), with_channels=self.collect_channels)

    def engine_shapes(self) -> tuple[tuple, tuple]:
        p = self.params  # one exemplar; the search is a batch of one crop per scale
        return (1, 3, p.exemplar_size, p.exemplar_size), (p.scale_num, 3, p.instance_size, p.instance_size)

    def engine_track_kwargs(self) -> dict:
        return {"with_channels": True}  # exported with the channel maps; fetched only when shown

    def score(self, raw: np.ndarray) -> FCStep:
        """Upsample, choose the scale, normalise, window, argmax (both references' order)."""
        return score_responses(
            raw, self.upscale_size(), self.window(), self.params.window_influence, self.penalize, self.peak_origin()
        )

    # -- siamfc-pytorch specifics -------------------------------------------------------------
    def start(self, frame: np.ndarray, center_xy, size_wh) -> None:
        """Initialise from a centre (x, y) and size (w, h) in 0-indexed frame pixels."""
        p = self.params
        img = self._input(frame)
        # the reference keeps [y, x] / [h, w] float32 state; the arithmetic below follows it
        self.center = np.array([center_xy[1], center_xy[0]], np.float32)
        self.target_sz = np.array([size_wh[1], size_wh[0]], np.float32)
        context = p.context_amount * np.sum(self.target_sz)
        self.z_sz = np.sqrt(np.prod(self.target_sz + context))
        self.x_sz = self.z_sz * p.instance_size / p.exemplar_size
        self.avg_color = np.mean(img, axis=(0, 1))
        z = self.crop(img, self.z_sz, p.exemplar_size)
        with torch.no_grad():
            self.network.template(self._batch([z]))

    def crop_geometry(self, side: float, shape) -> tuple[int, int, int, int]:
        """(ymin, xmin, size, npad) of siamfc-pytorch's `crop_and_resize` window."""
        size = round(side)
        corner = np.round(self.center - (size - 1) / 2)
        ymin, xmin = int(corner[0]), int(corner[1])
        pads = [-ymin, -xmin, ymin + size - shape[0], xmin + size - shape[1]]
        return ymin, xmin, int(size), max(0, int(max(pads)))

    def crop(self, img: np.ndarray, side: float, out_size: int) -> np.ndarray:
        ymin, xmin, size, _ = self.crop_geometry(side, img.shape)
        # cv2.copyMakeBorder converts the float mean colour to uint8 by rounding
        fill = np.clip(np.rint(self.avg_color), 0, 255).astype(np.uint8)
        patch = get_subwindow(img, None, size, size, self.avg_color, corner=(xmin, ymin), fill=fill)
        return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)

    def crop_scales(self, img: np.ndarray) -> list[np.ndarray]:
        return [self.crop(img, self.x_sz * f, self.params.instance_size) for f in self.scale_factors()]

    def update_state(self, step: FCStep, frame_shape) -> None:
        p = self.params
        f = self.scale_factors()[step.best_scale]
        disp_yx = step.disp_response[::-1] * p.total_stride / p.response_up
        disp_image = disp_yx * self.x_sz * f / p.instance_size
        self.center += disp_image
        scale = (1 - p.scale_lr) * 1.0 + p.scale_lr * f
        self.target_sz *= scale
        self.z_sz *= scale
        self.x_sz *= scale

    def center_xy(self) -> tuple[float, float]:
        return float(self.center[1]), float(self.center[0])

    def size_wh(self) -> tuple[float, float]:
        return float(self.target_sz[1]), float(self.target_sz[0])

    def box(self) -> Box:
        (cx, cy), (w, h) = self.center_xy(), self.size_wh()
        return (cx - (w - 1) / 2, cy - (h - 1) / 2, w, h)

    def center_from_box(self, box: Box):
        x, y, w, h = box
        return (x + (w - 1) / 2, y + (h - 1) / 2)

    def search_side(self, step: FCStep) -> float:
        """Frame-pixel side that the displacement formula maps the instance crop to."""
        return float(self.x_sz * self.scale_factors()[step.best_scale])

    # -- the interface ------------------------------------------------------------------------
    def init(self, frame: np.ndarray, box: Box) -> None:
        x, y, w, h = validate_box(box, frame.shape)
        self.start(frame, self.center_from_box((x, y, w, h)), (w, h))

    def track(self, frame: np.ndarray) -> TrackResult:
        timer = StageTimer()
        with timer.stage("crop"):
            img = self._input(frame)
            patches = self.crop_scales(img)
        with timer.stage("network"):
            out = self.run_network(patches)
            raw = out["response"][:, 0].float().cpu().numpy()
            if self.precision != "fp32":
                check_finite(self, raw)
        with timer.stage("decode"):
            center_before = self.center_xy()
            step = self.score(raw)
            side = self.search_side(step)
            self.update_state(step, frame.shape)
        return self.make_result(step, out, center_before, side, timer)

    def make_result(self, step: FCStep, out: dict, center_before, side: float, timer: StageTimer) -> TrackResult:
        p = self.params
        U = self.upscale_size()
        # map pixel i lies at (i - origin) * stride / up instance pixels from the crop centre
        to_frame = side / p.instance_size * p.total_stride / p.response_up
        lo = (-self.peak_origin() - 0.5) * to_frame
        hi = (U - self.peak_origin() - 0.5) * to_frame
        cx, cy = center_before
        region = SearchRegion(cx - side / 2, cy - side / 2, side, (cx + lo, cy + lo, cx + hi, cy + hi))
        peak = float(step.raw[step.best_scale].max())
        confidence = 1.0 / (1.0 + math.exp(-peak)) if peak > -700 else 0.0
        channels = []
        if self.collect_channels:
            channels = [
                ChannelMaps(level, branch, t[0].float().cpu().numpy()) for level, branch, t in out.get("xcorr", [])
            ]
        return TrackResult(
            box=self.box(),
            score=confidence,
            state=TrackingState.TRACKING,
            score_map=step.final.astype(np.float32),
            search_region=region,
            channels=channels,
            timings=timer.ms,
            extra={"scale": step.best_scale, "peak_rc": step.peak_rc, "raw_peak": peak},
        )


class SiamFCPlusTracker(SiamFCTracker):
    """SiamDW's SiamFC tracker (lib/tracker/siamfc.py) for SiamFC+ networks."""

    rgb_input = False

    def __init__(
        self, network, params: SiamFCPlusParams | None = None, name: str = "siamfc-res22", device: str = "cpu"
    ):
        super().__init__(network, params or SiamFCPlusParams(), name, device)

    def scale_factors(self) -> np.ndarray:
        n = self.params.scale_num
        return self.params.scale_step ** (np.arange(n) - np.ceil(n // 2))

    def peak_origin(self) -> float:
        return float(np.ceil(self.upscale_size() / 2))

    def penalize(self, up_max: np.ndarray) -> np.ndarray:
        # SiamDW multiplies the float32 maxima in place by a float64 penalty vector
        n = len(up_max)
        pen = np.full(n, self.params.scale_penalty)
        pen[n // 2] = 1.0
        out = up_max.copy()
        out *= pen
        return out

    def start(self, frame: np.ndarray, center_xy, size_wh) -> None:
        p = self.params
        self.pos = np.array(center_xy, np.float64)
        self.size = np.array(size_wh, np.float64)
        self.avg_chans = np.mean(frame, axis=(0, 1))
        wc_z = self.size[0] + p.context_amount * self.size.sum()
        hc_z = self.size[1] + p.context_amount * self.size.sum()
        s_z = round(np.sqrt(wc_z * hc_z))
        scale_z = p.exemplar_size / s_z
        pad = ((p.instance_size - p.exemplar_size) / 2) / scale_z
        self.s_x = s_z + 2 * pad
        self.min_s_x = p.min_search_ratio * self.s_x
        self.max_s_x = p.max_search_ratio * self.s_x
        z = self.crop_at(frame, self.pos, s_z, p.exemplar_size)
        with torch.no_grad():
            self.network.template(self._batch([z]))

    def crop_at(self, img: np.ndarray, pos, side: int, out_size: int) -> np.ndarray:
        """SiamDW `get_subwindow_tracking`: corner = Python 3 round(pos - (side + 1) / 2)."""
        c = (side + 1) / 2
        corner = (round(pos[0] - c), round(pos[1] - c))
        patch = get_subwindow(img, None, out_size, int(side), self.avg_chans, corner=corner)
        return patch

    def pyramid_geometry(self):
        """(scaled sides rounded, beta, search_side) of `make_scale_pyramid`."""
        sides = [round(s) for s in self.s_x * self.scale_factors()]
        beta = self.params.instance_size / sides[0]
        return sides, beta, round(beta * sides[-1])

    def crop_scales(self, img: np.ndarray) -> list[np.ndarray]:
        # One region at the largest scale, resized so the smallest scale maps to instance_size;
        # every scale is then cut from that region (fewer reads of the frame, as the reference).
        sides, beta, search_side = self.pyramid_geometry()
        region = self.crop_at(img, self.pos, sides[-1], int(search_side))
        centre = ((1 + search_side) / 2,) * 2
        return [self.crop_at(region, centre, round(beta * s), self.params.instance_size) for s in sides]

    def update_state(self, step: FCStep, frame_shape) -> None:
        p = self.params
        disp_input = step.disp_response * p.total_stride / p.response_up
        pos = self.pos + disp_input * self.s_x / p.instance_size
        f = self.scale_factors()[step.best_scale]
        scaled_side = (self.s_x * self.scale_factors())[step.best_scale]
        self.s_x = max(self.min_s_x, min(self.max_s_x, (1 - p.scale_lr) * self.s_x + p.scale_lr * scaled_side))
        size = (1 - p.scale_lr) * self.size + p.scale_lr * (self.size * f)
        H, W = frame_shape[:2]
        self.pos = np.array([max(0, min(W, pos[0])), max(0, min(H, pos[1]))])
        self.size = np.array([max(10, min(W, size[0])), max(10, min(H, size[1]))])

    def search_side(self, step: FCStep) -> float:
        return float(self.s_x)

    def center_xy(self):
        return float(self.pos[0]), float(self.pos[1])

    def size_wh(self):
        return float(self.size[0]), float(self.size[1])

    def box(self) -> Box:
        (cx, cy), (w, h) = self.center_xy(), self.size_wh()
        return (cx - w / 2, cy - h / 2, w, h)

    def center_from_box(self, box: Box):
        x, y, w, h = box
        return (x + w / 2, y + h / 2)


# ---------------------------------------------------------------------------------------------
# The variants
# ---------------------------------------------------------------------------------------------
#: the variants; `network` is the models/cir.py builder of the SiamDW backbones, `params` the SiamDW
#: OTB2015 test configs (experiments/test/OTB/<arch>.yaml, TEST.OTB2015) where they are not
#: SiamFCPlusParams' (SiamFCRes22.yaml's): the CIResInception/CIResNeXt configs search 263 px, so
#: their exemplar is 263 - 128 = 135
VARIANTS = (
    Variant(
        "siamfc",
        "SiamFC AlexNet (siamfc-pytorch)",
        {},
        "siamfc_alexnet_e50.pth",
        family="SiamFC",
        params_type=SiamFCParams,
        description="Fully-convolutional Siamese tracker, 3-scale search, AlexNet with batch norm.",
    ),
    Variant("siamfc-res22", "SiamFC+ CIResNet-22 (SiamDW)", {}, "CIResNet22.pth", network="siamfc_res22"),
    Variant(
        "siamfc-incep22",
        "SiamFC+ CIResInception-22 (SiamDW)",
        dict(
            exemplar_size=135,
            instance_size=263,
            scale_step=1.1832,
            scale_lr=0.3035,
            scale_penalty=0.9453,
            window_influence=0.2496,
        ),
        "CIResIncep22.pth",
        network="siamfc_incep22",
    ),
    Variant(
        "siamfc-next22",
        "SiamFC+ CIResNeXt-22 (SiamDW)",
        dict(
            exemplar_size=135,
            instance_size=263,
            scale_step=1.139,
            scale_lr=0.1775,
            scale_penalty=0.9593,
            window_influence=0.2094,
        ),
        "CIResNeXt22.pth",
        network="siamfc_next22",
    ),
)
VARIANT_BY_NAME = {v.name: v for v in VARIANTS}


def default_params(name: str) -> SiamFCParams:
    return VARIANT_BY_NAME[name].make_params(SiamFCPlusParams)


def build(name: str, weights: str | None = None, device: str = "cpu") -> SiamFCTracker:
    from models.checkpoint import load_checkpoint

    v = VARIANT_BY_NAME[name]
    if v.network:
        from models import cir

        net, fmt, tracker_type = getattr(cir, v.network)(), "SiamDW", SiamFCPlusTracker
    else:
        from models.siamfc import SiamFCAlexNet

        net, fmt, tracker_type = SiamFCAlexNet(), "siamfc-pytorch", SiamFCTracker
    if weights is not None:
        load_checkpoint(net, weights, fmt)
    return tracker_type(net.eval(), default_params(name), name, device)


TRACKERS = variant_specs(
    VARIANTS,
    family="SiamDW",
    params_type=SiamFCPlusParams,
    build=build,
    description="SiamFC+ on a cropping-inside residual backbone, 3-scale pyramid search.",
)
