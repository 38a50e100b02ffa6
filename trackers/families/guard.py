"""The long-term guard: SiamScope's own long-term part, on top of whichever network localises the
target (trackers/families/default.py: NanoTrack v2; trackers/families/effnet.py: the EfficientNet
head trained here).

It runs as hooks of the RPN-family loop (trackers/core/siamese.py). A frozen ImageNet
EfficientNet-Lite0 compares the candidate with the first frame's target and with a recent
confident view (stride-8 and stride-16 features, colour: `TargetVerifier`); a logistic fit of
those figures, calibrated leaving one video out (trackers/train/calibrate.py), is the
target-present score the result reports; the box changes size only as far as that score
supports; the state goes LOST while the target is gone, with a widened search to find it again.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import cv2
import numpy as np
import torch

from models.siamscope import ExemplarFeatures

from ..core import decode as D
from ..core.base import StageTimer, TrackingState, TrackResult, param
from ..core.crop import get_subwindow, to_tensor_layout
from ..core.siamese import Decoded, SiameseRPNTracker

VERIFY_STAGE = 3  # EfficientNet-Lite0 stride 8, 40 channels


@dataclasses.dataclass
class GuardParams:
    """The long-term part of the default tracker, whatever network localises the target: a
    calibrated target-present score, a box that only changes size when that score supports it,
    LOST and a widened search while the target is gone (`LongTermGuard`).

    `presence_*` are the coefficients of a logistic fit (trackers/train/calibrate.py, record in
    resources/default_tracker.json) of "the target is in view and under the box", fitted leaving
    one video out, on two per-frame figures relative to their level over the first frames: an
    appearance match of the candidate with the first frame's target (which one depends on the
    localiser: `LongTermGuard.presence_figures`) and the stride-8 cosine of the first frame's
    exemplar features with those of an exemplar crop at the candidate (`TargetVerifier`). A
    localiser's own score was a candidate and is left out: it stays near 1 on look-alikes and
    after shot cuts."""

    # target-present score = sigmoid(bias + w_app * appearance / its reference
    #                                  + w_fine * stride-8 verification / its reference), each
    # reference being the figure's mean over the first `reference_frames` tracked frames (the
    # target's own level: a small person in a crowd never matches as well as a face in close-up)
    presence_bias: float = param(-3.48, "target-present score: bias of the calibrated logistic")
    presence_appearance: float = param(4.79, "target-present score: weight of the relative appearance match")
    presence_fine: float = param(3.21, "target-present score: weight of the relative stride-8 verification")
    reference_frames: int = param(5, "tracked frames that set the target's own match levels", live=False)
    # the box: per frame, size and aspect may change by at most max_*_step x support (relative),
    # support = (presence - resize_min_presence) / (1 - resize_min_presence), so not at all at or
    # below `resize_min_presence`; the size stays within [1/max_size_ratio, max_size_ratio] x its
    # size at init
    max_scale_step: float = param(
        0.1, "largest relative change of the box's scale in one frame, at full confidence", range=(0, 1)
    )
    max_aspect_step: float = param(
        0.1, "largest relative change of the box's aspect in one frame, at full confidence", range=(0, 1)
    )
    resize_min_presence: float = param(0.5, "at or below this score the box keeps its size", range=(0, 1))
    move_min_presence: float = param(0.25, "below this score the box does not move", range=(0, 1))
    max_size_ratio: float = param(4.0, "the box's scale stays within this factor of its first size")
    # LOST after `lost_frames` frames in a row with presence < lost_presence; then the search crop
    # widens to `lost_instance_size` (same scale, so the template still fits) without the cosine
    # window, and a candidate with presence >= found_presence is taken as the target again
    lost_presence: float = param(0.5, "a frame scoring below this counts towards LOST", range=(0, 1))
    lost_frames: int = param(5, "frames in a row below lost_presence before the state is LOST")
    found_presence: float = param(0.6, "while LOST, a candidate scoring this much is the target again", range=(0, 1))
    lost_instance_size: int = param(447, "search crop side while LOST (wider search, same scale)")
    lost_window_influence: float = param(
        0.0, "cosine window weight while LOST (0: anywhere in the wider crop)", range=(0, 1)
    )
    # a candidate the localiser itself is this sure of moves the box even while the score is low or
    # the state LOST (the size stays): the verifier knows only what the target looked like, so an
    # object that turns or deforms reads as gone while the localiser still has it; the score and
    # the state still say what the verifier thinks. 1.01: never (the box holds still)
    follow_localiser_score: float = param(
        1.01,
        "while the score is low or LOST, a candidate the localiser scores "
        "this much still moves the box (above 1: never)",
        range=(0, 1.01),
    )
    # the recent view (TargetVerifier.refresh): taken from a frame scoring at least refresh_presence
    # whose first-frame match alone is still refresh_min_first x its reference level, so a slow
    # turn is followed but the view cannot drift onto something the first frame does not resemble
    refresh_presence: float = param(
        0.8, "a frame scoring more than this refreshes the recent view of the target (1: never)", range=(0, 1)
    )
    refresh_min_first: float = param(
        0.5,
        "... if its match with the first frame is at least this fraction of that match's reference level",
        range=(0, 1),
    )
    # a look-alike next to the target (a second person crossing) can take the localiser's best cell
    # while the target is still in the crop: when the chosen candidate scores below lost_presence, or
    # while LOST, the next best separated candidates are verified too and the best-matching is taken
    doubt_candidates: int = param(
        3,
        "while the score is low or LOST, this many separated candidates of the "
        "localiser are verified and the one most like the target taken (1: only "
        "the localiser's best)",
    )
    candidate_min_score: float = param(0.5, "... each scoring at least this much in the localiser", range=(0, 1))


def box_histogram(frame: np.ndarray, center, size, bins=(16, 8)) -> np.ndarray:
    """L1-normalised hue-saturation histogram of the (clipped) box at `center` of `size`."""
    H, W = frame.shape[:2]
    x0, y0 = int(max(0, center[0] - size[0] / 2)), int(max(0, center[1] - size[1] / 2))
    x1, y1 = int(min(W, center[0] + size[0] / 2)), int(min(H, center[1] + size[1] / 2))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return np.full(bins, 1.0 / (bins[0] * bins[1]), np.float32)
    hsv = cv2.cvtColor(frame[y0:y1, x0:x1], cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, list(bins), [0, 180, 0, 256])
    return cv2.normalize(hist, None, 1, 0, cv2.NORM_L1)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a @ b) / (a.norm() * b.norm() + 1e-12))


class TargetVerifier:
    """The first frame's target kept as EfficientNet-Lite0 features (stride 8 and 16) and a
    hue-saturation histogram, plus a recent view (`refresh`); a candidate box is compared with them.
    Finer features keep colour and texture that a stride-16 match abstracts away (two faces match at
    stride 16; hair and glasses tell them apart at stride 8). Training-free: ImageNet weights only."""

    def __init__(self, features_of, exemplar_size: int, context_amount: float):
        # features_of: an exemplar crop (HWC uint8) -> [stride-8, stride-16] features of its centre
        # half, flattened (the target itself, little of its context); each localiser runs it in
        # its own engine
        self.features_of = features_of
        self.exemplar_size = exemplar_size
        self.context_amount = context_amount
        self.template: list[torch.Tensor] = []
        self.recent: list[torch.Tensor] | None = None
        self.colour = None

    def features(self, frame: np.ndarray, center, size, channel_average) -> list[torch.Tensor]:
        pad = self.context_amount * (size[0] + size[1])
        s_z = math.sqrt((size[0] + pad) * (size[1] + pad))
        with torch.inference_mode():
            return self.features_of(get_subwindow(frame, center, self.exemplar_size, round(s_z), channel_average))

    def set_target(self, frame: np.ndarray, center, size, channel_average) -> None:
        self.channel_average = channel_average
        self.template = self.features(frame, center, size, channel_average)
        self.recent = None
        self.colour = box_histogram(frame, center, size)

    def compare(self, frame: np.ndarray, center, size) -> tuple[float, float, float]:
        """(stride-8 cosine, stride-16 cosine, Bhattacharyya colour similarity) of the box at
        (center, size) with the target: the stride-8 cosine is the better of the first frame's
        and the recent view's (`refresh`), so a target that turns or deforms slowly still
        matches, while a shot cut or another object matches neither. `last_first_fine` keeps the
        first frame's alone, `last_features` the box's features (for `refresh`)."""
        feats = self.features(frame, center, size, self.channel_average)
        fine, coarse = (_cosine(a, b) for a, b in zip(self.template, feats))
        self.last_first_fine, self.last_features = fine, feats
        if self.recent is not None:
            fine = max(fine, _cosine(self.recent[0], feats[0]))
        colour = 1.0 - float(
            cv2.compareHist(self.colour, box_histogram(frame, center, size), cv2.HISTCMP_BHATTACHARYYA)
        )
        return fine, coarse, colour

    def refresh(self) -> None:
        """The last compared box becomes the recent view of the target."""
        self.recent = self.last_features


class VerifiedCandidate(NamedTuple):
    presence: float
    cell: int
    figures: tuple  # (stride-8 cosine, stride-16 cosine, colour similarity)
    appearance: float  # the presence's appearance figure
    first_fine: float  # the stride-8 cosine with the first frame's view alone
    features: list  # the box's features (TargetVerifier.refresh takes them)


class LongTermGuard:
    """The default tracker's long-term part, as hooks of the RPN-family loop
    (SiameseRPNTracker.track), on top of whichever network localises the target:

    - `decode_step` picks the candidate cell (the localiser's scores, `choice_scores`), with the
      cosine window at `lost_window_influence` while LOST;
    - `refine_step` checks the candidate against the first frame's target and a recent confident
      view of it (`TargetVerifier`), and while it doubts, the localiser's other peaks as well
      (`verified_candidate`: a look-alike may hold the best cell),
      makes the calibrated target-present score (`presence`), moves and resizes the box only as
      far as that score supports (`bounded_size`), and goes LOST / finds the target again;
    - `search_size` widens the search crop while LOST;
    - `finish_result` reports the presence as the score, the state and the figures.

    The contract, declared (and checked where a class takes the guard in, `__init_subclass__`):
    - the guard goes before a SiameseRPNTracker in the class's bases: it overrides that loop's hooks;
    - the class provides `verify_backbone()`, the trunk the verification runs;
    - its params are a GuardParams too (the localiser's params plus the guard's);
    - the frame a candidate is verified on comes in the search context (`ctx.frame`).
    The guard makes its own TargetVerifier when the tracker is made, and keeps its state (`lost`,
    `low_frames`) with the starting values declared here."""

    verifier: TargetVerifier
    lost: bool = False  # the target is lost: the box is held, the search widened
    low_frames: int = 0  # frames in a row with the presence below lost_presence

    extra_keys = {
        "head_score": "the localiser's own score at the chosen cell",
        "appearance": "the appearance match of the candidate that the presence uses",
        "verify_fine": "stride-8 cosine of the target (the better of the first frame's and the recent "
        "view's) with an exemplar crop at the candidate",
        "verify_coarse": "the same at stride 16",
        "colour": "hue-saturation histogram similarity of the candidate box with the first box",
        "instance_size": "search crop side this frame (wider while LOST)",
    }

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not issubclass(cls, SiameseRPNTracker):
            raise TypeError(f"{cls.__name__}: LongTermGuard goes before a SiameseRPNTracker, whose hooks it overrides")
        if cls.verify_backbone is LongTermGuard.verify_backbone:
            raise TypeError(f"{cls.__name__}: a LongTermGuard tracker provides verify_backbone()")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not isinstance(self.params, GuardParams):
            raise TypeError(
                f"{type(self).__name__}: the guard's params are a GuardParams, got {type(self.params).__name__}"
            )
        self.verifier = TargetVerifier(self._verify_features, self.params.exemplar_size, self.params.context_amount)

    def init(self, frame, box) -> None:
        super().init(frame, box)
        self.verifier.set_target(frame, self.center, self.size, self.channel_average)
        self.init_size = self.size.copy()
        self.lost = False
        self.low_frames = 0
        self.reference: list[tuple[float, float]] = []

    # -- what a localiser provides ------------------------------------------------------------------
    def choice_scores(self, score: np.ndarray, ctx) -> np.ndarray:
        """Per-cell scores the candidate is chosen on (default: the localiser's own)."""
        return score

    def presence_figures(self, ctx, best: int, fine: float, coarse: float) -> tuple[float, float]:
        """(appearance, fine) figures of the presence score for the chosen candidate."""
        return coarse, fine

    # -- the verification in the tracker's engine ---------------------------------------------------
    def verify_backbone(self):
        """The EfficientNet-Lite0 trunk (stride 8 and 16 outputs) the verification runs."""
        raise NotImplementedError

    def engine_search_sizes(self) -> list:
        return [self.params.lost_instance_size]  # the widened search while LOST

    def engine_modules(self) -> dict:
        """The verification crop's features run in the same engine as the main network (ONNX
        Runtime when it runs that: about 5x eager torch for this trunk on the CPU)."""
        if "_verify_module" not in self.__dict__:
            self._verify_module = ExemplarFeatures(self.verify_backbone()).eval()
        side = self.params.exemplar_size
        return {"verify": (self._verify_module, (1, 3, side, side))}

    def verify(self, frame: np.ndarray, center, size) -> tuple[float, float, float]:
        """(stride-8 cosine, stride-16 cosine, colour similarity) of the box with the first frame's target."""
        return self.verifier.compare(frame, center, size)

    def _verify_features(self, patch: np.ndarray) -> list[torch.Tensor]:
        x = torch.from_numpy(to_tensor_layout(patch)).to(self.device, self.dtype)
        return [f.float().cpu() for f in self.run_module("verify", x)]

    # -- the hooks ------------------------------------------------------------------------------------
    def search_size(self) -> int:
        return self.params.lost_instance_size if self.lost else self.params.instance_size

    def decode_step(self, cls: np.ndarray, loc: np.ndarray, ctx) -> Decoded:
        """The candidate only: the state moves in refine_step, once the candidate is verified."""
        p = self.params
        score, pred_bbox, best, penalty, pscore = self.candidates(
            cls,
            loc,
            ctx.scale_z,
            p.lost_window_influence if self.lost else p.window_influence,
            rescore=lambda s: self.choice_scores(s, ctx),
        )
        bbox_delta = pred_bbox[:, best] / ctx.scale_z
        ctx.notes["lost_before"] = self.lost
        ctx.notes["score_side"] = cls.shape[-1]
        return Decoded(
            score,
            pred_bbox,
            penalty,
            pscore,
            best,
            0.0,
            bbox_delta,
            tuple(self.center),
            tuple(self.size),
            (0.0, 0.0, 0.0, 0.0),
        )

    def refine_step(self, step: Decoded, ctx, timer: StageTimer) -> Decoded:
        p = self.params
        frame = ctx.frame
        with timer.stage("verify"):
            step, (fine, coarse, colour), (appearance, presence) = self.verified_candidate(step, ctx)
        with timer.stage("decode"):
            if (
                not ctx.notes["lost_before"]
                and presence > p.refresh_presence
                and self.verifier.last_first_fine >= p.refresh_min_first * self.reference_fine()
            ):
                # a confident frame still like the first one: its view becomes the recent view
                self.verifier.refresh()
            lr = float(step.penalty[step.best] * presence * p.lr)
            center, size = self.center.copy(), self.size.copy()
            # only a localiser with no rival candidate: where a look-alike scores too, the verifier decides
            follows = step.score[step.best] >= p.follow_localiser_score and not ctx.notes["rivals"]
            if ctx.notes["lost_before"]:
                if presence >= p.found_presence:  # re-detected: go there, keep the size it had
                    self.lost, self.low_frames = False, 0
                    center = self.center + step.bbox_delta[:2]
                elif follows:
                    center = self.center + step.bbox_delta[:2]
            else:
                self.low_frames = self.low_frames + 1 if presence < p.lost_presence else 0
                if self.low_frames >= p.lost_frames:
                    self.lost = True  # hold the box where the target was last seen
                elif presence >= p.move_min_presence:
                    center = self.center + step.bbox_delta[:2]
                    size = self.bounded_size(step.bbox_delta[2:], lr, presence)
                elif follows:
                    center = self.center + step.bbox_delta[:2]
        if size[0] * size[1] > self.size[0] * self.size[1] * 1.001:
            with timer.stage("verify"):
                # a larger box is taken only where the first frame's target matches it at least as
                # well as the old one: the sizes grow onto background (a face's box onto the hair),
                # and a box that grows takes in more background yet
                if self.verifier.compare(frame, center, size)[0] < fine:
                    size = self.size.copy()
        cx, cy, w, h = D.clip_box(center[0], center[1], size[0], size[1], frame.shape)
        ctx.notes.update(presence=presence, appearance=appearance, fine=fine, coarse=coarse, colour=colour)
        return dataclasses.replace(step, lr=lr, center=(cx, cy), size=(w, h), box=(cx - w / 2, cy - h / 2, w, h))

    def verified_candidate(self, step: Decoded, ctx) -> tuple[Decoded, tuple, tuple]:
        """The localiser's best candidate with its verification (fine, coarse, colour) and its
        (appearance, presence). While that presence is below lost_presence, or the state is LOST,
        the localiser's other peaks (`other_candidates`) are verified as well and the one with the
        highest presence is taken; ctx.notes["rivals"] counts those the localiser is as sure of as
        `follow_localiser_score` (then the box does not just follow the localiser)."""
        p = self.params
        checked = [self._verify_cell(step, ctx, step.best, update_reference=True)]
        others = []
        if checked[0].presence < p.lost_presence or ctx.notes["lost_before"]:
            others = self.other_candidates(step, ctx, p.doubt_candidates - 1)
            checked += [self._verify_cell(step, ctx, cell) for cell in others]
        ctx.notes["rivals"] = sum(step.score[cell] >= p.follow_localiser_score for cell in others)
        chosen = max(checked, key=lambda c: c.presence)
        # what `refresh` takes as the recent view, and refine_step's refresh test, are the chosen box's
        self.verifier.last_first_fine, self.verifier.last_features = chosen.first_fine, chosen.features
        if chosen.cell != step.best:
            step = dataclasses.replace(step, best=chosen.cell, bbox_delta=step.pred_bbox[:, chosen.cell] / ctx.scale_z)
        return step, chosen.figures, (chosen.appearance, chosen.presence)

    def _verify_cell(self, step: Decoded, ctx, cell: int, update_reference: bool = False) -> VerifiedCandidate:
        """One cell's box (at the current size) compared with the target, and its presence."""
        figures = self.verifier.compare(ctx.frame, self.center + step.pred_bbox[:2, cell] / ctx.scale_z, self.size)
        appearance, fine_figure = self.presence_figures(ctx, cell, figures[0], figures[1])
        return VerifiedCandidate(
            self.presence(appearance, fine_figure, update_reference),
            cell,
            figures,
            appearance,
            self.verifier.last_first_fine,
            self.verifier.last_features,
        )

    def other_candidates(self, step: Decoded, ctx, n: int) -> list[int]:
        """Up to n cells other than step.best: local maxima of the localiser's score x size penalty
        (no cosine window: a look-alike may have pulled the best cell away from where the target
        is), best first, each scoring at least candidate_min_score and at least half the target's
        smaller side away from every cell taken before it. One object's blob has one maximum, so a
        candidate is another object (or another part of the picture), not the target's own edge."""
        if n <= 0:
            return []
        side = ctx.notes["score_side"]
        ranked = (step.score * step.penalty).reshape(-1, side, side)  # (anchors, S, S)
        per_cell = ranked.max(axis=0).astype(np.float32)  # compared with its own dilation, same dtype
        peaks = per_cell >= cv2.dilate(per_cell, np.ones((3, 3), np.uint8))
        anchor = ranked.argmax(axis=0)
        ys, xs = np.nonzero(peaks)
        cells = anchor[ys, xs] * side * side + ys * side + xs
        cells = [
            int(c) for c in cells[np.argsort(-per_cell[ys, xs])] if step.score[c] >= self.params.candidate_min_score
        ]
        gap = 0.5 * min(self.size) * ctx.scale_z
        taken = [step.best]
        for c in cells:
            if len(taken) > n:
                break
            if all(math.hypot(*(step.pred_bbox[:2, c] - step.pred_bbox[:2, t])) >= gap for t in taken):
                taken.append(c)
        return taken[1:]

    def finish_result(self, result: TrackResult, step: Decoded, ctx, timer: StageTimer) -> TrackResult:
        n = ctx.notes
        result.score = n["presence"]
        result.state = TrackingState.LOST if self.lost else TrackingState.TRACKING
        result.extra.update(
            head_score=float(step.score[step.best]),
            appearance=n["appearance"],
            verify_fine=n["fine"],
            verify_coarse=n["coarse"],
            colour=n["colour"],
            instance_size=ctx.instance_size,
        )
        return result

    # -- confidence and box ---------------------------------------------------------------------------
    def presence(self, appearance: float, fine: float, update_reference: bool = True) -> float:
        """Calibrated probability that the target is in view under the candidate box. The first
        `reference_frames` frames also set the reference levels (their running mean until then;
        only the localiser's own candidate counts, `update_reference`)."""
        p = self.params
        if update_reference and len(self.reference) < p.reference_frames:
            self.reference.append((appearance, fine))
        ref_app, ref_fine = np.mean(self.reference, axis=0)
        z = (
            p.presence_bias
            + p.presence_appearance * appearance / max(ref_app, 1e-3)
            + p.presence_fine * fine / max(ref_fine, 1e-3)
        )
        return float(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))))

    def reference_fine(self) -> float:
        return float(np.mean([f for _, f in self.reference])) if self.reference else 0.0

    def bounded_size(self, predicted: np.ndarray, lr: float, presence: float) -> np.ndarray:
        """pysot's smoothed size, then its change of scale and of aspect held within what `presence`
        supports, and the scale within max_size_ratio of the first frame's."""
        p = self.params
        if presence <= p.resize_min_presence:
            return self.size.copy()
        # how far above "no size change" the score is, 0..1
        support = min(1.0, (presence - p.resize_min_presence) / (1.0 - p.resize_min_presence))
        w, h = self.size * (1 - lr) + predicted * lr
        old_scale, old_aspect = math.sqrt(self.size[0] * self.size[1]), self.size[0] / self.size[1]
        s_step, a_step = 1 + p.max_scale_step * support, 1 + p.max_aspect_step * support
        scale = old_scale * min(max(math.sqrt(w * h) / old_scale, 1 / s_step), s_step)
        aspect = old_aspect * min(max((w / h) / old_aspect, 1 / a_step), a_step)
        init_scale = math.sqrt(self.init_size[0] * self.init_size[1])
        scale = min(max(scale, init_scale / p.max_size_ratio), init_scale * p.max_size_ratio)
        return np.array([scale * math.sqrt(aspect), scale / math.sqrt(aspect)])
