"""The shared Siamese RPN-family tracking loop: crop -> network -> decode -> state update.

pysot's SiamRPN / SiamRPN++ and NanoTrack differ only in their network and in how raw head
outputs become candidate boxes (anchors vs points); the loop, penalty, window and smoothing are
the same (see `trackers/core/decode.py`). Each stage is a separate method so it can be called and
tested on its own (`crop_search`, `run_network`, `decode`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from models.device import check_device, check_finite

from . import decode as D
from .base import Box, ChannelMaps, SearchRegion, StageTimer, Tracker, TrackingState, TrackResult, param, validate_box
from .crop import channel_average, crop_window, get_subwindow, to_tensor_layout
from .engines import EngineMixin


@dataclasses.dataclass
class RPNParams:
    """Hyper-parameters of the RPN-family loop (defaults: pysot SiamRPN++ R50)."""

    penalty_k: float = param(0.05, "scale/aspect change penalty: higher keeps the box size steadier", range=(0.0, 1.0))
    window_influence: float = param(
        0.42, "weight of the cosine window: higher prefers positions near the last centre", range=(0.0, 1.0)
    )
    lr: float = param(
        0.38, "size learning rate: how fast the box size follows the network's estimate", range=(0.0, 1.0)
    )
    exemplar_size: int = param(127, "template crop side in pixels (fixed by the network)", live=False)
    instance_size: int = param(255, "search crop side in pixels: larger searches farther, slower", range=(127, 1023))
    context_amount: float = param(
        0.5, "context added around the box for the crops, as a fraction of (w + h)", range=(0.0, 2.0)
    )


class AnchorDecoder:
    """pysot layout: cls (1, 2A, S, S) bg/fg logits, loc (1, 4A, S, S) anchor deltas."""

    def __init__(self, stride: int = 8, ratios=(0.33, 0.5, 1, 2, 3), scales=(8,)):
        self.stride, self.ratios, self.scales = stride, tuple(ratios), tuple(scales)
        self.anchor_num = len(self.ratios) * len(self.scales)
        self._grids: dict[int, np.ndarray] = {}

    def grid(self, score_size: int) -> np.ndarray:
        if score_size not in self._grids:
            self._grids[score_size] = D.generate_anchors(self.stride, self.ratios, self.scales, score_size)
        return self._grids[score_size]

    def score(self, cls: np.ndarray) -> np.ndarray:
        A = self.anchor_num
        logits = cls[0].reshape(2, A, -1).reshape(2, -1)  # row 0 = bg of all anchors, row 1 = fg
        return D.softmax_fg(logits)

    def boxes(self, loc: np.ndarray) -> np.ndarray:
        A = self.anchor_num
        S = loc.shape[-1]
        delta = loc[0].reshape(4, A * S * S).astype(np.float32)
        anchor = self.grid(S)
        out = np.empty_like(delta)
        out[0] = delta[0] * anchor[:, 2] + anchor[:, 0]
        out[1] = delta[1] * anchor[:, 3] + anchor[:, 1]
        out[2] = np.exp(delta[2]) * anchor[:, 2]
        out[3] = np.exp(delta[3]) * anchor[:, 3]
        return out


class PointDecoder:
    """Anchor-free layout (NanoTrack / BAN): cls (1, 2, S, S), loc (1, 4, S, S) = l, t, r, b distances."""

    anchor_num = 1

    def __init__(self, stride: int = 16):
        self.stride = stride
        self._grids: dict[int, np.ndarray] = {}

    def grid(self, score_size: int) -> np.ndarray:
        if score_size not in self._grids:
            self._grids[score_size] = D.generate_points(self.stride, score_size)
        return self._grids[score_size]

    def score(self, cls: np.ndarray) -> np.ndarray:
        return D.softmax_fg(cls[0].reshape(2, -1))

    def boxes(self, loc: np.ndarray) -> np.ndarray:
        S = loc.shape[-1]
        ltrb = loc[0].reshape(4, -1)
        points = self.grid(S)
        x1 = points[:, 0] - ltrb[0]
        y1 = points[:, 1] - ltrb[1]
        x2 = points[:, 0] + ltrb[2]
        y2 = points[:, 1] + ltrb[3]
        return np.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1]).astype(np.float32)


@dataclasses.dataclass
class Decoded:
    """Everything one decode step produced (the parity tests compare each field)."""

    score: np.ndarray  # (N,) foreground probability
    pred_bbox: np.ndarray  # (4, N) cx, cy, w, h, crop pixels relative to the crop centre
    penalty: np.ndarray  # (N,)
    pscore: np.ndarray  # (N,) after penalty and window
    best: int
    lr: float
    bbox_delta: np.ndarray  # (4,) pred_bbox[:, best] / scale_z
    center: tuple[float, float]  # state after the step
    size: tuple[float, float]
    box: Box  # returned box (x, y, w, h)


class Candidates(NamedTuple):
    """Every cell's candidate of one frame, scored (SiameseRPNTracker.candidates)."""

    score: np.ndarray  # (N,) foreground probability, as the decoder gives it
    pred_bbox: np.ndarray  # (4, N) cx, cy, w, h, crop pixels relative to the crop centre
    best: int  # the chosen cell
    penalty: np.ndarray  # (N,) size / aspect change penalty
    pscore: np.ndarray  # (N,) the ranked score after penalty and window


