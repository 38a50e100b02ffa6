"""File ▸ Export: the annotated video (on its own thread, with a progress bar and Cancel in the
status bar) and the results file. The run itself is the window's `RunStore` (app/export.py).

A run that held several targets (or two trackers, A/B) exports every track: the video draws every
box, and the results are one JSON with every track, or one OTB / CSV file per track named by its
target's name (by tracker in A/B): `OUT.<name>.txt` (trackers/run/multi_export.py)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from PySide6.QtCore import QObject, QSettings, QStandardPaths
from PySide6.QtWidgets import QFileDialog, QProgressBar, QPushButton, QStatusBar, QWidget

from trackers.run.groundtruth import annotation_inputs
from trackers.run.multi_export import is_multi_track, tracks_from_results, write_tracks_results
from trackers.run.run_store import RunStore

from .export import VideoExportJob


class ExportControls(QObject):
    def __init__(
        self,
        window: QWidget,
        status_bar: QStatusBar,
        store: Callable[[], RunStore],
        heatmap: Callable[[], bool],
        last_dir: Callable[[], str],
        show_message: Callable[[str, str], None],
        settings: QSettings | None = None,
        source_name: Callable[[], str] = lambda: "",
    ):
        """`settings` remembers the last export folder; `source_name()` names the file suggested."""
        super().__init__(window)
        self.window = window
        self.settings, self._source_name = settings, source_name
        self._store, self._heatmap, self._last_dir, self.show_message = store, heatmap, last_dir, show_message
        self.export_job: VideoExportJob | None = None
        # (store, version) at the last successful export: a new store (a new source) is a new run
        self.exported: tuple = (None, -1)
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.hide()
        self.cancel_export_button = QPushButton("Cancel export")
        self.cancel_export_button.hide()
        self.cancel_export_button.clicked.connect(self.cancel_export)
        status_bar.addPermanentWidget(self.progress)
        status_bar.addPermanentWidget(self.cancel_export_button)

    def export_folder(self) -> str:
        """Where an export is suggested: the last export's folder, else the user's Videos folder (else
        home); never a folder that cannot be written (the source's, in read-only data)."""
        candidates = [
            str(self.settings.value("export_dir", "") or "") if self.settings is not None else "",
            QStandardPaths.writableLocation(QStandardPaths.MoviesLocation),
            QStandardPaths.writableLocation(QStandardPaths.HomeLocation),
        ]
        for folder in candidates:
            if folder and os.path.isdir(folder) and os.access(folder, os.W_OK):
                return folder
        return os.getcwd()

    def suggested_path(self, ext: str) -> str:
        """`<source name>_<tracker><ext>` in the export folder."""
        store = self._store()
        stem = os.path.splitext(self._source_name() or "run")[0]
        tracker = store.record.tracker if store.record is not None else "run"
        name = re.sub(r"[^\w.+-]+", "_", f"{stem}_{tracker}").strip("_") or "run"
        return os.path.join(self.export_folder(), name + ext)

    def _remember_folder(self, path: str) -> None:
        if self.settings is not None:
            self.settings.setValue("export_dir", os.path.dirname(os.path.abspath(path)))

    def choose_export_video(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.window, "Export annotated video", self.suggested_path(".mp4"), "MPEG-4 (*.mp4);;AVI / MJPG (*.avi)"
        )
        if path:
            if not os.path.splitext(path)[1]:
                path += ".mp4"
            self.export_video(path)

    def export_video(self, path: str, heatmap: bool | None = None) -> VideoExportJob | None:
        if self.export_job is not None and self.export_job.isRunning():
            self.show_message("warning", "A video export is already running")
            return None
        try:
            gt = getattr(self.window, "groundtruth", None)  # an input too
            job = VideoExportJob(
                self._store(),
                path,
                self._heatmap() if heatmap is None else heatmap,
                inputs=(gt.path,) if gt is not None else (),
            )
        except ValueError as e:
            self.show_message("warning", str(e))
            return None
        except OSError as e:  # checked before any frame is read: the source, a device, a folder...
            self.show_message("error", f"Cannot export the video: {e} — the run's results are kept")
            return None
        job.run_version = (id(self._store()), self._store().version)
        self._remember_folder(path)
        job.progress.connect(self._export_progress)
        job.done.connect(self._export_done)
        self.export_job = job
        self.progress.setRange(0, job.last - job.first + 1)
        self.progress.setValue(0)
        self.progress.show()
        self.cancel_export_button.show()
        job.start()
        return job

    def _export_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _export_done(self, ok: bool, message: str) -> None:
        self.progress.hide()
        self.cancel_export_button.hide()
        if ok and self.export_job is not None:
            self.exported = self.export_job.run_version
        self.show_message("info" if ok else "error", message + ("" if ok else " — the run's results are kept"))

    def cancel_export(self) -> None:
        if self.export_job is not None:
            self.export_job.cancel()

    def choose_export_results(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self.window,
            "Export results",
            self.suggested_path(".json"),
            "JSON with scores, timings and provenance (*.json);;CSV (*.csv);;OTB text x,y,w,h (*.txt)",
        )
        if path:
            if not os.path.splitext(path)[1]:  # the format is the filter chosen
                path += ".csv" if "*.csv" in chosen else ".txt" if "*.txt" in chosen else ".json"
            self.export_results(path)

    def export_results(self, path: str) -> bool:
        store = self._store()
        gt = getattr(self.window, "groundtruth", None)  # the attached ground truth is an input
        inputs = (gt.path,) if gt is not None else ()
        targets = getattr(self.window, "targets", None)
        if targets is not None:  # and the other targets' ground truths it read (their OTB siblings)
            inputs += tuple(targets.truth_paths())
        try:
            if store.record is not None and is_multi_track(store.results):
                written = self._export_tracks(store, path, inputs)
            else:
                store.export_results(path, inputs=inputs)
                written = f"{len(store.record.frames)} frames' results to {path}"
        except (OSError, ValueError) as e:
            self.show_message("error", f"Cannot write {path}: {e} — the run's results are kept")
            return False
        self.exported = (id(store), store.version)
        self._remember_folder(path)
        self.show_message("info", f"Wrote {written}")
        return True

    def _export_tracks(self, store: RunStore, path: str, inputs) -> str:
        """Every track of a run that held several: checked whole before any file is written."""
        record = store.record
        spec = store.source_spec if isinstance(store.source_spec, str) else None
        inputs = (*inputs, spec, record.checkpoint, *annotation_inputs(spec), *annotation_inputs(record.source))
        tracks = tracks_from_results(store.results, record)
        paths = write_tracks_results(path, tracks, record, inputs=tuple(p for p in inputs if p))
        names = ", ".join(os.path.basename(p) for p in paths)
        return f"{len(tracks)} tracks' results ({sum(len(t.record.rows) for t in tracks)} rows) to {names}"

    def unexported_run(self) -> bool:
        """A run with tracked frames that changed since its last export (results or video)."""
        store = self._store()
        return store.record is not None and bool(store.record.frames) and (id(store), store.version) != self.exported

    def running_job(self) -> VideoExportJob | None:
        return self.export_job if self.export_job is not None and self.export_job.isRunning() else None
