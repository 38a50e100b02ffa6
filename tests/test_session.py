"""trackers/run/session.py: the one run loop the GUI worker, `track`, `eval` and `bench` drive.

Real video (bag.avi), real image folders written here, a real tracker (OpenCV's CSRT: no
checkpoint, fast on 2 cores). The CLI, eval, bench and GUI tests prove that each of them gives the
same numbers through the session as before (tests/test_cli_track.py, test_evaluate.py,
test_bench.py, test_app_window.py); these tests pin down the session's own rules.
"""

import os

import cv2
import numpy as np
import pytest

from tests.conftest import box_iou, shared_path
from trackers.core import registry
from trackers.core.base import BoxError, TrackingState
from trackers.run.results import FrameLog
from trackers.run.session import SessionError, Step, Track, TrackingFailed, TrackingSession
from trackers.run.sources import FrameListSource, SourceError
from trackers.tools import evaluate as E

BAG_BOX = (292.23, 128.36, 145.96, 132.47)


def bag_video():
    return shared_path("data", "videos", "bag.avi")


def test_open_init_advance_gives_packets_with_timings():
    with TrackingSession.open(bag_video(), registry.build("csrt")) as s:
        assert s.index == 0 and s.frame is not None and not s.tracking
        init = s.init(BAG_BOX)
        assert init.kind == "init" and init.index == 0 and init.result.box == BAG_BOX and init.track_ms > 0
        steps = [s.advance() for _ in range(5)]
    assert [p.index for p in steps] == [1, 2, 3, 4, 5]
    assert all(p.kind == "track" and p.track_ms > 0 and p.frame.shape == (360, 480, 3) for p in steps)
    assert s.tracked_frames == 5 and s.tracked_seconds == pytest.approx(sum(p.track_ms for p in steps) / 1e3)
    assert list(s.boxes) == [0, 1, 2, 3, 4, 5] and s.boxes[5] == tuple(steps[-1].result.box)
    gt = np.loadtxt(shared_path("bench", "bag", "groundtruth.txt"), delimiter=",")  # bag.avi's boxes
    assert box_iou(steps[-1].result.box, gt[5]) > 0.4, (steps[-1].result.box, gt[5])


def test_a_bad_box_or_no_tracker_is_refused_and_nothing_starts():
    with TrackingSession.open(bag_video()) as s:
        with pytest.raises(SessionError, match="No tracker"):
            s.init(BAG_BOX)
        s.set_tracker(registry.build("csrt"))
        with pytest.raises(BoxError, match="outside the 480x360 frame"):
            s.init((600, 10, 50, 50))
        assert not s.tracking and not s.boxes
        # without a run, advancing only reads frames
        p = s.advance()
        assert p.kind == "frame" and p.result is None and p.index == 1


def test_seek_back_resyncs_from_the_runs_box_and_the_rerun_replaces_later_frames():
    with TrackingSession.open(bag_video(), registry.build("csrt")) as s:
        s.init(BAG_BOX)
        for _ in range(6):
            s.advance()
        box3 = s.boxes[3]
        assert s.seek(3).index == 3 and s.tracker_at == 6
        restart = s.resync()  # the tracker restarts on frame 3 from the run's box
        assert restart.kind == "init" and restart.result.box == box3 and s.tracker_at == 3
        assert list(s.boxes) == [0, 1, 2, 3] and list(s.reinitialisations) == [0, 3]
        assert s.advance().index == 4 and list(s.boxes) == [0, 1, 2, 3, 4]
        assert s.resync() is None  # in step: nothing to do
        # forward past the last tracked frame: the run has no box there
        s.seek(50)
        with pytest.raises(SessionError, match="no box for frame 50"):
            s.resync()
        # a new box there re-initialises (recorded), and the old frames after it are gone
        s.init((280.0, 120.0, 150.0, 140.0))
        assert list(s.reinitialisations) == [0, 3, 50] and max(s.boxes) == 50
        s.stop()
        assert not s.tracking and not s.boxes and not s.reinitialisations


def test_tracker_failure_keeps_the_frame_and_the_run():
    with TrackingSession.open(FrameListSource(_bag_frames(3)), registry.build("csrt")) as s:
        s.init(BAG_BOX)
        s.advance()
        empty = np.zeros((0, 0, 3), np.uint8)  # OpenCV's tracker cannot take an empty image
        with pytest.raises(TrackingFailed) as failed:
            s.process(empty, 2)
        assert failed.value.step.index == 2 and failed.value.step.result is None
        assert isinstance(failed.value.cause, cv2.error)
        assert s.index == 2 and s.tracker_at == 2 and s.tracking and list(s.boxes) == [0, 1]


def test_source_failure_raises_with_the_run_so_far_kept(tmp_path):
    frames = _bag_frames(4)
    for i, f in enumerate(frames):
        cv2.imwrite(str(tmp_path / f"{i + 1}.jpg"), f)
    (tmp_path / "3.jpg").write_bytes(b"not a jpeg")
    with TrackingSession.open(str(tmp_path), registry.build("csrt")) as s:
        s.init(BAG_BOX)
        s.advance()
        with pytest.raises(SourceError, match="3.jpg"):
            s.advance()
        assert s.index == 1 and list(s.boxes) == [0, 1]


