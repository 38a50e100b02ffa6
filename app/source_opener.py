"""Opening what is tracked: a video, an image-sequence folder or a camera (dialogs, recent files,
dropped files), and the ground truth that comes with a sequence folder or is attached by hand."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMenu, QWidget

from trackers.run.groundtruth import GroundTruth, GroundTruthError, find_groundtruth, read_groundtruth

from .preferences import Preferences
from .recent import RecentFiles
from .start_page import StartPage
from .video_view import VideoView
from .worker_protocol import SourceInfo


class SourceOpener(QObject):
    #: the ground truth was attached or detached by hand (not by opening a source)
    groundtruthChanged = Signal()

    def __init__(
        self,
        window: QWidget,
        worker,
        video: VideoView,
        start_page: StartPage,
        prefs: Preferences,
        recent: RecentFiles,
        show_message: Callable,
        return_focus: Callable[[], None],
        confirm_discard: Callable[[str], bool] = lambda doing: True,
    ):
        """`confirm_discard(doing)`: the question before opening drops the unexported run (True: go on)."""
        super().__init__(window)
        self.confirm_discard = confirm_discard
        self.window, self.worker, self.video, self.start_page = window, worker, video, start_page
        self.prefs, self.recent, self.show_message, self.return_focus = prefs, recent, show_message, return_focus
        self.source_info: SourceInfo | None = None
        self.groundtruth: GroundTruth | None = None
        start_page.openVideo.connect(self.choose_video)
        start_page.openFolder.connect(self.choose_folder)
        start_page.openCamera.connect(self.choose_camera)
        start_page.openRecent.connect(self.open_source)
        start_page.set_recent(recent.paths())

    def open_source(self, spec) -> None:
        """A video file, an image folder, a camera index (int), or a FrameSource object (asked
        first when the run on screen has not been exported)."""
        if isinstance(spec, str) and not spec.startswith("camera:"):
            if not os.path.exists(spec):
                self.show_message("error", f"Cannot open {spec}: no such file or folder")
                return
        if not self.confirm_discard(f"opening {sequence_name(spec)}"):
            return
        if isinstance(spec, str) and not spec.startswith("camera:"):
            self.prefs.remember_dir_of(spec)
        self.video.set_user_box(None)
        self.video.set_result(None)
        self.worker.open_source(spec)

    def _ask_for_file(self, title: str, filters: str) -> str:
        """The file dialog, starting in the last folder used; the keyboard back to the video after."""
        path, _ = QFileDialog.getOpenFileName(self.window, title, self.prefs.last_dir(), filters)
        self.return_focus()
        return path

    def choose_video(self) -> None:
        path = self._ask_for_file("Open video", "Videos (*.avi *.mp4 *.mov *.mkv *.webm *.mpg);;All files (*)")
        if path:
            self.open_source(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self.window, "Open image-sequence folder", self.prefs.last_dir())
        self.return_focus()
        if path:
            self.open_source(path)

    def choose_camera(self) -> None:
        index, ok = QInputDialog.getInt(self.window, "Open camera", "Camera index:", 0, 0, 16)
        self.return_focus()
        if ok:
            self.open_source(index)

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        paths = self.recent.paths()
        for path in paths:
            a = menu.addAction(path)
            a.triggered.connect(lambda *_, p=path: self.open_source(p))
        if not paths:
            menu.addAction("(none yet)").setEnabled(False)

    def drag_enter(self, ev) -> None:
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def drop(self, ev) -> None:
        for url in ev.mimeData().urls():
            if url.isLocalFile():
                self.open_source(url.toLocalFile())
                ev.acceptProposedAction()
                return

    def source_opened(self, info: SourceInfo) -> str:
        """The worker opened a source: remember it, pick up its ground truth; returns the line
        that tells the user so."""
        self.source_info = info
        self.groundtruth = None
        self.video.set_groundtruth(None)
        if isinstance(info.spec, str) and os.path.exists(info.spec):
            self.recent.add(info.spec)
            self.start_page.set_recent(self.recent.paths())
            found = find_groundtruth(info.spec)  # a sequence folder brings its own
            if found is not None:
                try:
                    self.groundtruth = read_groundtruth(found)
                except GroundTruthError as e:
                    self.show_message("warning", f"{e} — open the sequence without ground truth")
        gt = f", ground truth {os.path.basename(self.groundtruth.path)}" if self.groundtruth is not None else ""
        return (
            f"Opened {self.source_name()} ({info.width}x{info.height}"
            + (f", {info.frame_count} frames" if info.frame_count else "")
            + gt
            + "). Drag a box around the target, then press Start."
        )

    def source_name(self) -> str:
        """The sequence's name: the video file's, or the folder's (its parent's for an OTB-style
        `Basketball/img`)."""
        if self.source_info is None:
            return ""
        spec = self.source_info.spec
        return sequence_name(spec if isinstance(spec, str) else str(self.source_info.name))

    def choose_groundtruth(self) -> None:
        path = self._ask_for_file("Attach ground truth", "Ground truth (*.txt *.label);;All files (*)")
        if path:
            self.attach_groundtruth(path)

    def attach_groundtruth(self, path: str | None) -> bool:
        """Read a ground-truth file (OTB / GOT-10k / LaSOT / VOT) for the open sequence; None
        detaches it. A file that cannot be read is one message; what was attached stays."""
        if path is None:
            self.groundtruth = None
        else:
            try:
                gt = read_groundtruth(path)
            except GroundTruthError as e:
                self.show_message("error", str(e))
                return False
            self.groundtruth = gt
            count = self.source_info.frame_count if self.source_info else None
            note = ""
            if count and len(gt) != count:
                note = f" — it has {len(gt)} rows for {count} frames; frames without a row have no truth"
            self.show_message(
                "warning" if note else "info", f"Ground truth {gt.path} ({gt.layout}, {gt.present} boxes){note}"
            )
        self.groundtruthChanged.emit()
        return True


#: frame folders named after what they hold, inside a folder named after the sequence
#: (OTB `Basketball/img`, VOT `ball/color`)
FRAME_FOLDER_NAMES = {"img", "imgs", "image", "images", "color", "frames", "rgb", "jpg", "jpegimages"}


def sequence_name(spec) -> str:
    """What a source is called in the title, the export's file name and the questions."""
    if isinstance(spec, int):
        return f"camera {spec}"
    if not isinstance(spec, str):  # a FrameSource handed in
        return str(getattr(spec, "name", "") or "the source")
    text = str(spec).rstrip("/\\")
    name = os.path.basename(text) or text
    if name.lower() in FRAME_FOLDER_NAMES and os.path.basename(os.path.dirname(text)):
        return os.path.basename(os.path.dirname(text))
    return name
