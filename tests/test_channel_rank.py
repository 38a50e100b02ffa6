"""Target-selective channel ranking (trackers/run/channel_rank.py), on a search image whose answer is known."""

from __future__ import annotations

import cv2
import numpy as np

from trackers.core.base import ChannelMaps, SearchRegion
from trackers.run.channel_rank import (
    PEAK,
    TARGET,
    border_cells,
    border_peak_counts,
    interior_mask,
    rank_channels,
    target_contrast,
    target_mask,
)

STRIDE = 8
TARGET_BOX = (152.0, 56.0, 48.0, 48.0)  # x, y, w, h in the search image (multiples of the stride)
PAD = 64  # the search crop ran off the frame: a black band on its left


def _search_image() -> np.ndarray:
    """256 x 256 RGB: a grey textured scene, a red square target at TARGET_BOX, and the black band a
    crop gets where it leaves the frame (zero padding, as in a real search crop near the edge)."""
    rng = np.random.default_rng(0)
    img = np.clip(128 + rng.normal(0, 6, (256, 256, 3)), 0, 255).astype(np.float32)
    x, y, w, h = (int(v) for v in TARGET_BOX)
    img[y : y + h, x : x + w] = (200, 30, 30)
    img[:, :PAD] = 0
    return img


def _features(img: np.ndarray) -> np.ndarray:
    """(4, 32, 32) stride-8 features: redness (the target's colour), darkness (fires on the padding
    band), texture noise, and a dead channel."""
    r, g, b = img[..., 0] / 255, img[..., 1] / 255, img[..., 2] / 255
    gray = 0.299 * r + 0.587 * g + 0.114 * b
    rng = np.random.default_rng(1)
    planes = [np.clip(r - (g + b) / 2, 0, None), 1 - gray, rng.uniform(0, 0.3, gray.shape), np.zeros_like(gray)]
    return np.stack([cv2.resize(p.astype(np.float32), (32, 32), interpolation=cv2.INTER_AREA) for p in planes])


def _dw_xcorr() -> tuple[ChannelMaps, SearchRegion]:
    """Depth-wise cross-correlation of the target's template features over the search features
    (channel c of the template against channel c of the search image), and where the map lies."""
    feats = _features(_search_image())
    x, y, w, h = (int(v) // STRIDE for v in TARGET_BOX)
    template = feats[:, y : y + h, x : x + w]
    maps = np.stack([cv2.matchTemplate(feats[c], template[c], cv2.TM_CCORR) for c in range(len(feats))])
    n = maps.shape[1]  # 27: cell (i, j) = template centred at (j * 8 + 24, i * 8 + 24)
    x0 = w * STRIDE / 2 - STRIDE / 2
    region = SearchRegion(0.0, 0.0, 256.0, (x0, x0, x0 + n * STRIDE, x0 + n * STRIDE))
    return ChannelMaps("stride8", "xcorr", maps.astype(np.float32)), region


def test_the_channel_built_to_fire_on_the_target_ranks_first_and_padding_does_not():
    layer, region = _dw_xcorr()
    maps = layer.maps
    # the set-up is what it claims: redness peaks at the target's cell, darkness on the padded border
    assert np.unravel_index(maps[0].argmax(), maps[0].shape) == (56 // 8, 152 // 8)
    assert np.unravel_index(maps[1].argmax(), maps[1].shape)[1] < border_cells(maps.shape[2])
    mask = target_mask(maps.shape[1:], TARGET_BOX, region)
    assert mask[56 // 8, 152 // 8] and mask.sum() == 49 and not mask[0].any()

    contrast = target_contrast(maps, mask)
    assert contrast[0] > 0.4  # concentrated on the target
    assert abs(contrast[1]) < 0.2 and abs(contrast[2]) < 0.2
    assert contrast[3] == 0.0  # a dead channel is not selective

    ranked = rank_channels([layer], 4, by=TARGET, box=TARGET_BOX, region=region)
    assert [r.key[2] for r in ranked][0] == 0
    assert ranked[0].value == contrast[0]
    # ranked by the peak, the padding channel wins: what the target ranking exists to avoid
    by_peak = rank_channels([layer], 4, by=PEAK)
    assert by_peak[0].key == ("stride8", "xcorr", 1)
    # the top channel by the plain maximum peaks on the padding border; by target contrast it does not
    assert border_peak_counts([layer], 1, TARGET_BOX, region) == {"target": 0, "peak": 1, "max over the whole map": 1}


def test_border_is_left_out_and_pins_come_first():
    assert [border_cells(s) for s in (3, 5, 9, 13, 16, 25)] == [0, 1, 1, 1, 2, 3]
    inner = interior_mask((16, 16))
    assert inner.sum() == 12 * 12 and not inner[1].any() and inner[2, 2]
    # a channel whose only response is in the border corner has no interior peak
    maps = np.zeros((2, 16, 16), np.float32)
    maps[0, 0, 0] = 5.0
    maps[1, 8, 8] = 1.0
    layer = ChannelMaps("s16", "xcorr", maps)
    assert [r.key[2] for r in rank_channels([layer], 2, by=PEAK)] == [1, 0]
    pinned = rank_channels([layer], 2, pinned=[("s16", "xcorr", 0)], by=PEAK)
    assert [r.key[2] for r in pinned] == [0, 1]
    # no tracked box yet: peak order, the target value unknown
    no_box = rank_channels([layer], 2, by=TARGET)
    assert [r.key[2] for r in no_box] == [1, 0] and np.isnan(no_box[0].value)
