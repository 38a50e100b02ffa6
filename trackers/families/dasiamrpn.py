"""DaSiamRPN (Zhu et al., ECCV 2018; reference foolwood/DaSiamRPN code/run_SiamRPN.py).

Reference path (`distractor_aware=False`): the shared RPN loop (crop -> UP-XCorr network ->
anchor decode -> penalty, cosine window, lr smoothing, clamp) with the reference's own details,
which the fixtures pin down:

* centre convention: box (x, y, w, h) <-> centre (x + w/2, y + h/2) (the reference's
  `cxy_wh_2_rect`, not pysot's (w-1)/2);
* `s_z` is rounded at init only; the search side is `s_z + 2 * (instance - exemplar)/2 / scale_z`;
* the reference is Python-2 code: `round` there is half away from zero (crop origins hit exact
  .5 ties when the target sits on the frame edge), and the anchor grid starts at
  -(score_size // 2) * stride (integer division), as trackers/core/decode.py already does;
* adaptive search size: 287 instead of 271 for objects smaller than 0.4 % of the frame.

Distractor-aware part (`distractor_aware=True`, the default; the paper's Sec. 4.2 / 4.3):

* Distractors: after the choice, proposals elsewhere in the search region (IoU with the chosen box
  below `distractor_iou`, greedy NMS among themselves) whose foreground score exceeds
  `distractor_threshold` are hard negatives. Their search features (the C x k x k patch of the cls
  search feature under the proposal's cell) go into a small memory with weight alpha_i = their
  score; older entries decay by `distractor_decay` per frame.
* Re-ranking: each frame, before penalty and window, the score of every proposal p_k becomes
  f(z, p_k) - alpha_hat * sum_i alpha_i f(d_i, p_k) / sum_i alpha_i, with f(z, .) the network's
  foreground probability and f(d_i, p_k) the cosine similarity (clipped at 0) between the stored
  distractor features and the features at p_k, so both terms are in [0, 1].
* Long-term (local-to-global search): when the best score falls below `lost_score` the state is
  kept (not moved to a poor candidate), the result says LOST, and the search region grows by
  `search_step` crop pixels per frame (REDETECTING, the cosine window almost off) up to
  `max_search_steps`; a candidate scoring `recover_score` or more is taken and the region
  shrinks back to the normal size.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoint import CheckpointError, load_into, read_state_dict
from models.dasiamrpn import VARIANTS as NETWORKS
from models.dasiamrpn import DaSiamRPN

from ..core import decode as D
from ..core.base import Box, StageTimer, TrackingState, TrackResult, param, validate_box
from ..core.crop import channel_average, get_subwindow, py2_round
from ..core.registry import Variant, variant_specs
from ..core.siamese import AnchorDecoder, Decoded, RPNParams, SearchContext, SiameseRPNTracker


@dataclasses.dataclass
class DaSiamRPNParams(RPNParams):
    """Defaults: SiamRPNBIG.cfg over run_SiamRPN.py:TrackerConfig (see VARIANTS for the others)."""

    penalty_k: float = 0.055
    window_influence: float = 0.42
    lr: float = 0.295
    exemplar_size: int = 127
    instance_size: int = 271
    context_amount: float = 0.5
    total_stride: int = param(8, "score-grid cell size in search-crop pixels (fixed by the network)", live=False)
    adaptive: bool = param(
        True, "adaptive search region: objects smaller than small_object_area of the frame get the larger crop"
    )
    small_object_area: float = param(
        0.004, "box area / frame area below which the larger crop is used", range=(0.0, 1.0)
    )
    small_object_instance_size: int = param(287, "search crop side for small objects", range=(127, 1023))
    # -- the distractor-aware part; off = the reference tracker exactly ----------------------
    distractor_aware: bool = param(
        True, "distractor-aware re-ranking and growing search on loss (off: the reference tracker exactly)"
    )
    distractor_threshold: float = param(
        0.8, "fg probability above which another proposal is a distractor", range=(0.0, 1.0)
    )
    distractor_iou: float = param(
        0.2, "proposals overlapping the chosen box more than this are the target", range=(0.0, 1.0)
    )
    distractor_max: int = param(4, "new distractors kept per frame", range=(0, 64))
    distractor_memory: int = param(8, "distractors remembered in all", range=(0, 256))
    distractor_decay: float = param(0.8, "per-frame factor on the remembered distractor weights", range=(0.0, 1.0))
    distractor_weight: float = param(0.5, "alpha-hat: how much distractor similarity lowers a score", range=(0.0, 10.0))
    lost_score: float = param(0.3, "best score below this: the target is lost", range=(0.0, 1.0))
    recover_score: float = param(0.6, "while lost, a candidate at least this good is taken", range=(0.0, 1.0))
    search_step: int = param(64, "search-crop growth per lost frame (a multiple of the stride)", range=(0, 512))
    max_search_steps: int = param(4, "how many times the search crop grows while lost", range=(0, 32))
    lost_window_influence: float = param(0.001, "cosine window while re-detecting (almost uniform)", range=(0.0, 1.0))


#: the variants: run_SiamRPN.py's TrackerConfig as each released model's test set it (`network`: the
#: models/dasiamrpn.py variant); DaSiamRPNParams' defaults are SiamRPNBIG's
VARIANTS = (
    Variant("dasiamrpn-big", "DaSiamRPN (SiamRPNBIG)", {}, NETWORKS["big"].weights_file, network="big"),
    Variant(
        "dasiamrpn-vot",
        "DaSiamRPN (SiamRPNvot)",
        dict(lr=0.45, window_influence=0.44, penalty_k=0.04, adaptive=False),
        NETWORKS["vot"].weights_file,
        network="vot",
    ),
    Variant(
        "dasiamrpn-otb",
        "DaSiamRPN (SiamRPNotb)",
        dict(lr=0.30, window_influence=0.40, penalty_k=0.22, adaptive=False),
        NETWORKS["otb"].weights_file,
        network="otb",
    ),
)
VARIANT_BY_NAME = {v.name: v for v in VARIANTS}


def default_params(variant: str, **overrides) -> DaSiamRPNParams:
    """A variant's default parameters ("big", "vot", "otb"), `overrides` on top."""
    return VARIANT_BY_NAME[f"dasiamrpn-{variant}"].make_params(DaSiamRPNParams, **overrides)


