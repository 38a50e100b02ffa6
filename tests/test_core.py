"""The shared parts every tracker is made of: box checks, crops, decode grids, sources, results files."""

import json
import os

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from trackers.core import decode as D
from trackers.core.base import BoxError, TrackResult, validate_box
from trackers.core.crop import channel_average, get_subwindow
from trackers.run.results import RunRecord, export_results, read_boxes
from trackers.run.sources import ImageFolderSource, SourceError, VideoFileSource, open_source


def _padded_reference_crop(im, pos, model_sz, original_sz, avg):
    """The references' way: pad the whole frame with the mean colour, then slice (slow but plain)."""
    c = (original_sz + 1) / 2
    xmin = np.floor(pos[0] - c + 0.5)
    ymin = np.floor(pos[1] - c + 0.5)
    xmax, ymax = xmin + original_sz - 1, ymin + original_sz - 1
    H, W, _ = im.shape
    lp, tp = int(max(0, -xmin)), int(max(0, -ymin))
    rp, bp = int(max(0, xmax - W + 1)), int(max(0, ymax - H + 1))
    big = np.zeros((H + tp + bp, W + lp + rp, 3), np.uint8)
    big[:] = avg
    big[tp : tp + H, lp : lp + W] = im
    patch = big[int(ymin + tp) : int(ymax + tp + 1), int(xmin + lp) : int(xmax + lp + 1)]
    return cv2.resize(patch, (model_sz, model_sz)) if model_sz != original_sz else patch


@pytest.mark.parametrize(
    "pos,sz",
    [
        ((240.3, 180.7), 200),
        ((10.0, 5.5), 301),
        ((470.0, 350.0), 127),
        ((-50.0, 20.0), 255),
        ((240.0, 180.0), 900),
        ((-400.0, 20.0), 255),
    ],
)
def test_crop_equals_full_frame_padding(pos, sz):
    im = cv2.imread(shared_path("data", "images", "baboon.jpg"))
    im = cv2.resize(im, (480, 360))
    avg = channel_average(im)
    ours = get_subwindow(im, pos, 127, sz, avg)
    ref = _padded_reference_crop(im, pos, 127, sz, avg)
    assert ours.shape == (127, 127, 3) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, ref)


def test_crop_matches_recorded_nanotrack_exemplar():
    """The exemplar crop the NanoTrack reference cut at init (uint8-exact, see fixtures README)."""
    steps = np.load(shared_path("fixtures", "nanotrack_v2", "track_steps.npz"))
    info = json.load(open(shared_path("fixtures", "nanotrack_v2", "track_steps.json")))
    cap = cv2.VideoCapture(shared_path("data", "videos", "bag.avi"))
    ok, frame = cap.read()
    assert ok
    x, y, w, h = 292.23, 128.36, 145.96, 132.47
    center = (x + (w - 1) / 2, y + (h - 1) / 2)
    p = 0.5 * (w + h)
    s_z = round(np.sqrt((w + p) * (h + p)))
    crop = get_subwindow(frame, center, 127, s_z, channel_average(frame))
    if "s_z_rounded" in info:
        assert s_z == info["s_z_rounded"]
    np.testing.assert_array_equal(crop, steps["exemplar_crop"])


def test_anchors_and_window_match_pysot_fixture():
    steps = np.load(shared_path("fixtures", "pysot_siamrpn_r50_l234_dwxcorr", "track_steps.npz"))
    anchors = D.generate_anchors(8, [0.33, 0.5, 1, 2, 3], [8], 25)
    np.testing.assert_array_equal(anchors, steps["anchors"])
    np.testing.assert_allclose(D.cosine_window(25, 5), steps["window"], rtol=0, atol=1e-12)


def test_points_match_nanotrack_fixture():
    steps = np.load(shared_path("fixtures", "nanotrack_v2", "track_steps.npz"))
    np.testing.assert_array_equal(D.generate_points(16, 16), steps["points"])


def test_penalty_is_one_for_unchanged_size_and_smaller_for_changes():
    same = D.scale_ratio_penalty(np.array([50.0]), np.array([30.0]), 50.0, 30.0, 0.1)
    assert same[0] == pytest.approx(1.0)
    bigger = D.scale_ratio_penalty(np.array([100.0]), np.array([60.0]), 50.0, 30.0, 0.1)
    squashed = D.scale_ratio_penalty(np.array([50.0]), np.array([60.0]), 50.0, 30.0, 0.1)
    assert bigger[0] < 1 and squashed[0] < 1


