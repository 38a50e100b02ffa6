"""Model zoo dialog: which published checkpoints are present, and fetching them with a progress bar.

The download itself is trackers/run/zoo.py's (sha256-checked, written to a temporary file and renamed
only on success); here it runs on a QThread so the window never freezes, and a failure (offline,
as on the CI machine) shows the zoo's message: the URL and the folder to put the file in.
"""

from __future__ import annotations

import re
import threading

from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from trackers.core import registry
from trackers.run import zoo


class DownloadJob(QThread):
    progress = Signal(int, int)  # bytes done, bytes in all (0 = unknown)
    done = Signal(bool, str)  # ok, path or message

    def __init__(self, entry: zoo.ZooEntry, dest_dir: str | None = None, parent=None):
        super().__init__(parent)
        self.entry, self.dest_dir = entry, dest_dir
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        try:
            path = zoo.download(
                self.entry,
                self.dest_dir,
                progress=lambda d, t: self.progress.emit(int(d), int(t or 0)),
                cancelled=self._cancel.is_set,
            )
        except zoo.DownloadError as e:
            self.done.emit(False, human_error(str(e)))
        except OSError as e:  # a disk error the zoo did not word itself
            self.done.emit(False, human_error(f"download of {self.entry.name} failed: {e}"))
        else:
            self.done.emit(True, path)


#: what a person reads instead of a socket error's number ([Errno -2] is getaddrinfo's EAI_NONAME)
_ERRNO_WORDS = [
    (r"\[Errno -[235]\][^:;)]*", "no internet connection (the server's name could not be looked up)"),
    (r"\[Errno 111\][^:;)]*", "the server refused the connection"),
    (r"\[Errno 101\][^:;)]*", "no network is reachable"),
    (r"\[Errno 110\][^:;)]*", "the connection timed out"),
    (r"\[Errno 28\][^:;)]*", "the disk is full"),
    (r"\[Errno 13\][^:;)]*", "permission denied"),
    (r"\[Errno -?\d+\]\s*", ""),
]


def human_error(text: str) -> str:
    """A download failure in words: socket and OS error numbers replaced by what they mean, the
    urllib wrapper ("<urlopen error ...>") dropped."""
    text = re.sub(r"<urlopen error (.*?)>", r"\1", text)
    for pattern, words in _ERRNO_WORDS:
        text = re.sub(pattern, words, text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _home_short(path: str) -> str:
    """A folder under the home folder as ~/...: shorter, and the same on every machine."""
    import os

    home = os.path.expanduser("~")
    path = os.path.abspath(path)
    return "~" + path[len(home) :] if home not in ("", "/") and (path + "/").startswith(home + "/") else path


class ModelZooDialog(QDialog):
    """The published checkpoints, one row each: tracker, file, present or not, licence."""

    downloaded = Signal(str)  # path of a checkpoint that just landed

    COLUMNS = ("tracker", "checkpoint", "status", "download", "licence")

    def __init__(self, parent=None, entries: list | None = None, dest_dir: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Model zoo")
        self.resize(940, 460)
        problem = None
        try:
            self.entries = list(entries) if entries is not None else zoo.load_manifest()
        except zoo.ManifestError as e:  # a broken or hostile manifest: its one line, no rows
            self.entries, problem = [], str(e)
        self.dest_dir = dest_dir
        self.job: DownloadJob | None = None
        self.table = QTableWidget(len(self.entries), len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels([c.capitalize() for c in self.COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        # whole names, never wrapped mid-word: short columns fit their contents, the file name
        # takes the rest (elided in the middle, whole in its tooltip)
        self.table.setWordWrap(False)
        self.table.setTextElideMode(Qt.ElideMiddle)
        header = self.table.horizontalHeader()
        for col in range(len(self.COLUMNS)):
            header.setSectionResizeMode(col, QHeaderView.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.Stretch)
        self.table.verticalHeader().hide()
        self.message = QLabel(problem or f"Downloads go to {_home_short(dest_dir or registry.user_models_dir())}")
        self.message.setWordWrap(True)
        # a long message wraps inside the dialog's width; it never widens the dialog or squeezes the table
        self.message.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)
        self.bar = QProgressBar()
        self.bar.hide()
        self.download_button = QPushButton("Download")
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button = QPushButton("Cancel download")
        self.cancel_button.clicked.connect(self.cancel)
        self.cancel_button.hide()
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.bar, 1)
        buttons.addWidget(self.download_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(close)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.message)
        lay.addLayout(buttons)
        self.refresh()
        if self.entries:
            self.table.selectRow(0)

    def status(self, entry: zoo.ZooEntry) -> str:
        if self.dest_dir is not None:
            import os

            return "present" if os.path.isfile(os.path.join(self.dest_dir, entry.file)) else "missing"
        return "present" if entry.installed() else "missing"

    def refresh(self) -> None:
        for row, e in enumerate(self.entries):
            # no direct URL (a cloud-drive folder): marked, and the tooltip says where to get it
            how = "direct" if e.url else "manual download"
            licence = e.licence.split(" (")[0]  # "CC BY-SA 3.0"; the whole text is the tooltip
            for col, text in enumerate((e.tracker, e.file, self.status(e), how, licence)):
                item = QTableWidgetItem(text)
                item.setToolTip(
                    e.licence if col == 4 else e.manual_hint(self.dest_dir) if not e.url else f"{e.file}\n{e.url}"
                )
                if not e.url:
                    item.setForeground(QColor(180, 90, 0))
                self.table.setItem(row, col, item)
        # (no resizeColumnsToContents: it shrank the stretched file column to its text after a
        # refresh, leaving a blank band; the header's resize modes keep the columns right)

    def download_selected(self) -> DownloadJob | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or (self.job is not None and self.job.isRunning()):
            return None
        entry = self.entries[rows[0].row()]
        if not entry.url:
            self.message.setText(f"{entry.name} has no direct download: {entry.manual_hint(self.dest_dir)}")
            return None
        self.job = DownloadJob(entry, self.dest_dir, self)
        self.job.progress.connect(self._progress)
        self.job.done.connect(self._done)
        self.bar.setRange(0, 0)  # busy until the size is known
        self.bar.show()
        self.cancel_button.show()
        self.download_button.setEnabled(False)
        self.message.setText(f"Downloading {entry.name} from {entry.url or entry.page} …")
        self.job.start()
        return self.job

    def _progress(self, done: int, total: int) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(done)

    def _done(self, ok: bool, text: str) -> None:
        self.bar.hide()
        self.cancel_button.hide()
        self.download_button.setEnabled(True)
        if ok and self.job is not None and self.job.entry.sha256 is None:
            self.message.setText(
                f"Saved {text} — not verified: no published sha256 (the download's is "
                f"recorded in {zoo.recorded_sha256_path(text)})"
            )
        else:
            self.message.setText(f"Saved {text}" if ok else text)
        self.refresh()
        if ok:
            self.downloaded.emit(text)

    def cancel(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def closeEvent(self, ev) -> None:
        if self.job is not None and self.job.isRunning():
            self.job.cancel()
            self.job.wait(5000)
        super().closeEvent(ev)
