"""Which correlation channels respond to the tracked target (headless; the app's channel grid shows them).

SiamRPN++ §3.4 observes that single DW-XCorr channels respond to single object categories. Ranking
channels by their maximum response does not surface those: on zero-padded search features many
channels peak on the map's border (NanoTrack v2: 7 of the top 12, at the corners). So the default
ranking asks how much a channel's response concentrates on the target:

    target contrast = (mean over the target's cells - mean over the other cells) / (max - min)

over the map's interior (a border of `border_cells(side)` cells is left out on every side). It lies
in [-1, 1]: about 0 for a channel that responds everywhere alike (or to noise), near 1 for one that
fires on the target and nowhere else, negative for one that is suppressed on it. Dividing by the
interior range makes weak and strong channels comparable; a dead channel (range 0) scores 0.

The target's cells: a channel map covers the same part of the search crop as the score map
(`SearchRegion.score_extent`; exact where both have one cell per stride, as in the RPN-family and
NanoTrack heads), so cell (i, j) of an h x w map centres at x0 + (j + 0.5) * (x1 - x0) / w. The
cells whose centres fall inside the tracked box are the target's (at least the one nearest its
centre).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from ..core.base import ChannelMaps, SearchRegion

#: ranking names as the app offers them
TARGET = "target"  # target contrast (the default)
PEAK = "peak"  # maximum response over the interior
RANKINGS = (TARGET, PEAK)


@dataclasses.dataclass
class RankedChannel:
    key: tuple  # (level, branch, channel index)
    data: np.ndarray  # (h, w) response
    value: float  # the ranking value (target contrast or peak); NaN where it cannot be had


def border_cells(side: int) -> int:
    """Cells left out on each side: 1 per 8 cells (a 16-cell map loses 2, a 25-cell one 3), at
    least 1 while a map has 5 cells or more, so at least 3 x 3 cells remain."""
    if side < 5:
        return 0
    return max(1, side // 8)


def interior_mask(shape: tuple[int, int]) -> np.ndarray:
    h, w = shape
    m = np.zeros((h, w), bool)
    bh, bw = border_cells(h), border_cells(w)
    m[bh : h - bh, bw : w - bw] = True
    return m


def target_mask(shape: tuple[int, int], box: Sequence[float], region: SearchRegion | None) -> np.ndarray:
    """The cells of an h x w map whose centres fall inside `box` (x, y, w, h frame pixels), or the
    one nearest the box's centre; without a search region the map's centre cell (the crop is
    centred on the target)."""
    h, w = shape
    m = np.zeros((h, w), bool)
    if region is None:
        m[h // 2, w // 2] = True
        return m
    x0, y0, x1, y1 = region.score_extent
    cx = x0 + (np.arange(w) + 0.5) * (x1 - x0) / w
    cy = y0 + (np.arange(h) + 0.5) * (y1 - y0) / h
    bx, by, bw, bh = (float(v) for v in box)
    inside_x = (cx >= bx) & (cx <= bx + bw)
    inside_y = (cy >= by) & (cy <= by + bh)
    m[np.ix_(inside_y, inside_x)] = True
    if not m.any():
        m[int(np.argmin(np.abs(cy - (by + bh / 2)))), int(np.argmin(np.abs(cx - (bx + bw / 2))))] = True
    return m


def target_contrast(maps: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(C,) target contrast of (C, h, w) maps for a boolean (h, w) target mask (module docstring)."""
    maps = np.asarray(maps, np.float64)
    inner = interior_mask(maps.shape[1:])
    on = target & inner
    off = inner & ~target
    if not on.any():  # the target lies in the border: judge it where it is
        on = target
    if not off.any():  # the target fills the interior: compare with the whole rest
        off = ~target
    if not off.any():
        return np.zeros(len(maps))
    vals = maps[:, inner]
    span = vals.max(1) - vals.min(1)
    diff = maps[:, on].mean(1) - maps[:, off].mean(1)
    out = np.zeros(len(maps))
    ok = span > 1e-12
    out[ok] = diff[ok] / span[ok]
    return out


def peak_response(maps: np.ndarray) -> np.ndarray:
    """(C,) maximum over each map's interior."""
    maps = np.asarray(maps)
    return maps[:, interior_mask(maps.shape[1:])].max(1).astype(np.float64)


