"""Closing the window: ask first when the close throws work away (a run not exported, an export
running; "Don't ask again" is remembered), then stop drawing and end the export, the model-zoo
download and the worker, in that order.

The same question, with the same "Don't ask again", guards everything else that drops tracked
frames: opening another source, switching the tracker or its checkpoint mid-run, and resuming from
a frame before the end of the run (`confirm_discard`)."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtWidgets import QCheckBox, QMessageBox, QWidget

from trackers.run.run_store import RunStore

from .draw_scheduler import DrawScheduler
from .export_controls import ExportControls
from .preferences import Preferences

# Threads that did not end in time when their window closed; kept referenced so Python does not
# destroy a running QThread (which would abort the process).
_ORPHANS: list = []


class CloseGuard:
    def __init__(
        self,
        window: QWidget,
        prefs: Preferences,
        exports: ExportControls,
        store: Callable[[], RunStore],
        draws: DrawScheduler,
        worker,
        running_download: Callable[[], object | None],
    ):
        self.window, self.prefs, self.exports, self._store = window, prefs, exports, store
        self.draws, self.worker, self._running_download = draws, worker, running_download
        # the question ("close without exporting?", "discard the run?"), while it is on screen
        self.close_box: QMessageBox | None = None
        self.closing = False

    def close_warnings(self) -> list[str]:
        out = []
        job = self.exports.running_job()
        if job is not None:
            out.append(
                f"A video export to {os.path.basename(job.path)} is running; closing cancels it "
                "(the file already there is kept)."
            )
        return out + self.unexported_warning("closing")

    def confirm_close(self) -> bool:
        """Ask before a close throws work away; True to close. 'Don't ask again' is remembered."""
        return self._ask("Close SiamScope?", self.close_warnings(), "Close without exporting")

    def unexported_warning(self, doing: str) -> list[str]:
        """The line for an unexported run that `doing` ("opening bag.avi") would discard, if any."""
        if not self.exports.unexported_run():
            return []
        record = self._store().record
        return [
            f"The run ({len(record.frames)} frames tracked with {record.tracker}) has not been exported; "
            f"{doing} discards it."
        ]

    def confirm_discard(self, title: str, warnings: list[str], go: str) -> bool:
        """The close question for another way of dropping tracked frames: True to go on."""
        return self._ask(title, warnings, go)

    def _ask(self, title: str, warnings: list[str], go: str) -> bool:
        if not warnings or not self.prefs.ask_before_closing() or self.closing:
            return True
        box = QMessageBox(QMessageBox.Warning, title, "\n\n".join(warnings), parent=self.window)
        close = box.addButton(go, QMessageBox.DestructiveRole)
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