def crop_py2(frame: np.ndarray, pos, model_sz: int, original_sz: float, avg_chans) -> np.ndarray:
    """The reference's get_subwindow_tracking: window origin round(pos - (sz + 1) / 2) with Python-2
    rounding (pysot's floor(p - c + 0.5) differs on negative .5 ties, which the fixtures hit)."""
    c = (original_sz + 1) / 2
    corner = (py2_round(pos[0] - c), py2_round(pos[1] - c))
    return get_subwindow(frame, pos, model_sz, original_sz, avg_chans, corner=corner)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of centre-form boxes a (4,) against b (4, N)."""
    ax0, ay0, ax1, ay1 = a[0] - a[2] / 2, a[1] - a[3] / 2, a[0] + a[2] / 2, a[1] + a[3] / 2
    bx0, by0, bx1, by1 = b[0] - b[2] / 2, b[1] - b[3] / 2, b[0] + b[2] / 2, b[1] + b[3] / 2
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter + 1e-9)


class DaSiamRPNTracker(SiameseRPNTracker):
    extra_keys = {**SiameseRPNTracker.extra_keys, "instance_size": "search crop side used on this frame"}

    def __init__(self, network: DaSiamRPN, params: DaSiamRPNParams, name: str = "", device: str = "cpu"):
        super().__init__(network, AnchorDecoder(params.total_stride), params, name=name, device=device)
        self.base_instance_size = params.instance_size
        self.lost_steps = 0
        self.kernel_size = 4
        # distractor memory: (n, C, k, k) features and their weights alpha_i
        self.bank_features: torch.Tensor | None = None
        self.bank_weights = np.zeros(0)

    # -- init -----------------------------------------------------------------------------------
    @torch.no_grad()
    def init(self, frame: np.ndarray, box: Box) -> None:
        x, y, w, h = validate_box(box, frame.shape)
        self.init_state(frame, (x + w / 2, y + h / 2), (w, h))

    @torch.no_grad()
    def init_state(self, frame: np.ndarray, center, size) -> None:
        """Init from the reference's (target_pos, target_sz) directly (the fixtures record these)."""
        p = self.params
        self.center = np.array(center, dtype=np.float64)
        self.size = np.array(size, dtype=np.float64)
        H, W = frame.shape[:2]
        small = (self.size[0] * self.size[1]) / float(H * W) < p.small_object_area
        self.base_instance_size = p.small_object_instance_size if (p.adaptive and small) else p.instance_size
        self.channel_average = channel_average(frame)
        z = self.crop_exemplar(frame)
        self.network.template(self._tensor(z))
        self.kernel_size = int(self.network.cls1_kernel.shape[-1])
        self.lost_steps = 0
        self.bank_features = None
        self.bank_weights = np.zeros(0)

    def crop_exemplar(self, frame: np.ndarray) -> np.ndarray:
        return crop_py2(
            frame, self.center, self.params.exemplar_size, py2_round(self.context_size()), self.channel_average
        )

    # -- stages -----------------------------------------------------------------------------------
    @property
    def instance_size(self) -> int:
        """The current search crop side: the base size, grown while the target is lost."""
        steps = min(self.lost_steps, self.params.max_search_steps) if self.params.distractor_aware else 0
        return self.base_instance_size + steps * self.params.search_step

    def crop_search(self, frame: np.ndarray, instance_size: int | None = None):
        """Returns (patch, scale_z, rounded crop side in frame px), as SiamRPN_track computes them."""
        p = self.params
        instance_size = instance_size or self.instance_size
        s_z = self.context_size()
        scale_z = p.exemplar_size / s_z
        pad = (instance_size - p.exemplar_size) / 2 / scale_z
        s_x = py2_round(s_z + 2 * pad)
        return crop_py2(frame, self.center, instance_size, s_x, self.channel_average), scale_z, s_x

    def decode(
        self,
        cls: np.ndarray,
        loc: np.ndarray,
        scale_z: float,
        frame_shape,
        distractor_term: np.ndarray | None = None,
        window_influence: float | None = None,
    ) -> Decoded:
        """tracker_eval + the clamp of SiamRPN_track. `distractor_term` (N,) is subtracted (times
        alpha_hat) from the score before penalty and window; None = the reference."""
        p = self.params
        score, pred_bbox, best, penalty, pscore = self.candidates(
            cls,
            loc,
            scale_z,
            window_influence,
            rescore=None if distractor_term is None else (lambda s: s - p.distractor_weight * distractor_term),
        )
        bbox_delta = pred_bbox[:, best] / scale_z
        lr = penalty[best] * score[best] * p.lr
        # the reference smooths the size it scaled by scale_z and divides back
        cx, cy, w, h = D.smooth_update(self.center, self.size * scale_z / scale_z, bbox_delta, lr)
        cx, cy, w, h = D.clip_box(cx, cy, w, h, frame_shape)
        return Decoded(
            score,
            pred_bbox,
            penalty,
            pscore,
            best,
            float(lr),
            bbox_delta,
            (cx, cy),
            (w, h),
            (cx - w / 2, cy - h / 2, w, h),
        )

    # -- distractors ----------------------------------------------------------------------------
    def _cell_features(self, cls_feature: torch.Tensor, cells) -> torch.Tensor:
        k = self.kernel_size
        return torch.stack([cls_feature[0, :, r : r + k, c : c + k] for r, c in cells])

    def distractor_similarity(self, cls_feature: torch.Tensor) -> np.ndarray | None:
        """sum_i alpha_i f(d_i, p) / sum_i alpha_i over the score grid, tiled over anchors (N,)."""
        if self.bank_features is None or len(self.bank_weights) == 0:
            return None
        k = self.kernel_size
        # float32 even when the network runs in fp16: the squared norms summed over a 256 x k x k
        # patch overflow half precision's 65504
        cls_feature = cls_feature.float()
        bank = self.bank_features.float()
        dots = F.conv2d(cls_feature, bank)[0]  # (n, S, S)
        ones = torch.ones((1, cls_feature.shape[1], k, k), dtype=cls_feature.dtype, device=cls_feature.device)
        patch_norm = F.conv2d(cls_feature * cls_feature, ones)[0, 0].clamp_min(1e-12).sqrt()
        bank_norm = bank.flatten(1).norm(dim=1).clamp_min(1e-12)
        sim = (dots / patch_norm / bank_norm[:, None, None]).clamp_min(0).cpu().numpy()
        alpha = self.bank_weights
        term = np.tensordot(alpha, sim, axes=1) / alpha.sum()  # (S, S)
        return np.tile(term.reshape(-1), self.decoder.anchor_num)

    def find_distractors(self, step: Decoded) -> list[int]:
        """Proposal indices (anchor-major flat) that are distractors: high fg score, away from the
        chosen box, greedy NMS among themselves, at most distractor_max."""
        p = self.params
        order = np.argsort(-step.score)
        order = order[step.score[order] > p.distractor_threshold]
        if order.size == 0:
            return []
        boxes = step.pred_bbox
        far = _iou(boxes[:, step.best], boxes[:, order]) < p.distractor_iou
        kept: list[int] = []
        for idx in order[far]:
            if kept and np.any(_iou(boxes[:, idx], boxes[:, kept]) >= p.distractor_iou):
                continue
            kept.append(int(idx))
            if len(kept) >= p.distractor_max:
                break
        return kept

    def remember(self, cls_feature: torch.Tensor, indices: list[int], score: np.ndarray) -> None:
        p = self.params
        self.bank_weights = self.bank_weights * p.distractor_decay
        if indices:
            S = cls_feature.shape[-1] - self.kernel_size + 1
            cells = [divmod(i % (S * S), S) for i in indices]
            feats = self._cell_features(cls_feature, cells)
            w = score[indices].astype(np.float64)
            if self.bank_features is None or self.bank_features.shape[1:] != feats.shape[1:]:
                self.bank_features, self.bank_weights = feats, w
            else:
                self.bank_features = torch.cat([self.bank_features, feats])
                self.bank_weights = np.concatenate([self.bank_weights, w])
        if self.bank_features is not None and len(self.bank_weights) > p.distractor_memory:
            keep = np.sort(np.argsort(-self.bank_weights)[: p.distractor_memory])
            self.bank_features = self.bank_features[torch.from_numpy(keep).to(self.bank_features.device)]
            self.bank_weights = self.bank_weights[keep]

    # -- the interface --------------------------------------------------------------------------
    # -- the template's hooks (SiameseRPNTracker.track) ---------------------------------------
    def search_size(self) -> int:
        return self.instance_size  # grows while lost; read before the step changes that

    def decode_step(self, cls: np.ndarray, loc: np.ndarray, ctx: SearchContext) -> Decoded:
        """Distractor-aware decoding: re-rank by distractor similarity, decide whether the best
        candidate is the target (notes: accept, state, distractor_idx), remember the distractors."""
        p = self.params
        if not p.distractor_aware:
            self.lost_steps = 0  # switching the part back on starts from the normal search
            ctx.notes.update(accept=True, state=TrackingState.TRACKING, distractor_idx=[])
            return self.decode(cls, loc, ctx.scale_z, ctx.frame_shape)
        searching = self.lost_steps > 0
        out = ctx.out
        term = self.distractor_similarity(out["cls_feature"])
        step = self.decode(
            cls,
            loc,
            ctx.scale_z,
            ctx.frame_shape,
            distractor_term=term,
            window_influence=p.lost_window_influence if searching else None,
        )
        best_score = float(step.score[step.best])
        accept = best_score >= (p.recover_score if searching else p.lost_score)
        if accept:
            state = TrackingState.TRACKING
            self.lost_steps = 0
        else:
            state = TrackingState.REDETECTING if searching else TrackingState.LOST
            self.lost_steps += 1
        distractor_idx = self.find_distractors(step) if accept else []
        self.remember(out["cls_feature"], distractor_idx, step.score)
        ctx.notes.update(accept=accept, state=state, distractor_idx=distractor_idx)
        return step

    def accept_step(self, step: Decoded, ctx: SearchContext) -> bool:
        return ctx.notes["accept"]

    def finish_result(self, result: TrackResult, step: Decoded, ctx: SearchContext, timer: StageTimer) -> TrackResult:
        result.state = ctx.notes["state"]
        if not ctx.notes["accept"]:  # the state was kept: report it, not the rejected candidate
            w, h = self.size
            result.box = (self.center[0] - w / 2, self.center[1] - h / 2, w, h)
        result.distractors = [
            self._frame_box(step.pred_bbox[:, i], ctx.center_before, ctx.scale_z) for i in ctx.notes["distractor_idx"]
        ]
        result.extra["instance_size"] = int(ctx.instance_size)
        return result

    @staticmethod
    def _frame_box(pred: np.ndarray, center, scale_z: float) -> Box:
        cx, cy, w, h = (float(v) for v in pred / scale_z)
        cx += center[0]
        cy += center[1]
        return (cx - w / 2, cy - h / 2, w, h)


