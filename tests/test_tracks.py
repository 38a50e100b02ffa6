"""Several tracks in one session (trackers/run/tracks.py), their exports (run/multi_export.py) and
`track` with several boxes or --compare (tools/track_multi.py), headless.

The sequence is synthetic with known motion: three textured 40x40 targets on a textured
background, each moving at a constant velocity; target 3 leaves the frame on the right near frame
16 while the others stay. Tracker: NanoTrack v2 (real checkpoint).
"""

import json
import os

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path

W, H, N_FRAMES, SIDE = 320, 240, 24, 40
STARTS = {1: (40.0, 40.0), 2: (60.0, 150.0), 3: (220.0, 90.0)}
VELOCITY = {1: (3.0, 1.0), 2: (2.0, -1.5), 3: (6.0, 0.5)}


def _texture(seed, size, cells):
    rs = np.random.RandomState(seed)
    small = rs.randint(0, 256, (cells, cells, 3)).astype(np.uint8)
    return cv2.resize(small, (size, size), interpolation=cv2.INTER_NEAREST)


def gt_box(tid, i):
    (x, y), (vx, vy) = STARTS[tid], VELOCITY[tid]
    return (x + vx * i, y + vy * i, float(SIDE), float(SIDE))


def synthetic_frames():
    bg = cv2.GaussianBlur(_texture(0, 512, 64), (0, 0), 3)[:H, :W]
    patches = {tid: _texture(tid, SIDE, 5) for tid in STARTS}
    frames = []
    for i in range(N_FRAMES):
        f = bg.copy()
        for tid, patch in patches.items():
            x, y, w, h = (int(round(v)) for v in gt_box(tid, i))
            x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
            if x1 > x0 and y1 > y0:
                f[y0:y1, x0:x1] = patch[y0 - y : y1 - y, x0 - x : x1 - x]
        frames.append(f)
    return frames


@pytest.fixture(scope="module")
def weights():
    return shared_path("models", "nanotrack", "nanotrackv2.pth")


@pytest.fixture(scope="module")
def sequence_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic") / "img"
    folder.mkdir()
    for i, f in enumerate(synthetic_frames()):
        cv2.imwrite(str(folder / f"{i + 1:04d}.png"), f)
    return str(folder)


def nano(weights, engine="torch"):
    from trackers.core import registry

    return registry.build("nanotrack-v2", weights, engine=engine)


def session_of(frames, **kwargs):
    from trackers.run.sources import FrameListSource
    from trackers.run.tracks import MultiTrackSession

    return MultiTrackSession.open(FrameListSource(frames, "synthetic"), **kwargs)


def test_targets_follow_known_motion_and_one_leaves(weights):
    from trackers.run.metrics import iou

    frames = synthetic_frames()
    runs = {}
    for batch in (True, False):
        with session_of(frames, batch=batch) as s:
            for tid in STARTS:
                s.add(nano(weights), gt_box(tid, 0), tracker_name="nanotrack-v2")
            steps = list(s.run())
            runs[batch] = s.tracks
        assert len(steps) == N_FRAMES
        assert steps[0].kinds == {1: "init", 2: "init", 3: "init"} and set(steps[1].kinds.values()) == {"track"}
    batched, single = runs[True], runs[False]
    for tid in (1, 2):  # they stay in the frame: followed all along, also after 3 has left
        track = batched[tid - 1]
        overlap = iou(list(track.boxes.values()), [gt_box(tid, i) for i in track.boxes])
        assert overlap.min() > 0.6, (tid, overlap.round(2))
    leaving = batched[2]
    inside = [i for i in leaving.boxes if gt_box(3, i)[0] + SIDE <= W]
    assert iou([leaving.boxes[i] for i in inside], [gt_box(3, i) for i in inside]).min() > 0.6
    last = leaving.boxes[N_FRAMES - 1]
    assert last[0] + last[2] <= W + 1e-6, "the box of a target that left stays inside the frame"
    # batching changes nothing: each target's boxes are those of one call per target
    for a, b in zip(batched, single):
        np.testing.assert_allclose(np.array(list(a.boxes.values())), np.array(list(b.boxes.values())), atol=0.05)


