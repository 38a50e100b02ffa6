"""Parts of the app that need no tracker: opening by drag-and-drop and command line, the camera
grabber dropping stale frames, export cancel, the channel ranking."""

import os
import threading
import time

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl  # noqa: E402
from PySide6.QtGui import QDragEnterEvent, QDropEvent  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from tests.app_support import BAG, make_window  # noqa: E402
from tests.conftest import shared_path  # noqa: E402
from trackers.core.base import ChannelMaps, TrackResult  # noqa: E402
from trackers.run.sources import FrameSource  # noqa: E402


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # QDragEnterEvent's QPoint constructor
def test_drop_a_video_file_onto_the_window(qtbot, tmp_path):
    video = shared_path(*BAG)
    window = make_window(qtbot, tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(video)])
    # what Qt delivers during a drag from a file manager: enter (accepted for local files), drop
    enter = QDragEnterEvent(QPoint(200, 200), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    assert QApplication.sendEvent(window, enter) and enter.isAccepted()
    drop = QDropEvent(QPointF(200, 200), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    QApplication.sendEvent(window, drop)
    qtbot.waitUntil(lambda: window.source_info is not None and window.drawn_packet is not None, timeout=20000)
    assert window.source_info.frame_count == 196
    assert (window.source_info.width, window.source_info.height) == (480, 360)
    assert window.drawn_packet.rgb.shape == (360, 480, 3)
    assert window.slider.isEnabled() and window.slider.maximum() == 195
    # seeking shows the chosen frame
    window.seek(120)
    qtbot.waitUntil(lambda: window.current_index == 120, timeout=20000)


def test_command_line_arguments():
    from app.main_window import parse_app_args

    assert parse_app_args([]) is None
    assert parse_app_args(["../shared/data/videos/bag.avi"]) == "../shared/data/videos/bag.avi"
    assert parse_app_args(["--camera", "2"]) == 2
    with pytest.raises(SystemExit, match="camera index"):
        parse_app_args(["--camera", "front"])


def test_preferences_survive_a_restart_and_bad_values(tmp_path):
    """What one session remembers (an INI file on disk) a new session reads back; a hand-edited
    value that is not a number falls back to the default rather than failing."""
    from PySide6.QtCore import QSettings

    from app.preferences import Preferences
    from trackers.core import registry

    spec = next(s for s in registry.all_trackers() if s.needs_weights)
    ini = str(tmp_path / "siamscope.ini")
    video = shared_path(*BAG)
    first = Preferences(QSettings(ini, QSettings.IniFormat))
    assert first.ask_before_closing() and first.threads() == 0 and first.engine() == "auto"
    first.remember_dir_of(video)
    first.set_threads(3)
    first.set_tracker("nanotrack-v2")
    first.set_engine("onnxruntime")
    first.set_weights(spec.name, video)  # any existing file is a remembered checkpoint
    first.stop_asking_before_closing()
    first.settings.sync()
    again = Preferences(QSettings(ini, QSettings.IniFormat))  # booleans come back as strings here
    assert again.last_dir() == os.path.dirname(os.path.abspath(video))
    assert (again.threads(), again.tracker(), again.engine()) == (3, "nanotrack-v2", "onnxruntime")
    assert not again.ask_before_closing()
    assert again.known_weights(spec) == video
    again.set_weights(spec.name, str(tmp_path / "gone.pth"))  # a file since removed: not offered
    assert again.known_weights(spec) == registry.find_weights(spec)
    again.settings.setValue("compute/threads", "many")
    assert again.threads() == 0


class _FastCamera(FrameSource):
    """A live source delivering numbered frames every 2 ms (pixel value = frame number % 256)."""

    is_live = True

    def __init__(self):
        self.name = "fake camera"
        self.n = 0

    def read(self):
        time.sleep(0.002)
        self.n += 1
        return np.full((8, 8, 3), self.n % 256, np.uint8)


def test_camera_grabber_drops_stale_frames_and_hands_out_the_latest():
    from app.worker import LatestFrameGrabber

    grabber = LatestFrameGrabber(_FastCamera())
    try:
        taken = []
        for _ in range(10):
            frame, seq = grabber.latest(timeout=1.0)
            assert frame is not None
            taken.append(seq)
            time.sleep(0.02)  # a tracker ten times slower than the camera
        # every hand-out is newer than the last; the frames in between were dropped and counted
        assert all(b > a for a, b in zip(taken, taken[1:]))
        assert max(np.diff(taken)) > 2
        time.sleep(0.01)
        frame, seq = grabber.latest(timeout=1.0)
        with grabber._lock:
            assert grabber.dropped >= seq - len(taken) - 1 - 1
        assert grabber.dropped > 20
    finally:
        grabber.stop()


def test_video_export_cancel_leaves_no_file(qtbot, tmp_path):
    from app.export import VideoExportJob
    from trackers.run.run_store import RunStore

    video = shared_path(*BAG)
    store = RunStore()
    store.start("test", {}, None, video, video, 25.0, False)
    for i in range(40):
        store.add(i, np.zeros((360, 480, 3), np.uint8), TrackResult(box=(10 + i, 10, 50, 40), score=0.9), init=i == 0)
    out = tmp_path / "cancelled.avi"
    job = VideoExportJob(store, str(out))
    results = []
    job.done.connect(lambda ok, msg: results.append((ok, msg)))
    job.cancel()
    job.run()  # on this thread: deterministic
    assert results and results[0][0] is False and "cancelled" in results[0][1]
    assert not out.exists()
    # and a full export writes every frame of the run
    full = VideoExportJob(store, str(tmp_path / "full.avi"))
    done = []
    full.done.connect(lambda ok, msg: done.append(ok))
    full.run()
    assert done == [True] and full.written == 40


def test_channel_names_are_short_enough_to_keep_the_index():
    from app.inspect_views import channel_name

    assert channel_name(("layer3", "cls", 171)) == "L3/cls #171"
    assert channel_name(("stride16", "xcorr", 32)) == "S16/xcorr #32"
    assert channel_name(("conv5", "xcorr", 7)) == "C5/xcorr #7"
    assert channel_name(("pw", "reg", 0)) == "pw/reg #0"  # not word + number: unchanged
    assert channel_name(("features", "xcorr", 3)) == "features/xcorr #3"


def test_channel_ranking_pins_first_then_strongest():
    from app.inspect_views import top_channels

    a = np.zeros((4, 3, 3), np.float32)
    b = np.zeros((2, 3, 3), np.float32)
    for c, peak in enumerate([0.1, 0.9, 0.3, 0.5]):
        a[c, 1, 1] = peak
    b[0, 0, 0], b[1, 2, 2] = 0.7, 0.2
    chans = [ChannelMaps("l3", "cls", a), ChannelMaps("l3", "loc", b)]
    keys = [k for k, _ in top_channels(chans, 3, [])]
    assert keys == [("l3", "cls", 1), ("l3", "loc", 0), ("l3", "cls", 3)]
    keys = [k for k, _ in top_channels(chans, 3, [("l3", "cls", 0)])]
    assert keys == [("l3", "cls", 0), ("l3", "cls", 1), ("l3", "loc", 0)]
    assert len(top_channels(chans, 10, [])) == 6


class _BagCamera(FrameSource):
    """bag.avi played as a ~2000 fps camera, looping: faster than any tracker here (NanoTrack v2
    tracks at ~650 fps on this machine's CPU), so frames go stale."""

    is_live = True

    def __init__(self, path):
        import cv2

        self.name = "bag camera"
        cap = cv2.VideoCapture(path)
        self.frames = []
        while len(self.frames) < 60:
            ok, f = cap.read()
            if not ok:
                break
            self.frames.append(f)
        cap.release()
        self.n = 0

    def read(self):
        time.sleep(0.0005)
        self.n += 1
        return self.frames[(self.n - 1) % len(self.frames)]


def test_camera_is_tracked_in_real_time_dropping_stale_frames(qtbot, tmp_path):
    from tests.app_support import TRACKER, ground_truth, require_nanotrack

    weights = require_nanotrack()
    window = make_window(qtbot, tmp_path)
    window.select_tracker(TRACKER, weights)
    window.open_source(_BagCamera(shared_path(*BAG)))
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=30000)
    assert window.source_info.is_live and not window.slider.isEnabled()
    window.video.set_user_box(tuple(ground_truth()[0]))
    window.start_tracking()
    qtbot.waitUntil(
        lambda: (
            window.tracking
            and window.drawn_packet is not None
            and window.drawn_packet.kind == "track"
            and window.drawn_packet.dropped > 5
        ),
        timeout=30000,
    )
    assert "dropped" in window.info.text()
    window.stop_tracking()
    qtbot.waitUntil(lambda: not window.tracking, timeout=10000)
    frames = [f.frame for f in window.store.record.frames]
    # the tracker took the newest frame each time: frame numbers jump over the dropped ones
    assert len(frames) >= 3 and max(np.diff(frames)) > 1
    assert set(frames) <= set(window.store.live_frames)  # kept for a video export


class _CaptureThatDies:
    """What cv2.VideoCapture does when its camera is unplugged: read() starts returning (False, None).
    The test pulls the plug (`unplug`) once the run really has tracked frames, never after a fixed
    number of reads: on a loaded machine the tracker can take longer to load than any such count."""

    def __init__(self, frames):
        self.frames, self.n = frames, 0
        self.unplugged = threading.Event()

    def unplug(self) -> None:
        self.unplugged.set()

    def read(self):
        time.sleep(0.01)
        if self.unplugged.is_set():
            return False, None
        self.n += 1
        return True, self.frames[(self.n - 1) % len(self.frames)]

    def release(self):
        pass


def test_camera_unplugged_while_tracking_pauses_with_a_message_and_keeps_the_run(qtbot, tmp_path):
    from tests.app_support import TRACKER, ground_truth, require_nanotrack
    from trackers.run.sources import CameraSource

    weights = require_nanotrack()
    # the real CameraSource around a capture whose device goes away while the run is tracking
    camera = CameraSource.__new__(CameraSource)
    camera.name, camera.fps, camera.position = "camera 0", 30.0, 0
    camera.cap = _CaptureThatDies(_BagCamera(shared_path(*BAG)).frames)
    window = make_window(qtbot, tmp_path)
    window.select_tracker(TRACKER, weights)
    window.open_source(camera)
    qtbot.waitUntil(lambda: window.drawn_packet is not None and window.tracker_info is not None, timeout=30000)
    window.video.set_user_box(tuple(ground_truth()[0]))
    window.start_tracking()
    # the run record appears with the first tracked packet, a moment after `tracking` turns on
    qtbot.waitUntil(
        lambda: window.tracking and window.store.record is not None and len(window.store.record.frames) >= 2,
        timeout=30000,
    )
    camera.cap.unplug()
    qtbot.waitUntil(lambda: "stopped delivering frames" in window.messages.text, timeout=30000)
    assert window.messages.level == "error" and "results so far are kept" in window.messages.text
    qtbot.waitUntil(lambda: not window.playing, timeout=5000)
    # the worker thread is alive and the tracked frames are still there to export
    assert window.worker.isRunning() and window.tracking
    assert len(window.store.record.frames) >= 2
    # and it still takes commands: another source opens
    window.open_source(shared_path(*BAG))
    qtbot.waitUntil(
        lambda: window.source_info is not None and window.source_info.name.endswith("bag.avi"), timeout=20000
    )


def test_unreadable_image_in_a_folder_pauses_with_its_name(qtbot, tmp_path):
    import cv2

    folder = tmp_path / "seq" / "img"
    folder.mkdir(parents=True)
    cap = cv2.VideoCapture(shared_path(*BAG))
    for i in range(1, 6):
        ok, frame = cap.read()
        assert ok
        cv2.imwrite(str(folder / f"{i:04d}.jpg"), frame)
    cap.release()
    (folder / "0006.jpg").write_bytes(b"not a jpeg")  # a damaged file in the middle
    window = make_window(qtbot, tmp_path)
    window.open_source(str(tmp_path / "seq"))
    qtbot.waitUntil(lambda: window.drawn_packet is not None, timeout=20000)
    window.set_playing(True)
    qtbot.waitUntil(lambda: "0006.jpg" in window.messages.text, timeout=20000)
    assert window.messages.level == "error"
    qtbot.waitUntil(lambda: not window.playing and window.current_index == 4, timeout=5000)
    assert window.worker.isRunning()


def test_video_view_draws_mask_polygon_distractors_and_lost_state(qtbot):
    from app.video_view import VideoView
    from trackers.core.base import TrackingState

    view = VideoView()
    qtbot.addWidget(view)
    view.resize(480, 360)
    view.show()
    view.set_frame(np.zeros((120, 160, 3), np.uint8))
    mask = np.zeros((120, 160), np.float32)
    mask[40:60, 50:90] = 0.9
    poly = np.array([[50, 40], [90, 42], [88, 60], [48, 58]], np.float32)
    result = TrackResult(
        box=(50, 40, 40, 20),
        score=0.7,
        state=TrackingState.LOST,
        mask=mask,
        polygon=poly,
        distractors=[(5, 5, 10, 10), (120, 80, 20, 15)],
    )
    view.set_result(result)
    assert view.result_box.isVisible() and view.result_box.rect().getRect() == (50, 40, 40, 20)
    assert view.result_box.pen().color().red() == 255  # lost: drawn red
    rgba = view.mask.image
    assert view.mask.isVisible() and rgba.shape == (120, 160, 4)
    assert (rgba[..., 3] > 0).sum() == 20 * 40  # exactly the mask's pixels are tinted
    xs, ys = view.polygon.getData()
    assert len(xs) == 5 and (xs[0], ys[0]) == (xs[-1], ys[-1])  # closed outline
    dx, _ = view.distractors.getData()
    assert len(dx) == 2 * 4 * 2  # two boxes, four edges, two points each
    view.set_result(None)
    assert not view.result_box.isVisible() and not view.mask.isVisible()
