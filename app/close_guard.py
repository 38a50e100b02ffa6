"""Closing the window: ask first when the close throws work away (a run not exported, an export
running; "Don't ask again" is remembered), then stop drawing and end the export, the model-zoo
download and the worker, in that order."""
from __future__ import annotations

import os
from typing import Callable, Optional

from PySide6.QtWidgets import QCheckBox, QMessageBox, QWidget

from .draw_scheduler import DrawScheduler
from trackers.run.run_store import RunStore
from .export_controls import ExportControls
from .preferences import Preferences

# Threads that did not end in time when their window closed; kept referenced so Python does not
# destroy a running QThread (which would abort the process).
_ORPHANS: list = []


class CloseGuard:
    def __init__(self, window: QWidget, prefs: Preferences, exports: ExportControls, store: Callable[[], RunStore],
                 draws: DrawScheduler, worker, running_download: Callable[[], Optional[object]]):
        self.window, self.prefs, self.exports, self._store = window, prefs, exports, store
        self.draws, self.worker, self._running_download = draws, worker, running_download
        self.close_box: Optional[QMessageBox] = None   # the "close without exporting?" question, while open
        self.closing = False

    def close_warnings(self) -> list[str]:
        out = []
        job = self.exports.running_job()
        if job is not None:
            out.append(f"A video export to {os.path.basename(job.path)} is running; closing cancels it "
                       "(the file already there is kept).")
        if self.exports.unexported_run():
            record = self._store().record
            out.append(f"The run ({len(record.frames)} frames tracked with {record.tracker}) "
                       "has not been exported; closing discards it.")
        return out

    def confirm_close(self) -> bool:
        """Ask before a close throws work away; True to close. 'Don't ask again' is remembered."""
        warnings = self.close_warnings()
        if not warnings or not self.prefs.ask_before_closing():
            return True
        box = QMessageBox(QMessageBox.Warning, "Close SiamScope?", "\n\n".join(warnings), parent=self.window)
        close = box.addButton("Close without exporting", QMessageBox.DestructiveRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(QMessageBox.Cancel)
        dont_ask = QCheckBox("Don't ask again")
        box.setCheckBox(dont_ask)
        self.close_box = box
        box.exec()
        self.close_box = None
        if box.clickedButton() is not close:
            return False
        if dont_ask.isChecked():
            self.prefs.stop_asking_before_closing()
        return True

    def shutdown(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.draws.stop()
        try:
            self.worker.outbox.wake.disconnect()
        except (RuntimeError, TypeError):
            pass
        for job in (self.exports.running_job(), self._running_download()):
            if job is not None:
                job.cancel()
                if not job.wait(10000):
                    _ORPHANS.append(job)
        if not self.worker.shutdown():
            _ORPHANS.append(self.worker)