def test_reinit_restarts_only_that_target_and_later_start(weights):
    frames = synthetic_frames()
    with session_of(frames) as s:
        plain = [s.add(nano(weights), gt_box(tid, 0)) for tid in (1, 2)]
        list(s.run(end=N_FRAMES))
    with session_of(frames) as s:
        one, two = s.add(nano(weights), gt_box(1, 0)), s.add(nano(weights), gt_box(2, 0))
        late = s.add(nano(weights), gt_box(3, 5), start=5)
        assert late.state == "waiting"
        for step in s.run(end=N_FRAMES):
            if step.index == 5:
                assert step.kinds[late.id] == "init" and late.state == "init"
            if step.index == 10:
                moved = gt_box(2, 10)
                moved = (moved[0] + 3, moved[1] - 2, 44.0, 38.0)
                s.reinit(two.id, moved)
        assert min(late.boxes) == 5 and late.reinitialisations == [dict(frame=5, box=list(gt_box(3, 5)))]
        assert [r["frame"] for r in two.reinitialisations] == [0, 10]
        assert two.boxes[10] == (moved[0], moved[1], 44.0, 38.0)
        # target 1 never noticed: the same boxes as in the run without the re-initialisation
        np.testing.assert_allclose(
            np.array(list(one.boxes.values())), np.array(list(plain[0].boxes.values())), atol=0.05
        )
        assert not np.allclose(two.boxes[11], plain[1].boxes[11], atol=0.05)


def test_exports_read_back(weights, tmp_path):
    from trackers.run.multi_export import read_mot, track_file_name, write_mot, write_multi_json, write_track_files
    from trackers.run.results import read_boxes

    frames = synthetic_frames()[:6]
    with session_of(frames) as s:
        for tid in STARTS:
            s.add(nano(weights), gt_box(tid, 0), start=0 if tid != 3 else 2)
        list(s.run())
        tracks = s.tracks
    mot = tmp_path / "mot.txt"
    write_mot(str(mot), tracks)
    back = read_mot(str(mot))
    assert sorted(back) == [1, 2, 3] and min(back[1]) == 1 and min(back[3]) == 3, "frames are 1-based"
    for t in tracks:
        for i, row in t.record.rows.items():
            np.testing.assert_allclose(back[t.id][i + 1][:4], row.box, atol=0.006)
            assert abs(back[t.id][i + 1][4] - row.score) < 1e-4
    assert open(mot).readline().endswith(",-1,-1,-1\n")
    base = str(tmp_path / "res.txt")
    paths = [track_file_name(base, str(t.id)) for t in tracks]
    write_track_files(paths, tracks)
    assert [os.path.basename(p) for p in paths] == ["res.1.txt", "res.2.txt", "res.3.txt"]
    np.testing.assert_allclose(read_boxes(paths[2]), np.array(list(tracks[2].boxes.values())), atol=1e-4)
    assert track_file_name(base, "../../etc/x") == str(tmp_path / "res._.._etc_x.txt")
    js = tmp_path / "r.json"
    write_multi_json(str(js), tracks, source="synthetic")
    data = json.loads(js.read_text())
    assert [t["id"] for t in data["tracks"]] == [1, 2, 3]
    assert data["tracks"][2]["reinitialisations"] == [dict(frame=2, box=list(gt_box(3, 0)))]
    assert data["tracks"][0]["frames"][1]["state"] == "tracking"


def test_track_limit_says_why(weights):
    from trackers.run.tracks import MAX_TRACKS, TrackLimitError

    frames = synthetic_frames()[:2]
    with session_of(frames) as s:
        tracker = nano(weights)
        for _ in range(MAX_TRACKS):
            s.tracks.append(None) if False else s.add(tracker, gt_box(1, 0))
        with pytest.raises(TrackLimitError, match=f"at most {MAX_TRACKS} tracks.*remove a track first"):
            s.add(tracker, gt_box(2, 0))