@pytest.mark.parametrize(
    "box,msg",
    [
        ((10, 10, 0, 20), "empty"),
        ((10, 10, 20, -3), "empty"),
        ((500, 10, 20, 20), "outside"),
        ((-30, 10, 20, 20), "outside"),
        ((1, 2, 3), "four numbers"),
        ((1, 2, float("nan"), 4), "non-finite"),
    ],
)
def test_bad_boxes_are_refused_with_a_message(box, msg):
    with pytest.raises(BoxError, match=msg):
        validate_box(box, (360, 480, 3))


def test_box_partly_outside_is_accepted():
    assert validate_box((-10, -10, 40, 40), (360, 480, 3)) == (-10.0, -10.0, 40.0, 40.0)


def test_video_source_reads_every_frame_and_seeks():
    path = shared_path("data", "videos", "bag.avi")
    src = open_source(path)
    assert isinstance(src, VideoFileSource) and src.frame_count == 196
    frames = list(src)
    assert len(frames) == 196 and frames[0].shape == (360, 480, 3)
    src.seek(100)
    f100 = src.read()
    np.testing.assert_array_equal(f100, frames[100])
    src.close()


def test_image_folder_source_accepts_otb_layout():
    seq = shared_path("bench", "bag")
    src = open_source(seq)
    assert isinstance(src, ImageFolderSource) and src.frame_count == 196
    assert os.path.basename(src.files[0]) == "00001.jpg" and os.path.basename(src.files[10]) == "00011.jpg"
    assert src.read().shape == (360, 480, 3)


def test_unreadable_sources_raise_clear_errors(tmp_path):
    bogus = tmp_path / "notavideo.avi"
    bogus.write_text("hello")
    with pytest.raises(SourceError, match="cannot read video"):
        open_source(str(bogus))
    with pytest.raises(SourceError, match="does not exist"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no JPEG/PNG"):
        open_source(str(tmp_path / "empty"))


def test_results_files_round_trip(tmp_path):
    run = RunRecord(tracker="nanotrack-v2", params={"lr": 0.385}, source="bag.avi")
    run.add_init(0, (10, 20, 30, 40))
    for i in range(1, 4):
        run.add(i, TrackResult(box=(10 + i, 20.5, 30, 40), score=0.9, timings={"network": 3.0}))
    run.add_init(2, (50, 60, 30, 40))  # a re-draw on frame 2 replaces what followed
    run.add(3, TrackResult(box=(51, 61, 30, 40), score=0.8))
    export_results(str(tmp_path / "r.txt"), run)
    boxes = read_boxes(str(tmp_path / "r.txt"))
    np.testing.assert_allclose(boxes, [[10, 20, 30, 40], [11, 20.5, 30, 40], [50, 60, 30, 40], [51, 61, 30, 40]])
    export_results(str(tmp_path / "r.json"), run)
    data = json.load(open(tmp_path / "r.json"))
    assert data["tracker"] == "nanotrack-v2" and data["params"] == {"lr": 0.385}
    assert [r["frame"] for r in data["reinitialisations"]] == [0, 2]
    export_results(str(tmp_path / "r.csv"), run)
    lines = open(tmp_path / "r.csv").read().splitlines()
    assert lines[0].startswith("frame,x,y,w,h,score,state,init") and len(lines) == 5
    with pytest.raises(OSError):
        export_results(str(tmp_path / "nope" / "r.txt"), run)


def test_slim_bounds_what_a_run_keeps_per_frame():
    """A run keeps per frame a bounded slim result: a SiamFC-size 272x272 score map comes down to
    64x64, a frame-sized float mask is packed (a few kB) and unpacks to the tracker's own cut,
    intermediate arrays in `extra` are dropped."""
    from trackers.run.results import KEPT_SCORE_MAP_SIDE, slim, with_mask

    yy, xx = np.mgrid[0:272, 0:272]
    score = np.exp(-((xx - 150) ** 2 + (yy - 120) ** 2) / 800.0).astype(np.float32)
    mask = np.zeros((576, 768), np.float32)
    mask[100:300, 200:420] = 0.6
    mask[150:160, 250:260] = 0.1  # under the tracker's 0.15 cut: not kept
    result = TrackResult(
        box=(1, 2, 3, 4),
        score=0.5,
        score_map=score,
        mask=mask,
        mask_threshold=0.15,
        extra={"mask_crop": np.ones((127, 127), np.float32), "peak": 3},
    )
    kept, packed = slim(result)
    assert kept.score_map.shape == (KEPT_SCORE_MAP_SIDE, KEPT_SCORE_MAP_SIDE)
    r, c = np.unravel_index(np.argmax(kept.score_map), kept.score_map.shape)
    assert abs(c * 272 / 64 - 150) < 8 and abs(r * 272 / 64 - 120) < 8  # the peak stays where it was
    assert kept.mask is None and kept.extra == {"peak": 3}
    assert packed.nbytes < 2000 < mask.nbytes
    np.testing.assert_array_equal(with_mask(kept, packed).mask, mask > 0.15)