def test_eval_reads_a_folder_in_the_apps_natural_order(tmp_path):
    """frame 2 before frame 10, as ImageFolderSource plays it (a plain sorted() put 10 first)."""
    frames = _bag_frames(11)
    seq_dir = tmp_path / "seq"
    os.makedirs(seq_dir / "img")
    for i, f in enumerate(frames):
        cv2.imwrite(str(seq_dir / "img" / f"{i + 1}.png"), f)
    np.savetxt(seq_dir / "groundtruth.txt", [BAG_BOX] * 11, delimiter=",")
    seq = E.load_sequence(str(seq_dir))
    assert [os.path.basename(p) for p in seq.frames][:3] == ["1.png", "2.png", "3.png"]
    with seq.source() as source:
        assert np.array_equal(source.read(), frames[0]) and source.frame_count == 11

    class Recorder:
        def init(self, frame, box):
            self.seen = [frame]
            self.box = box

        def track(self, frame):
            from trackers.core.base import TrackResult

            self.seen.append(frame)
            return TrackResult(box=self.box, score=1.0)

    rec = Recorder()
    run = E.run_sequence(rec, seq)
    assert run.tracked == 10 and all(np.array_equal(a, b) for a, b in zip(rec.seen, frames))


def test_frame_log_drops_later_frames_on_put():
    log = FrameLog()
    for i in range(5):
        log.put(i, i * 10)
    log.put(2, "again")
    assert list(log.items()) == [(0, 0), (1, 10), (2, "again")]
    log.drop_after(0)
    assert list(log) == [0]


def test_run_yields_init_then_each_frame_in_the_range_with_what_a_caller_keeps():
    frames = _bag_frames(12)
    with TrackingSession.open(FrameListSource(frames), registry.build("csrt")) as s:
        steps = list(s.run(BAG_BOX, start=3, stop=9))
    assert [(p.index, p.kind) for p in steps] == [(3, "init")] + [(i, "track") for i in range(4, 9)]
    assert not s.source_ended and list(s.boxes) == list(range(3, 9))
    init, last = steps[0], steps[-1]
    assert init.box == BAG_BOX and init.score == 1.0 and init.frame is frames[3]
    assert last.box == tuple(last.result.box) == s.boxes[8] and last.score == float(last.result.score)
    assert last.state is TrackingState.TRACKING and last.seconds == pytest.approx(last.track_ms / 1e3)
    assert isinstance(last.timings, dict) and last.channels == []
    assert s.tracked_frames == 5 and s.tracked_seconds == pytest.approx(sum(p.seconds for p in steps[1:]))
    # to the end of the source: it says so
    with TrackingSession.open(FrameListSource(frames), registry.build("csrt")) as s:
        assert [p.index for p in s.run(BAG_BOX, start=8)] == [8, 9, 10, 11] and s.source_ended
        with pytest.raises(SessionError, match="past the end"):
            next(s.run(BAG_BOX, start=40))


def test_run_with_maps_on_carries_the_score_map_and_channel_responses():
    weights = shared_path("models", "nanotrack", "nanotrackv2.pth")
    tracker = registry.build("nanotrack-v2", weights, engine="torch")
    with TrackingSession.open(FrameListSource(_bag_frames(3)), tracker) as s:
        on = list(s.run(BAG_BOX, maps=True))[-1]
        assert s.track.maps and on.score_map is not None and on.channels and on.channels[0].maps.ndim == 3
        off = list(s.run(BAG_BOX, start=0, maps=False))[-1]
    assert not tracker.collect_channels and off.channels == [] and off.score_map is not None
    assert off.box == on.box  # the maps change what is copied out, never the box


def test_tracks_driven_on_one_frame_read_equal_their_single_runs():
    """Two tracks (two targets, or two trackers) fed the same frames, each frame read once, give the
    boxes each gives alone: all per-tracker state is in its Track."""
    frames = _bag_frames(8)
    other_box = (250.0, 100.0, 120.0, 110.0)
    alone = {}
    for key, box in (("a", BAG_BOX), ("b", other_box)):
        with TrackingSession.open(FrameListSource(frames), registry.build("csrt")) as s:
            alone[key] = [p.box for p in s.run(box)]
    with TrackingSession.open(FrameListSource(frames), registry.build("csrt")) as s:
        other = Track(registry.build("csrt"), target_id=1)
        together = {"a": [s.init(BAG_BOX).box], "b": [other.init(s.frame, s.index, other_box).box]}
        while (got := s.read()) is not None:
            a, b = s.process(*got), other.step(*got)
            assert a.index == b.index and a.target_id == 0 and b.target_id == 1
            together["a"].append(a.box)
            together["b"].append(b.box)
    assert together == alone and alone["a"] != alone["b"]


def test_the_apps_frame_packet_is_a_step():
    from app.worker_protocol import FramePacket

    with TrackingSession.open(FrameListSource(_bag_frames(2)), registry.build("csrt")) as s:
        s.init(BAG_BOX)
        step = s.advance()
    packet = FramePacket.of(step, dropped=3)
    assert isinstance(packet, Step) and packet.dropped == 3 and packet.jpeg is None
    assert (packet.index, packet.frame, packet.result, packet.kind, packet.track_ms) == (
        step.index,
        step.frame,
        step.result,
        step.kind,
        step.track_ms,
    )
    assert packet.box == step.box and packet.rgb.shape == step.frame.shape


def _bag_frames(n):
    cap = cv2.VideoCapture(bag_video())
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    return frames
