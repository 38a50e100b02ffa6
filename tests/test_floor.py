"""The training-free floor tracker: its parts on cases with known answers, then real frames."""

import numpy as np
import pytest
import torch

from tests.conftest import shared_path
from trackers.core import registry
from trackers.families import floor as FL
from trackers.run import metrics as M
from trackers.tools import evaluate as E


def test_channel_weights_favour_channels_that_fire_on_the_box():
    feat = torch.zeros(3, 16, 16)
    feat[0, 6:10, 6:10] = 1.0  # only inside the box
    feat[1] = 1.0  # everywhere: no more inside than around
    feat[2, 4:12, 4:12] = 1.0
    feat[2, 6:10, 6:10] = 2.0  # 4x the energy inside vs its ring
    w = FL.channel_weights(feat, (6, 6, 10, 10), 8)
    assert w[0] == pytest.approx(1.0)
    assert w[1] == pytest.approx(0.0, abs=1e-3)
    assert 0 < w[2] < w[0]
    # a box that covers part of a cell counts that cell by its covered fraction
    w_half = FL.channel_weights(feat, (6.5, 6.5, 9.5, 9.5), 8)
    assert w_half[0] == pytest.approx(1.0)


def test_weighted_cosine_peaks_at_one_where_the_template_lies():
    g = torch.Generator().manual_seed(0)
    search = torch.randn(1, 5, 16, 16, generator=g)
    mean = torch.randn(5, generator=g) * 0.1
    weights = torch.tensor([1.0, 0.5, 0.0, 2.0, 1.0])
    template = search[0, :, 3:11, 5:13] - mean[:, None, None]
    cosine, per_channel = FL.weighted_cosine(search, template, weights, mean)
    assert cosine.shape == (1, 9, 9) and per_channel.shape == (1, 5, 9, 9)
    assert cosine[0, 3, 5] == pytest.approx(1.0, abs=1e-5)
    assert int(cosine[0].argmax()) == 3 * 9 + 5
    assert float(cosine.abs().max()) <= 1 + 1e-5
    torch.testing.assert_close(per_channel.sum(1), cosine)
    assert float(per_channel[0, 2].abs().max()) == 0.0  # a zero-weight channel adds nothing
    # scaling the search maps around the mean leaves a cosine unchanged
    c2, _ = FL.weighted_cosine(
        (search - mean[None, :, None, None]) * 3 + mean[None, :, None, None], template, weights, mean
    )
    torch.testing.assert_close(c2, cosine)


def test_registered_without_weights():
    spec = registry.get("effnet-siamfc-floor")
    assert spec.needs_weights is False and spec.params_type is FL.FloorParams


def test_floor_follows_the_cup_and_shows_its_insides():
    # 12 frames keep the test short on a 2-core machine; `eval` measures whole sequences
    seq = E.load_sequence(shared_path("bench", "cup"), max_frames=12)
    tracker = registry.build("effnet-siamfc-floor")
    with seq.source() as source:
        frames = [source.read() for _ in seq.frames]
    tracker.init(frames[0], tuple(seq.gt[0]))
    boxes, results = [seq.gt[0]], []
    for frame in frames[1:]:
        r = tracker.track(frame)
        boxes.append(r.box)
        results.append(r)
    score = M.score_sequence(np.array(boxes), seq.gt)
    assert score.precision == 1.0 and score.auc > 0.75, (score.auc, score.precision)
    r = results[-1]
    p = tracker.params
    up = 9 * p.response_up
    assert r.score_map.shape == (up, up) and r.score_map.dtype == np.float32
    assert -1 <= r.score <= 1 and r.score > 0.3  # a cosine, and a confident one on the cup
    (ch,) = r.channels
    assert ch.maps.shape == (112, 9, 9) and ch.level == "stage5"
    # the channel maps are the terms of the cosine: their sum peaks at the reported score
    assert float(ch.maps.sum(0).max()) == pytest.approx(r.score, abs=0.05)
    x0, y0, x1, y1 = r.search_region.score_extent
    cx, cy = x0 + (x1 - x0) / 2, y0 + (y1 - y0) / 2
    prev = np.array(boxes[-2])
    assert abs(cx - (prev[0] + (prev[2] - 1) / 2)) < 1e-6 and abs(cy - (prev[1] + (prev[3] - 1) / 2)) < 1e-6
    # the box keeps the first frame's aspect ratio (SiamFC only rescales)
    assert r.box[2] / r.box[3] == pytest.approx(seq.gt[0][2] / seq.gt[0][3], rel=1e-6)
    assert set(r.timings) == {"crop", "network", "decode"}