def detect_variant(state: dict) -> str | None:
    """'big' or 'vot/otb' from the key names and the kernel layer's width; None if not DaSiamRPN."""
    w = state.get("conv_r1.weight")
    if w is None or "featureExtract.0.weight" not in state:
        return None
    return {512 * 20: "big", 256 * 20: "vot/otb"}.get(int(w.shape[0]), "unknown width")


def load_dasiamrpn(variant: str, weights: str) -> DaSiamRPN:
    net = DaSiamRPN(variant)
    state = read_state_dict(weights)
    found = detect_variant(state)
    fmt = f"DaSiamRPN {found} .model" if found else "not a DaSiamRPN checkpoint"
    # the released files predate BN num_batches_tracked (PyTorch 0.3)
    load_into(net, state, str(weights), fmt, ignore=lambda k: k.endswith("num_batches_tracked"))
    return net.eval()


def build(name: str, weights: str | None, device: str = "cpu") -> DaSiamRPNTracker:
    v = VARIANT_BY_NAME[name]
    if weights is None:
        raise CheckpointError(f"{name} needs its checkpoint {v.weights}")
    return DaSiamRPNTracker(load_dasiamrpn(v.network, weights), default_params(v.network), name=name, device=device)


TRACKERS = variant_specs(
    VARIANTS,
    family="DaSiamRPN",
    params_type=DaSiamRPNParams,
    build=build,
    description="SiamRPN with up-channel cross-correlation, distractor-aware re-ranking and "
    "local-to-global search on loss (foolwood/DaSiamRPN)",
)
