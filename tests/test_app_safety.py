"""The app never throws the user's work away: it asks before a close discards an unexported run
or cancels a running export (the question answered with real mouse clicks), a failed export
leaves the file at its path untouched, a truncated video is reported at its end, and a SiamMask
run keeps its masks packed (flat memory per frame)."""

import os

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tests.app_support import BAG, TRACKER, ground_truth, make_window, require_nanotrack  # noqa: E402
from tests.conftest import shared_path  # noqa: E402

FRAMES = 15


@pytest.fixture
def short_video(tmp_path):
    """The first FRAMES frames of bag.avi as a video of their own (a real file the test may move)."""
    cap = cv2.VideoCapture(shared_path(*BAG))
    frames = [cap.read()[1] for _ in range(FRAMES)]
    cap.release()
    path = tmp_path / "short.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (frames[0].shape[1], frames[0].shape[0]))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


class CloseAnswerer:
    """Answers the window's close question by clicking the button whose text contains `answer`,
    as soon as the box is on screen (polled from the event loop that the box's exec() runs)."""

    def __init__(self, window, answer: str):
        self.window, self.answer, self.texts = window, answer, []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    def _poll(self):
        box = self.window.close_box
        if box is None or not box.isVisible():
            return
        self.texts.append(box.text())
        button = next(b for b in box.buttons() if self.answer in b.text())
        QTest.mouseClick(button, Qt.LeftButton)

    def stop(self):
        self.timer.stop()


def _tracked_run(qtbot, window, video, weights):
    window.select_tracker(TRACKER, weights)
    window.open_source(str(video))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=30000)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.video.set_user_box(tuple(ground_truth()[0]))
    window.start_button.click()
    qtbot.waitUntil(lambda: window.current_index == FRAMES - 1 and not window.playing, timeout=60000)
    assert len(window.store.record.frames) == FRAMES


def test_close_asks_before_discarding_an_unexported_run(qtbot, tmp_path, short_video):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path, ask_before_closing=True)
    _tracked_run(qtbot, window, short_video, weights)

    answerer = CloseAnswerer(window, "Cancel")
    try:
        assert not window.close()  # the user said Cancel: nothing is lost
    finally:
        answerer.stop()
    assert len(answerer.texts) == 1 and "has not been exported" in answerer.texts[0]
    assert f"{FRAMES} frames" in answerer.texts[0]
    assert window.isVisible() and len(window.store.record.frames) == FRAMES
    assert window.worker.isRunning()

    # exported: closing asks nothing (a question would be answered "Cancel" and the close refused)
    assert window.export_results(str(tmp_path / "run.json"))
    answerer = CloseAnswerer(window, "Cancel")
    try:
        assert window.close()
    finally:
        answerer.stop()
    assert answerer.texts == [] and not window.isVisible()


def test_close_during_an_export_asks_and_never_leaves_a_partial_file(qtbot, tmp_path, short_video):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path, ask_before_closing=True)
    _tracked_run(qtbot, window, short_video, weights)
    keep = tmp_path / "keep.avi"
    keep.write_bytes(b"the user's old video")
    job = window.export_video(str(keep))
    assert job is not None
    answerer = CloseAnswerer(window, "Close without exporting")
    try:
        assert window.close()
    finally:
        answerer.stop()
    assert len(answerer.texts) == 1
    assert "export to keep.avi is running" in answerer.texts[0] and "has not been exported" in answerer.texts[0]
    assert not job.isRunning() and not window.isVisible()
    # the close cancelled the export or it had just finished: the old file or the whole new video
    if keep.read_bytes() != b"the user's old video":
        cap = cv2.VideoCapture(str(keep))
        n = 0
        while cap.grab():
            n += 1
        cap.release()
        assert n == FRAMES
    assert sorted(os.listdir(tmp_path)) == sorted(["keep.avi", "short.avi", "siamscope.ini"])


def test_dont_ask_again_is_remembered(qtbot, tmp_path, short_video):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path, ask_before_closing=True)
    _tracked_run(qtbot, window, short_video, weights)

    def tick_and_close():
        box = window.close_box
        if box is not None and box.isVisible():
            QTest.mouseClick(box.checkBox(), Qt.LeftButton)
            QTest.mouseClick(next(b for b in box.buttons() if "Close without" in b.text()), Qt.LeftButton)

    timer = QTimer()
    timer.timeout.connect(tick_and_close)
    timer.start(20)
    try:
        assert window.close()
    finally:
        timer.stop()
    window.settings.sync()
    assert str(window.settings.value("ask_before_closing")).lower() == "false"


def test_failed_export_after_the_source_moved_keeps_the_destination(qtbot, tmp_path, short_video):
    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    _tracked_run(qtbot, window, short_video, weights)
    os.rename(short_video, tmp_path / "moved.avi")  # the run's source moved away
    keep = tmp_path / "keep.mp4"
    keep.write_bytes(b"precious")
    job = window.export_video(str(keep))
    assert job is not None
    # the job fails at once (its source is gone), possibly before a waitSignal could connect:
    # wait on its recorded outcome instead of the signal
    qtbot.waitUntil(lambda: job.outcome is not None, timeout=30000)
    ok, message = job.outcome
    assert not ok and "export failed" in message.lower()
    assert keep.read_bytes() == b"precious"
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".keep")]


def test_a_truncated_video_is_reported_at_its_end(qtbot, tmp_path):
    cut = tmp_path / "t.avi"
    cut.write_bytes(open(shared_path(*BAG), "rb").read()[:306144])
    window = make_window(qtbot, tmp_path)
    window.open_source(str(cut))
    qtbot.waitUntil(lambda: window.drawn_packet is not None, timeout=30000)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.set_playing(True)
    qtbot.waitUntil(lambda: "End of the video" in window.messages.text, timeout=60000)
    assert window.messages.level == "warning"
    assert "ended after 51 of the 196 frames" in window.messages.text


def test_siammask_masks_are_kept_packed(tmp_path):
    """What the app keeps per SiamMask frame: a few kB, not a frame of floats; unpacked it is the
    tracker's own cut (mask > 0.15) pixel for pixel."""
    from trackers.core import registry
    from trackers.run import fixtures
    from trackers.run.run_store import RunStore

    fixture = shared_path("fixtures", fixtures.SEEDED_FIXTURE["siammask-r50"])
    if "siammask-r50" not in {s.name for s in registry.all_trackers()}:
        pytest.skip("siammask-r50 is not available")
    tracker = registry.build("siammask-r50", fixtures.seeded_checkpoint(fixture, str(tmp_path)))
    store = RunStore()
    store.start("siammask-r50", {}, None, shared_path(*BAG), "bag.avi", 25.0, False)
    cap = cv2.VideoCapture(shared_path(*BAG))
    frame = cap.read()[1]
    box = tuple(ground_truth()[0])
    tracker.init(frame, box)
    from trackers.core.base import TrackResult

    store.add(0, frame, TrackResult(box=box, score=1.0), init=True)
    for i in range(1, 4):
        frame = cap.read()[1]
        result = tracker.track(frame)
        store.add(i, frame, result, init=False)
        kept = store.results[i]
        assert kept.mask is None and kept.channels == []
        assert not any(isinstance(v, np.ndarray) for v in kept.extra.values())
        assert store.masks[i].nbytes < result.mask.nbytes / 20
        np.testing.assert_array_equal(store.result(i).mask, result.mask > result.mask_threshold)
    cap.release()