@dataclasses.dataclass
class SearchContext:
    """One frame's search, as the template's hooks see it."""

    out: dict  # the network's outputs (tensors, correlation maps)
    scale_z: float  # crop pixels per frame pixel
    s_x: int  # search crop side in frame pixels
    center_before: np.ndarray  # the state's centre before this frame
    instance_size: int  # search crop side in crop pixels
    frame_shape: tuple
    notes: dict = dataclasses.field(default_factory=dict)  # what a variant's hooks hand each other
    frame: np.ndarray | None = None  # the frame itself (the guard verifies candidates on it)


class SiameseRPNTracker(EngineMixin, Tracker):
    """A Siamese tracker made of a network (template / track) and a decoder (anchors / points).

    `network.template(z)` stores the template features; `network.track(x)` returns a dict with
    'cls' and 'loc' tensors and optionally 'xcorr': a list of (level, branch, tensor (1, C, h, w))
    depth-wise correlation responses, shown in the GUI's channel grid.
    """

    dtype = torch.float32  # of the network's weights and inputs (set_precision)
    extra_keys = {
        "best_index": "index of the chosen candidate in the flattened score",
        "pscore": "the chosen candidate's score after penalty and window",
    }

    def __init__(self, network: torch.nn.Module, decoder, params: RPNParams, name: str = "", device: str = "cpu"):
        self.network = network.eval()
        self.decoder = decoder
        self.params = params
        self.name = name
        self.device = check_device(device)
        self.network.to(self.device)
        self.collect_channels = True
        self.center = np.zeros(2)
        self.size = np.zeros(2)
        self.channel_average = np.zeros(3)

    # -- stages -------------------------------------------------------------------------------
    def context_size(self) -> float:
        """Side of the exemplar context window s_z = sqrt((w + p)(h + p)), p = context * (w + h)."""
        p = self.params
        w_z = self.size[0] + p.context_amount * (self.size[0] + self.size[1])
        h_z = self.size[1] + p.context_amount * (self.size[0] + self.size[1])
        return math.sqrt(w_z * h_z)

    def crop_exemplar(self, frame: np.ndarray) -> np.ndarray:
        return get_subwindow(
            frame, self.center, self.params.exemplar_size, round(self.context_size()), self.channel_average
        )

    def crop_search(self, frame: np.ndarray, instance_size: int | None = None):
        """Search crop around the current centre. Returns (patch, scale_z, crop side in frame px)."""
        p = self.params
        instance_size = instance_size or p.instance_size
        s_z = self.context_size()
        scale_z = p.exemplar_size / s_z
        s_x = round(s_z * instance_size / p.exemplar_size)
        return get_subwindow(frame, self.center, instance_size, s_x, self.channel_average), scale_z, s_x

    def _tensor(self, patch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(to_tensor_layout(patch)).to(self.device, self.dtype)

    @torch.no_grad()
    def run_network(self, patch: np.ndarray) -> dict:
        return self.network_track(self._tensor(patch))

    def candidates(
        self,
        cls: np.ndarray,
        loc: np.ndarray,
        scale_z: float,
        window_influence: float | None = None,
        rescore: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> Candidates:
        """The one candidate scoring of every RPN-type decode: each cell's foreground score and box
        from the decoder, then the size / aspect change penalty against the current size, the
        cosine window, and the best cell. `window_influence` replaces the params' (a lost
        tracker's flatter window); `rescore(score)` is what is ranked instead of the score itself
        (DaSiamRPN's distractor term, the guard's appearance mix)."""
        p = self.params
        score = self.decoder.score(cls)
        pred_bbox = self.decoder.boxes(loc)
        ranked = score if rescore is None else rescore(score)
        best, penalty, pscore = D.pick_best(
            ranked,
            pred_bbox,
            self.size * scale_z,
            p.penalty_k,
            self._window(cls.shape[-1]),
            p.window_influence if window_influence is None else window_influence,
        )
        return Candidates(score, pred_bbox, best, penalty, pscore)

    def decode(self, cls: np.ndarray, loc: np.ndarray, scale_z: float, frame_shape) -> Decoded:
        c = self.candidates(cls, loc, scale_z)
        bbox_delta = c.pred_bbox[:, c.best] / scale_z
        lr = c.penalty[c.best] * c.score[c.best] * self.params.lr
        cx, cy, w, h = D.smooth_update(self.center, self.size, bbox_delta, lr)
        cx, cy, w, h = D.clip_box(cx, cy, w, h, frame_shape)
        return Decoded(
            c.score,
            c.pred_bbox,
            c.penalty,
            c.pscore,
            c.best,
            float(lr),
            bbox_delta,
            (cx, cy),
            (w, h),
            (cx - w / 2, cy - h / 2, w, h),
        )

    def _window(self, score_size: int) -> np.ndarray:
        cache = self.__dict__.setdefault("_windows", {})
        if score_size not in cache:
            cache[score_size] = D.cosine_window(score_size, self.decoder.anchor_num)
        return cache[score_size]

    # -- the interface ------------------------------------------------------------------------
    @torch.no_grad()
    def init(self, frame: np.ndarray, box: Box) -> None:
        x, y, w, h = validate_box(box, frame.shape)
        self.center = np.array([x + (w - 1) / 2, y + (h - 1) / 2])
        self.size = np.array([w, h])
        self.channel_average = channel_average(frame)
        self.network.template(self._tensor(self.crop_exemplar(frame)))

    def search_and_score(self, frame: np.ndarray, timer: StageTimer, instance_size: int | None = None):
        """The crop and network stages of a frame, timed: (outputs, cls, loc, scale_z, crop side).

        cls / loc come back as numpy arrays for the decoders; `outputs` keeps the tensors (and the
        correlation maps) for the result."""
        with timer.stage("crop"):
            if instance_size is None:
                patch, scale_z, s_x = self.crop_search(frame)
            else:
                patch, scale_z, s_x = self.crop_search(frame, instance_size)
        with timer.stage("network"):
            out = self.run_network(patch)
            cls = out["cls"].float().cpu().numpy()
            loc = out["loc"].float().cpu().numpy()
            if self.precision != "fp32":
                check_finite(self, cls, loc)
        return out, cls, loc, scale_z, s_x

    def track(self, frame: np.ndarray) -> TrackResult:
        """The RPN-family loop, written once: search -> decode -> refine -> state update -> result.
        Variants (long-term SiamRPN++, DaSiamRPN, SiamMask, SiamAttn) override the hooks below,
        not this loop."""
        timer = StageTimer()
        instance_size = self.search_size()
        out, cls, loc, scale_z, s_x = self.search_and_score(frame, timer, instance_size)
        return self.track_outputs(frame, out, cls, loc, scale_z, s_x, instance_size, timer)

    def track_outputs(
        self,
        frame: np.ndarray,
        out: dict,
        cls: np.ndarray,
        loc: np.ndarray,
        scale_z: float,
        s_x: int,
        instance_size: int,
        timer: StageTimer,
    ) -> TrackResult:
        """The frame after its network call: decode -> refine -> state update -> result. track()
        runs it on its own call; the batched step (core/batching.py) on this target's share of a
        batch."""
        ctx = SearchContext(out, scale_z, s_x, self.center.copy(), instance_size, frame.shape, frame=frame)
        with timer.stage("decode"):
            step = self.decode_step(cls, loc, ctx)
        step = self.refine_step(step, ctx, timer)
        if self.accept_step(step, ctx):
            self.center = np.array(step.center)
            self.size = np.array(step.size)
        result = self.make_result(step, out, ctx.center_before, scale_z, s_x, timer)
        return self.finish_result(result, step, ctx, timer)

    # -- the template's hooks -----------------------------------------------------------------
    def search_size(self) -> int:
        """Search crop side for this frame (long-term and DaSiamRPN widen it while lost)."""
        return self.params.instance_size

    def decode_step(self, cls: np.ndarray, loc: np.ndarray, ctx: SearchContext) -> Decoded:
        return self.decode(cls, loc, ctx.scale_z, ctx.frame_shape)

    def refine_step(self, step: Decoded, ctx: SearchContext, timer: StageTimer) -> Decoded:
        """A second stage on the chosen candidate (SiamAttn's refinement); none by default."""
        return step

    def accept_step(self, step: Decoded, ctx: SearchContext) -> bool:
        """Whether the state (centre, size) takes the step (DaSiamRPN holds it while lost)."""
        return True

    def finish_result(self, result: TrackResult, step: Decoded, ctx: SearchContext, timer: StageTimer) -> TrackResult:
        """Add what the variant shows beyond the box and score map (mask, state, distractors)."""
        return result

    def make_result(
        self, step: Decoded, out: dict, center_before, scale_z: float, s_x: int, timer: StageTimer
    ) -> TrackResult:
        S = int(round(math.sqrt(step.pscore.size / self.decoder.anchor_num)))
        score_map = step.pscore.reshape(self.decoder.anchor_num, S, S).max(0).astype(np.float32)
        return TrackResult(
            box=step.box,
            score=float(step.score[step.best]),
            state=TrackingState.TRACKING,
            score_map=score_map,
            search_region=search_region(center_before, s_x, scale_z, self.decoder.stride, S),
            channels=self.channel_maps(out),
            timings=timer.ms,
            extra={"best_index": step.best, "pscore": float(step.pscore[step.best])},
        )

    def channel_maps(self, out: dict) -> list[ChannelMaps]:
        if not self.collect_channels:
            return []
        return [ChannelMaps(level, branch, t[0].float().cpu().numpy()) for level, branch, t in out.get("xcorr", [])]


def search_region(center, s_x: float, scale_z: float, stride: int, score_size: int) -> SearchRegion:
    """Frame placement of a search crop around `center` and of its score grid (cell centres at
    ori + stride * k crop pixels from the crop centre, ori = -(S // 2) * stride)."""
    xmin, ymin, _, _ = crop_window(center, s_x)
    ori = -(score_size // 2) * stride
    lo = (ori - stride / 2) / scale_z
    hi = (ori + stride * score_size - stride / 2) / scale_z
    cx, cy = float(center[0]), float(center[1])
    return SearchRegion(float(xmin), float(ymin), float(s_x), (cx + lo, cy + lo, cx + hi, cy + hi))