def channel_values(
    channels: Sequence[ChannelMaps],
    by: str = TARGET,
    box: Sequence[float] | None = None,
    region: SearchRegion | None = None,
) -> dict[tuple, np.ndarray]:
    """{(level, branch): (C,) ranking values} for every layer."""
    if by not in RANKINGS:
        raise ValueError(f"unknown channel ranking {by!r}; choose one of {', '.join(RANKINGS)}")
    out = {}
    for c in channels:
        if by == PEAK or box is None:
            out[(c.level, c.branch)] = peak_response(c.maps) if by == PEAK else np.full(len(c.maps), np.nan)
        else:
            out[(c.level, c.branch)] = target_contrast(c.maps, target_mask(c.maps.shape[1:], box, region))
    return out


def rank_channels(
    channels: Sequence[ChannelMaps],
    k: int,
    pinned: Sequence[tuple] = (),
    by: str = TARGET,
    box: Sequence[float] | None = None,
    region: SearchRegion | None = None,
) -> list[RankedChannel]:
    """The pinned channels (in pin order), then the others from the highest ranking value down, k in
    all (or more when more are pinned). Ties keep layer and channel order. Without a box (nothing
    tracked yet) the target ranking has no target: channels then come in peak order, valued NaN."""
    values = channel_values(channels, by, box, region)
    by_label = {(c.level, c.branch): c.maps for c in channels}
    chosen: list[RankedChannel] = []
    for key in pinned:
        maps = by_label.get(tuple(key[:2]))
        if maps is not None and key[2] < len(maps):
            chosen.append(RankedChannel(tuple(key), maps[key[2]], float(values[tuple(key[:2])][key[2]])))
    taken = {r.key for r in chosen}
    need = k - len(chosen)
    if need <= 0 or not channels:
        return chosen
    flat = np.concatenate([values[(c.level, c.branch)] for c in channels])
    order_by = flat if not np.isnan(flat).all() else np.concatenate([peak_response(c.maps) for c in channels])
    owners = [(c.level, c.branch, i) for c in channels for i in range(len(c.maps))]
    for idx in np.argsort(-np.nan_to_num(order_by, nan=-np.inf), kind="stable"):
        key = owners[idx]
        if key in taken:
            continue
        chosen.append(RankedChannel(key, by_label[key[:2]][key[2]], float(flat[idx])))
        need -= 1
        if need == 0:
            break
    return chosen


def border_peak_counts(channels: Sequence[ChannelMaps], k: int, box, region) -> dict[str, int]:
    """How many of the top-k channels by each ranking (and by the plain maximum over the whole map,
    the old ranking) have their maximum on the padding border."""

    def on_border(data: np.ndarray) -> bool:
        return not interior_mask(data.shape)[np.unravel_index(int(np.argmax(data)), data.shape)]

    counts = {}
    for by in RANKINGS:
        counts[by] = sum(on_border(r.data) for r in rank_channels(channels, k, by=by, box=box, region=region))
    everything = [m for c in channels for m in c.maps]
    order = np.argsort([-float(m.max()) for m in everything], kind="stable")[:k]
    counts["max over the whole map"] = sum(on_border(everything[i]) for i in order)
    return counts


def main(argv=None) -> int:
    """Border-peak counts of the top-k channels per ranking, averaged over a video's first frames:
    python -m trackers.run.channel_rank VIDEO --tracker NAME [--weights FILE] --box x,y,w,h [--frames N]"""
    import argparse

    from ..core import registry
    from .session import SessionError, TrackingSession
    from .sources import SourceError

    p = argparse.ArgumentParser(prog="python -m trackers.run.channel_rank", description=main.__doc__.splitlines()[0])
    p.add_argument("video")
    p.add_argument("--tracker", default="nanotrack-v2")
    p.add_argument("--weights")
    p.add_argument("--box", required=True)
    p.add_argument("--frames", type=int, default=50)
    p.add_argument("-k", type=int, default=12)
    args = p.parse_args(argv)
    tracker = registry.build(args.tracker, args.weights)
    try:
        session = TrackingSession.open(args.video, tracker)
    except (SessionError, SourceError) as e:
        raise SystemExit(f"cannot read {args.video}: {e}") from None
    totals: dict[str, list[int]] = {}
    with session:
        box = tuple(float(v) for v in args.box.split(","))
        for step in session.run(box, stop=1 + args.frames, maps=True):
            if step.kind != "track":
                continue
            r = step.result
            for name, n in border_peak_counts(r.channels, args.k, r.box, r.search_region).items():
                totals.setdefault(name, []).append(n)
    for name, ns in totals.items():
        print(
            f"{name:>24}: {np.mean(ns):5.2f} of the top {args.k} channels peak on the border "
            f"(mean over {len(ns)} frames)"
        )
    return 0


if __name__ == "__main__":
    # run as a command (README), it names trackers: the project's catalogue (the one import of
    # trackers.families from run/, pyproject.toml's layers contract lists it)
    import trackers.families  # noqa: F401

    raise SystemExit(main())