def test_cli_several_boxes_and_boxes_file(weights, sequence_dir, tmp_path, capsys):
    from trackers.run.multi_export import read_mot
    from trackers.run.results import read_boxes
    from trackers.tools.cli import main

    boxes = tmp_path / "targets.txt"
    boxes.write_text(
        "# id,x,y,w,h[,start]\n1,{:g},{:g},40,40\n7,{:g},{:g},40,40,4\n".format(*gt_box(1, 0)[:2], *gt_box(2, 4)[:2])
    )
    out, mot = tmp_path / "r.txt", tmp_path / "mot.csv"
    rc = main(
        [
            "track",
            sequence_dir,
            "--tracker",
            "nanotrack-v2",
            "--weights",
            weights,
            "--engine",
            "torch",
            "--boxes",
            str(boxes),
            "--box",
            "{:g},{:g},40,40".format(*gt_box(3, 0)[:2]),
            "--frames",
            "0:10",
            "--out",
            str(out),
            "--mot",
            str(mot),
            "-v",
        ]
    )
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert "3 tracks" in lines[-2]
    assert [ln.split()[1] for ln in lines if ln.startswith("9 ")] == ["1", "2", "7"], "--box takes the free id 2"
    assert len(read_boxes(str(tmp_path / "r.7.txt"))) == 6, "id 7 starts at frame 4: frames 4..9"
    assert len(read_boxes(str(tmp_path / "r.1.txt"))) == 10
    assert min(read_mot(str(mot))[7]) == 5
    boxes.write_text("1,10,10,40\n")
    assert main(["track", sequence_dir, "--weights", weights, "--boxes", str(boxes)]) == 2
    assert "line 1" in capsys.readouterr().err


def test_compare_writes_both_tracks_equal_to_two_single_runs(weights, sequence_dir, tmp_path, capsys):
    from trackers.tools.cli import main

    v1 = shared_path("models", "nanotrack", "nanotrackv1.pth")
    box = "{:g},{:g},40,40".format(*gt_box(1, 0)[:2])
    common = [sequence_dir, "--box", box, "--frames", "0:8", "--engine", "torch"]
    assert (
        main(
            [
                "track",
                *common,
                "--tracker",
                "nanotrack-v2",
                "--weights",
                weights,
                "--compare",
                "nanotrack-v1",
                "--compare-weights",
                v1,
                "--out",
                str(tmp_path / "ab.txt"),
                "-v",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert sum(ln.split()[1] == "iou" for ln in out.splitlines() if ln[:1].isdigit()) == 8, (
        "frames 0-7, the init frame too"
    )
    assert "IoU nanotrack-v2 vs nanotrack-v1: mean" in out
    for name, w in (("nanotrack-v2", weights), ("nanotrack-v1", v1)):
        single = tmp_path / f"{name}.txt"
        assert main(["track", *common, "--tracker", name, "--weights", w, "--out", str(single)]) == 0
        assert (tmp_path / f"ab.{name}.txt").read_text() == single.read_text(), name


def test_track_set_one_tracker_face_add_remove_and_limit(weights):
    """The window's TrackSet: with one track exactly its tracker's results; targets added by request
    share its params; past the limit the box is refused with the reason; removed ids are not reused."""
    from trackers.core.base import BoxError
    from trackers.run.track_set import TrackSet

    frames = synthetic_frames()[:6]
    alone = nano(weights)
    ts = TrackSet(nano(weights), "nanotrack-v2", lambda name, w: nano(weights), max_tracks=2)
    alone.init(frames[0], gt_box(1, 0))
    ts.init(frames[0], gt_box(1, 0))
    r = ts.track(frames[1])
    assert r.box == alone.track(frames[1]).box and "tracks" not in r.extra
    ts.request_add()
    ts.init(frames[1], gt_box(2, 1))
    assert ts.count == 2 and ts.selected == 2 and ts.members[1].tracker.params is ts.params
    r = ts.track(frames[2])
    assert r.extra["selected"] == 2 and [v.id for v in r.extra["tracks"]] == [1, 2]
    assert r.extra["batch"] == 2, "two targets of one tracker run as one batch"
    assert r.extra["tracks"][0].result.box == alone.track(frames[2]).box
    ts.request_add()
    with pytest.raises(BoxError, match="at most 2 targets"):
        ts.init(frames[2], gt_box(3, 2))
    ts.remove(2)
    ts.rename(1, "left")
    ts.track(frames[3])
    ts.request_add()
    ts.init(frames[3], gt_box(3, 3))
    assert [(m.id, m.name) for m in ts.members] == [(1, "left"), (3, "3")]
