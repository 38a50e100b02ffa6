"""Training the default tracker's neck + head on cached frozen-backbone features.

The backbone (EfficientNet-Lite0, ImageNet) stays frozen, so each pair's template and search
features are computed once and the head trains for many epochs on the cache: on a 2-core CPU the
backbone is the expensive part. Features come from ONNX Runtime on CPU (several times faster here
than eager torch for this network) and from torch on CUDA where present; the two never run at
the same time, and both use the one thread budget (`TrainConfig.threads`).

Labels and losses follow NanoTrack / BAN (anchor-free SiamRPN++ relatives): on the 13 x 13 point
grid (`decode.generate_points`, the tracker's decoder grid), points inside an ellipse of half the
box's half-axes around its centre are positive, points outside the box's inscribed ellipse are
negative, the ring between is ignored; cross-entropy with positives and negatives averaged
separately and weighted equally (pysot `select_cross_entropy_loss`); GIoU loss on the
(l, t, r, b) distances of the points inside the inscribed ellipse. Negative pairs have only
negatives. Loss weights cls 1.0, loc 1.2 (pysot TRAIN.CLS_WEIGHT / LOC_WEIGHT).

Optimiser: pysot trains SGD (momentum 0.9, weight decay 1e-4) with a warm-up then a log-spaced
decay; with only a few thousand steps on CPU, AdamW with the same warm-up-then-log-decay shape
gets there in far fewer steps, so that is what is used.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from models.efficientnet_lite import EfficientNetLite0, efficientnet_lite0
from models.siamscope import BACKBONE_STAGE, SiamScopeNet

from ..core.decode import generate_points
from .pairs import TRAIN_VIDEOS, Library, PairConfig, Sampler


@dataclasses.dataclass
class TrainConfig:
    data_dir: str = os.path.join("..", "shared", "data")
    seed: int = 0
    pairs: int = 48000  # held-out synthetic AUC with 12000 / 24000 / 48000 pairs: 0.727 / 0.745 / 0.786
    val_fraction: float = 0.05
    epochs: int = 12
    batch_size: int = 64
    lr: float = 3e-3
    final_lr_ratio: float = 0.05
    warmup_epochs: float = 1.0
    weight_decay: float = 1e-4
    cls_weight: float = 1.0
    loc_weight: float = 1.2
    channels: int = 48
    threads: int = 1  # one thread: on a shared 2-core machine a second one spins more than it works
    device: str = "auto"  # "auto": cuda where present, else cpu
    extract_batch: int = 16
    keep_best: bool = True  # keep the epoch with the lowest validation loss (the cache is small: it overfits)
    # videos of pairs.TRAIN_VIDEOS not used at all (no frame as background, patch or still pair): the
    # leave-one-video-out folds (trackers/train/lovo.py) train without the video they are scored on
    leave_out: tuple = ()
    # processes that cut the pairs (0/1: in this process, the historical serial stream of one seed;
    # N > 1: N streams seeded from (seed, stream), a different but equally reproducible set of pairs)
    workers: int = 1


# -- features -----------------------------------------------------------------------------------
class FeatureExtractor:
    """Frozen backbone features of uint8 BGR crops, batched: ONNX Runtime on CPU (the engine's
    FeatureGraph, one graph per crop size, the compute policy at the training's thread count),
    torch on CUDA."""

    def __init__(self, backbone: EfficientNetLite0, device: torch.device, threads: int):
        self.backbone = backbone.to(device).eval()  # the torch path runs where the crops go
        self.device = device
        self.graphs: dict[int, object] = {}
        self.use_ort = device.type == "cpu" and _has_ort()
        self.threads = threads

    def _graph(self, size: int):
        if size not in self.graphs:
            from ..core import compute
            from ..core.engines import FeatureGraph

            self.graphs[size] = FeatureGraph(
                _FirstMap(self.backbone), (1, 3, size, size), ["f"], policy=compute.decide(self.threads)
            )
        return self.graphs[size]

    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(B, H, W, 3) uint8 -> (B, C, h, w) float32."""
        x = np.ascontiguousarray(crops.transpose(0, 3, 1, 2).astype(np.float32))
        if self.use_ort:
            return self._graph(x.shape[-1])(x)[0]
        with torch.no_grad():
            return self.backbone(torch.from_numpy(x).to(self.device))[0].float().cpu().numpy()


class _FirstMap(torch.nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x)[0]


def _has_ort() -> bool:
    try:
        import onnxruntime  # noqa: F401

        return True
    except ImportError:
        return False


@dataclasses.dataclass
class FeatureCache:
    zf: np.ndarray  # (N, C, 8, 8) float16
    xf: np.ndarray  # (N, C, 16, 16) float16
    boxes: np.ndarray  # (N, 4) cx, cy, w, h, search-crop pixels from its centre
    positive: np.ndarray  # (N,) bool

    def save(self, path: str) -> None:
        np.savez(path, zf=self.zf, xf=self.xf, boxes=self.boxes, positive=self.positive)

    @classmethod
    def load(cls, path: str) -> FeatureCache:
        d = np.load(path)
        return cls(d["zf"], d["xf"], d["boxes"], d["positive"])


def build_cache(
    sampler: Sampler,
    extractor: FeatureExtractor,
    n: int,
    batch: int = 16,
    log: Callable[[str], None] = print,
    workers: int = 1,
    seed: int = 0,
) -> FeatureCache:
    zfs, xfs, boxes, pos = [], [], [], []
    t0 = time.perf_counter()
    gen = sampler.pairs(n) if workers <= 1 else parallel_pairs(sampler, n, workers, seed)
    done = 0
    while done < n:
        chunk = [p for _, p in zip(range(min(batch, n - done)), gen)]
        zfs.append(extractor(np.stack([p.template for p in chunk])).astype(np.float16))
        xfs.append(extractor(np.stack([p.search for p in chunk])).astype(np.float16))
        boxes += [p.box for p in chunk]
        pos += [p.positive for p in chunk]
        done += len(chunk)
        if done % (batch * 50) == 0 or done == n:
            el = time.perf_counter() - t0
            log(f"  features {done}/{n}  {el:.0f} s  ({el / done * 1e3:.0f} ms/pair)")
    return FeatureCache(
        np.concatenate(zfs), np.concatenate(xfs), np.stack(boxes).astype(np.float32), np.array(pos, bool)
    )


_POOL_SAMPLER: Sampler | None = None  # the forked workers' library (shared, copy-on-write)


def _pairs_chunk(job: tuple) -> list:
    seed, stream, count = job
    sampler = Sampler(_POOL_SAMPLER.lib, _POOL_SAMPLER.cfg, seed=0)
    sampler.rng = np.random.default_rng([seed, stream])
    return list(sampler.pairs(count))


def parallel_pairs(sampler: Sampler, n: int, workers: int, seed: int, chunk: int = 256):
    """The pairs cut by `workers` forked processes, chunk by chunk, each chunk from its own stream
    (seed, chunk index): the same set for the same (seed, n, chunk) whatever the worker count.
    Cutting pairs is pure numpy/OpenCV work on one core (about 7 ms a pair), so on a many-core
    machine this, not the backbone, bounds the features' time."""
    import multiprocessing as mp

    global _POOL_SAMPLER
    _POOL_SAMPLER = sampler
    jobs = [(seed, i, min(chunk, n - i * chunk)) for i in range((n + chunk - 1) // chunk)]
    with mp.get_context("fork").Pool(workers) as pool:
        for pairs in pool.imap(_pairs_chunk, jobs):
            yield from pairs


# -- labels and losses ----------------------------------------------------------------------------
def point_labels(boxes: torch.Tensor, positive: torch.Tensor, points: torch.Tensor):
    """Per point: cls label (1 pos, 0 neg, -1 ignore), ltrb targets, regression mask.

    boxes (B, 4) cx, cy, w, h; positive (B,) bool; points (P, 2) -> (B, P), (B, 4, P), (B, P).
    """
    px, py = points[:, 0][None], points[:, 1][None]
    cx, cy, w, h = (boxes[:, i : i + 1] for i in range(4))
    inner = ((px - cx) / (w / 4)) ** 2 + ((py - cy) / (h / 4)) ** 2 <= 1
    inscribed = ((px - cx) / (w / 2)) ** 2 + ((py - cy) / (h / 2)) ** 2 <= 1
    # the point nearest the centre is positive even for a small target that no grid point reaches
    nearest = torch.zeros_like(inner)
    d = (px - cx) ** 2 + (py - cy) ** 2
    nearest.scatter_(1, d.argmin(1, keepdim=True), True)
    nearest &= inscribed
    pos = (inner | nearest) & positive[:, None]
    label = torch.where(pos, 1, torch.where(inscribed & positive[:, None], -1, 0))
    ltrb = torch.stack([px - (cx - w / 2), py - (cy - h / 2), (cx + w / 2) - px, (cy + h / 2) - py], 1)
    return label, ltrb, inscribed & positive[:, None]


def giou_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - GIoU of boxes given as (l, t, r, b) distances from the same point, (N, 4) each."""
    pl, pt, pr, pb = pred.unbind(1)
    tl, tt, tr, tb = target.unbind(1)
    inter = (torch.min(pl, tl) + torch.min(pr, tr)).clamp(min=0) * (torch.min(pt, tt) + torch.min(pb, tb)).clamp(min=0)
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    iou = inter / union.clamp(min=1e-6)
    enclose = (torch.max(pl, tl) + torch.max(pr, tr)) * (torch.max(pt, tt) + torch.max(pb, tb))
    giou = iou - (enclose - union) / enclose.clamp(min=1e-6)
    return 1 - giou


def losses(
    cls: torch.Tensor, loc: torch.Tensor, label: torch.Tensor, ltrb: torch.Tensor, reg_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """cls (B, 2, S, S) logits, loc (B, 4, S, S) ltrb; labels from point_labels."""
    logp = F.log_softmax(cls.flatten(2), 1)  # (B, 2, P)
    pos, neg = label == 1, label == 0
    pos_loss = -logp[:, 1][pos].mean() if pos.any() else cls.sum() * 0
    neg_loss = -logp[:, 0][neg].mean() if neg.any() else cls.sum() * 0
    cls_loss = 0.5 * pos_loss + 0.5 * neg_loss
    if reg_mask.any():
        p = loc.flatten(2).permute(0, 2, 1)[reg_mask]  # (M, 4)
        t = ltrb.permute(0, 2, 1)[reg_mask]
        loc_loss = giou_loss(p, t).mean()
    else:
        loc_loss = loc.sum() * 0
    return cls_loss, loc_loss


# -- training ------------------------------------------------------------------------------------
def lr_at(step: int, total: int, warmup: int, cfg: TrainConfig) -> float:
    """Linear warm-up from lr/10, then log-spaced decay to lr * final_lr_ratio (pysot's shape)."""
    if step < warmup:
        return cfg.lr * (0.1 + 0.9 * step / max(1, warmup))
    frac = (step - warmup) / max(1, total - warmup)
    return cfg.lr * math.exp(math.log(cfg.final_lr_ratio) * frac)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def reuse_or_build(
    cache_path: str | None, load: Callable[[str], object], build: Callable[[], object], log: Callable[[str], None]
):
    """The feature cache at `cache_path` when that file exists; otherwise `build()` it and save it
    there (when a path is given), so a second run with other training settings skips the backbone."""
    if cache_path and os.path.isfile(cache_path):
        log(f"features: reusing {cache_path}")
        return load(cache_path)
    cache = build()
    if cache_path:
        cache.save(cache_path)
    return cache


def train_head(
    net: SiamScopeNet, cache: FeatureCache, cfg: TrainConfig, device: torch.device, log: Callable[[str], None] = print
) -> dict:
    """Train neck + head on the cache; returns the history (per-epoch losses)."""
    g = torch.Generator().manual_seed(cfg.seed)
    n = len(cache.boxes)
    order = torch.randperm(n, generator=g)
    n_val = int(round(n * cfg.val_fraction))
    val_idx, train_idx = order[:n_val], order[n_val:]
    zf = torch.from_numpy(cache.zf)
    xf = torch.from_numpy(cache.xf)
    boxes = torch.from_numpy(cache.boxes)
    positive = torch.from_numpy(cache.positive)

    net.to(device)
    net.train()
    with torch.no_grad():
        S = net.forward_features(zf[:1].float().to(device), xf[:1].float().to(device))[0].shape[-1]
    points = torch.from_numpy(generate_points(net.stride, S)).to(device)
    params = net.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = max(1, len(train_idx) // cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    history = []
    step = 0
    t0 = time.perf_counter()
    best_loss, best_epoch, best_state = math.inf, None, None

    def batch_loss(idx):
        z = zf[idx].float().to(device)
        x = xf[idx].float().to(device)
        label, ltrb, mask = point_labels(boxes[idx].to(device), positive[idx].to(device), points)
        cls, loc = net.forward_features(z, x)
        c, l = losses(cls, loc, label, ltrb, mask)
        return c, l

    for epoch in range(cfg.epochs):
        net.train()
        perm = train_idx[torch.randperm(len(train_idx), generator=g)]
        sums = np.zeros(2)
        for b in range(steps_per_epoch):
            idx = perm[b * cfg.batch_size : (b + 1) * cfg.batch_size]
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, warmup, cfg)
            c, l = batch_loss(idx)
            loss = cfg.cls_weight * c + cfg.loc_weight * l
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            opt.step()
            sums += (c.item(), l.item())
            step += 1
        net.eval()
        with torch.no_grad():
            vc, vl = [], []
            for b in range(0, len(val_idx), 256):
                c, l = batch_loss(val_idx[b : b + 256])
                vc.append(float(c))
                vl.append(float(l))
        rec = {
            "epoch": epoch + 1,
            "cls": sums[0] / steps_per_epoch,
            "loc": sums[1] / steps_per_epoch,
            "val_cls": float(np.mean(vc)) if vc else None,
            "val_loc": float(np.mean(vl)) if vl else None,
            "seconds": round(time.perf_counter() - t0, 1),
        }
        history.append(rec)
        log(
            f"  epoch {epoch + 1}/{cfg.epochs}  cls {rec['cls']:.4f} loc {rec['loc']:.4f}  "
            f"val cls {rec['val_cls']:.4f} loc {rec['val_loc']:.4f}  {rec['seconds']:.0f} s"
        )
        if vc:
            val_loss = cfg.cls_weight * rec["val_cls"] + cfg.loc_weight * rec["val_loc"]
            if val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch + 1
                best_state = {k: v.detach().clone() for k, v in net.head_state_dict().items()}
    if cfg.keep_best and best_state is not None and best_epoch != cfg.epochs:
        net.load_state_dict(best_state, strict=False)  # neck + head only; the backbone is frozen
        log(f"  kept epoch {best_epoch} (lowest validation loss {best_loss:.4f})")
    net.eval()
    return {"history": history, "steps": step, "kept_epoch": best_epoch if cfg.keep_best else cfg.epochs}


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=os.path.dirname(os.path.abspath(__file__)),
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train(cfg: TrainConfig, out: str, cache_path: str | None = None, log: Callable[[str], None] = print) -> dict:
    """The whole pipeline: pairs -> cached features -> head training -> weights file + record."""
    t_start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    backbone = efficientnet_lite0((BACKBONE_STAGE,))
    info: dict = {}

    def build() -> FeatureCache:
        lib = Library(cfg.data_dir, videos=tuple(v for v in TRAIN_VIDEOS if v not in cfg.leave_out))
        info["data"] = lib.describe()
        info["left_out"] = list(cfg.leave_out)
        extractor = FeatureExtractor(backbone, device, cfg.threads)
        log(f"features: {cfg.pairs} pairs, backbone on {'onnxruntime' if extractor.use_ort else device}")
        # a GPU wants big batches; on the CPU 16 keeps the memory small and costs nothing
        batch = cfg.extract_batch if device.type == "cpu" else max(cfg.extract_batch, 256)
        return build_cache(
            Sampler(lib, PairConfig(), seed=cfg.seed),
            extractor,
            cfg.pairs,
            batch,
            log,
            workers=cfg.workers,
            seed=cfg.seed,
        )

    cache = reuse_or_build(cache_path, FeatureCache.load, build, log)
    t_feat = time.perf_counter() - t_start
    torch.manual_seed(cfg.seed)
    net = SiamScopeNet(backbone, channels=cfg.channels)
    result = train_head(net, cache, cfg, device, log)
    t_total = time.perf_counter() - t_start
    record = {
        "tracker": "siamscope-effnet",
        "config": dataclasses.asdict(cfg),
        "pair_config": dataclasses.asdict(PairConfig()),
        "pairs": int(len(cache.boxes)),
        "negative_pairs": int((~cache.positive).sum()),
        "feature_seconds": round(t_feat, 1),
        "train_seconds": round(t_total - t_feat, 1),
        "total_seconds": round(t_total, 1),
        "device": str(device),
        "torch": torch.__version__,
        "commit": git_commit(),
        "command": " ".join(["python", "main.py"] + sys.argv[1:]) if sys.argv else "",
        **info,
        **result,
    }
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    torch.save(
        {
            "state_dict": net.head_state_dict(),
            "meta": {"tracker": "siamscope-effnet", "channels": cfg.channels, "seed": cfg.seed},
        },
        out,
    )
    with open(os.path.splitext(out)[0] + ".train.json", "w") as f:
        json.dump(record, f, indent=1)
    log(f"wrote {out} ({os.path.getsize(out) / 1e6:.2f} MB) in {t_total / 60:.1f} min")
    return record
