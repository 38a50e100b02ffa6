"""Several targets and A/B in the window: the target list beside the video, every target's box on
it, every target's confidence on the timeline, and *Compare with…*.

The run's tracker is a TrackSet (trackers/run/track_set.py): this panel only posts requests to it
(add, re-initialise, remove, rename, select, compare) and draws what it publishes. Adding: drag a
box with Shift held, or press *Add target* and drag. Selecting: a row of the list, or a click on a
box; the score map, channel grid and confidence plot then follow that target. A box dragged
without Shift re-initialises the selected target only (in A/B both trackers, from the same box).
"""

from __future__ import annotations

import os
import re
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from trackers.run.groundtruth import GroundTruthError, read_groundtruth
from trackers.run.metrics import iou
from trackers.run.track_set import TrackView
from trackers.run.tracks import MAX_TRACKS, colour_of

from .frame_display import TIMELINE_INTERVAL_S
from .worker_protocol import PlayingChanged, TrackingChanged

#: short headers (at 1366x768 the list is a 290-px dock beside the video), each with its tooltip
COLUMNS = ("", "id", "name", "state", "conf", "IoU")
COLUMN_TIPS = (
    "the target's colour (its box, its curves on the timeline)",
    "the target's id (MOTChallenge export, file names)",
    "the target's name: double-click to edit (names its results file)",
    "tracking / LOST as its tracker says on the frame on screen",
    "the tracker's confidence on the frame on screen",
    "IoU of its box with the attached ground truth on the frame on screen",
)
#: how each column takes its width: the name takes what is left
COLUMN_MODES = (
    QHeaderView.Fixed,
    QHeaderView.ResizeToContents,
    QHeaderView.Stretch,
    QHeaderView.ResizeToContents,
    QHeaderView.ResizeToContents,
    QHeaderView.ResizeToContents,
)


def qcolour(bgr) -> QColor:
    b, g, r = bgr
    return QColor(r, g, b)


class TargetsPanel(QWidget):
    #: the selected target changed (its id)
    selected = Signal(int)

    def __init__(self, window, tracker_names=()):
        super().__init__()
        self.window = window
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(14)
        for col, (tip, mode) in enumerate(zip(COLUMN_TIPS, COLUMN_MODES)):
            self.table.horizontalHeaderItem(col).setToolTip(tip)
            header.setSectionResizeMode(col, mode)
        self.table.setColumnWidth(0, 14)
        self.add_button = QPushButton("Add target")
        self.add_button.setCheckable(True)
        self.add_button.setToolTip("then drag the new target's box (or drag with Shift held)")
        self.remove_button = QPushButton("Remove")
        self.setMinimumWidth(260)
        self.compare_combo = QComboBox()
        self.compare_combo.addItem("Compare with…")
        self.compare_combo.addItems(list(tracker_names))
        self.compare_combo.addItem("Compare off")
        self.compare_combo.setToolTip("a second tracker from the same box on the same frames (A solid, B dashed)")
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.export_button = QPushButton("Export tracks…")
        self.export_button.setToolTip(
            "every target's boxes, scores and states of this run: JSON (tracks named, "
            "by tracker in A/B) or MOTChallenge CSV (.txt / .csv)"
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        buttons.addWidget(self.export_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(buttons)
        lay.addWidget(self.compare_combo)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.note)
        self.views: tuple = ()  # the TrackViews drawn now
        self.removed: set[int] = set()  # removed here, gone from the worker's next frame
        self.history: dict[int, dict[int, float]] = {}  # id -> frame -> confidence
        self.ab_iou: dict[int, float] = {}
        self.gt_iou: dict[int, dict[int, float]] = {}  # id -> frame -> IoU with the ground truth
        self._truths: dict[tuple, object] = {}  # (attached path, id) -> that target's GroundTruth or None
        self._filled: int | None = None  # the last frame taken into the curves (see _take_missed)
        self._last_taken: int | None = None  # the latest frame in the curves (see _drop_discarded)
        self._curves_drawn_at = 0.0
        self._timeline_taken = (False, False)  # (several targets, with truth): see _take_timeline
        self._boxes: dict[int, tuple] = {}  # id -> (rect item, label item)
        self._curves: dict[int, pg.PlotDataItem] = {}
        self._gt_curves: dict[int, pg.PlotDataItem] = {}  # id -> its IoU with the truth (dotted)
        # each target's mean IoU with the truth so far, over the plot under the timeline's own line
        self.gt_label = QLabel("", window.timeline.plot)
        self.gt_label.setStyleSheet("color:#e0e0e0; background: rgba(0, 0, 0, 170); padding: 1px 4px;")
        self.gt_label.move(70, 4)  # where the timeline's own summary is, hidden meanwhile
        self.gt_label.hide()
        self._ab_curve = window.timeline.plot.plot([], [], pen=pg.mkPen((255, 255, 255), width=1, style=Qt.DashLine))
        self._shown_set = None  # the TrackSet whose targets are shown
        self._press: QPointF | None = None
        self._shift = False
        self._filling = False
        window.video.viewport().installEventFilter(self)
        # before the run's own handler (connected later): the request must be posted before its InitBox
        window.video.boxDrawn.connect(self.box_drawn)
        self.table.itemSelectionChanged.connect(self._row_selected)
        self.table.itemChanged.connect(self._item_changed)
        self.remove_button.clicked.connect(self.remove_selected)
        self.compare_combo.activated.connect(self._compare_chosen)
        self.export_button.clicked.connect(self._export_clicked)
        window.worker.on(TrackingChanged, self._tracking_changed)
        window.opener.groundtruthChanged.connect(self._truth_changed)
        # paused (the end of the video too): the curves as they stand, not as of the last redraw
        window.worker.on(PlayingChanged, lambda e: None if e.playing else self._draw_timeline(self.live_views()))

    # -- the run's tracker ------------------------------------------------------------------------
    def track_set(self):
        tracker = getattr(self.window.worker.session, "tracker", None)
        return tracker if hasattr(tracker, "request_add") else None

    @property
    def comparing(self) -> bool:
        ts = self.track_set()
        return ts is not None and ts.compare is not None

    def _tracking_changed(self, event) -> None:
        """A stopped run: the next Start tracks target 1 alone, and the list starts afresh."""
        ts = self.track_set()
        if not event.tracking and ts is not None:
            if ts.count > 1:
                ts.request_reset()
            self._forget()
            self.views = ()
            self._draw((), self.window.current_index)
            self.window.compare_dock.hide()

    def _forget(self) -> None:
        """The curves' data of the run that ended (or of another run's tracker)."""
        self.history.clear()
        self.ab_iou.clear()
        self.gt_iou.clear()
        self._filled = None
        self._last_taken = None

    # -- adding, selecting, removing --------------------------------------------------------------
    def eventFilter(self, obj, ev) -> bool:
        t = ev.type()
        if t == QEvent.MouseButtonPress and ev.button() == Qt.LeftButton:
            self._press = QPointF(ev.position())
            self._shift = bool(ev.modifiers() & Qt.ShiftModifier)
        elif t == QEvent.MouseButtonRelease and ev.button() == Qt.LeftButton and self._press is not None:
            moved = (ev.position() - self._press).manhattanLength()
            if moved < 3:
                self._click(ev.position())
            self._press = None
        return False

    def _click(self, pos) -> None:
        """A click on a box selects that target (the smallest box under the pointer)."""
        p = self.window.video.widget_to_frame(pos)
        under = [v for v in self.views if v.result is not None and _contains(v.result.box, p.x(), p.y())]
        if under:
            best = min(under, key=lambda v: v.result.box[2] * v.result.box[3])
            self.select(best.id)

    def box_drawn(self, box) -> None:
        adding = self._shift or self.add_button.isChecked()
        self._shift = False
        self.add_button.setChecked(False)
        ts = self.track_set()
        if not adding and ts is not None and not self.window.tracking:
            # the one target, before Start: listed at once
            first = ts.members[0]
            self._fill_table((TrackView(1, first.name, first.tracker_name, colour_of(1), "solid", None),))
        if not adding or ts is None:
            return
        if not self.window.tracking:
            self.say("Draw the first target's box and press Start; then add more targets")
            return
        if len(self.live_views()) >= MAX_TRACKS:
            self.say(
                f"At most {MAX_TRACKS} targets at once: each adds a search crop and a network call to every "
                "frame, and past that the boxes and the list are unreadable. Remove one first."
            )
            self.window.show_message("warning", self.note.text())
        ts.request_add()

    def remove_selected(self) -> None:
        ts = self.track_set()
        if ts is None:
            return
        tid = ts.selected
        if tid == 1:
            self.say("Target 1 is the run's own: stop the run to drop it")
            return
        ts.remove(tid)
        self.removed.add(tid)
        ts.select(1)
        self._draw(self.live_views(), self.window.current_index)
        self.selected.emit(1)

    def select(self, tid: int) -> None:
        ts = self.track_set()
        if ts is None:
            return
        ts.select(tid)
        # paused on the frame the worker last stepped: its snapshot has every target's maps (the
        # per-frame record keeps boxes and scores only)
        latest = self.window.drawn_packet is not None and self.window.drawn_packet is self.window.latest
        views = ts.snapshot if latest else self.live_views()
        view = next((v for v in views if v.id == tid), None)
        if view is not None and view.result is not None and view.result.score_map is not None:
            # paused: the maps switch now, from this target's result of the frame on screen
            self.window.heatmap.set_result(view.result, self.window.current_index)
            if view.result.channels:
                self.window.channels.set_result(view.result, self.window.current_index)
            else:
                self.window.channels.mark_stale(self.window.current_index)
        self._fill_table(self.live_views())
        self.selected.emit(tid)

    def _row_selected(self) -> None:
        if self._filling:
            return
        rows = self.table.selectionModel().selectedRows()
        if rows:
            item = self.table.item(rows[0].row(), 1)
            if item is not None:
                self.select(int(item.text()))

    def _item_changed(self, item) -> None:
        ts = self.track_set()
        if self._filling or ts is None or item.column() != 2:
            return
        tid = int(self.table.item(item.row(), 1).text())
        ts.rename(tid, item.text())

    def _compare_chosen(self, i: int) -> None:
        ts = self.track_set()
        text = self.compare_combo.itemText(i)
        self.compare_combo.setCurrentIndex(0)
        if i == 0 or ts is None:
            return
        if text == "Compare off":
            ts.request_compare(None)
            self.say("Compare off: A runs on alone")
            return
        a = next((v for v in self.live_views() if v.id == 1), None)
        box = a.result.box if a is not None and a.result is not None else self.window.video.user_box()
        if not self.window.tracking or box is None:
            self.say("Draw a box and press Start first; Compare then starts both trackers from it")
            return
        ts.request_compare(text)
        self.window.worker.init_box(tuple(box), self.window.current_index, play=False)
        self.say(f"Comparing {ts.name} (A, solid) with {text} (B, dashed) from the same box")

    def _export_clicked(self) -> None:
        from PySide6.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(
            self, "Export tracks", "tracks.json", "JSON (*.json);;MOTChallenge (*.txt *.csv)"
        )
        self.window.return_focus()
        if path:
            self.export_tracks(path)

    def export_tracks(self, path: str) -> bool:
        """Write every target of the run on record (the store keeps each frame's tracks); True when written."""
        from trackers.run.multi_export import is_multi_track, tracks_from_results, write_mot, write_multi_json
        from trackers.run.safe_output import OutputError, check_output

        store = self.window.store
        if store.record is None or not is_multi_track(store.results):
            self.say("Nothing to export: the run has one target (File ▸ Export has its results)")
            return False
        ordered = tracks_from_results(store.results, store.record)
        gt = self.window.groundtruth
        try:
            source = self.window.source_info
            inputs = [getattr(source, "spec", None), gt.path if gt is not None else None]
            check_output(path, (".json", ".txt", ".csv"), [p for p in inputs if p], what="tracks file")
            if path.lower().endswith(".json"):
                names = [t.tracker_name for t in ordered] if self.comparing else None
                write_multi_json(
                    path, ordered, source=getattr(source, "name", ""), extra=dict(compare=names) if names else None
                )
            else:
                write_mot(path, ordered)
        except (OutputError, OSError) as e:
            self.window.show_message("error", f"Export tracks: {e}")
            return False
        self.window.show_message("info", f"Exported {len(ordered)} tracks to {path}")
        return True

    def say(self, text: str) -> None:
        self.note.setText(text)

    # -- drawing -----------------------------------------------------------------------------------
    def live_views(self) -> tuple:
        ts = self.track_set()
        views = self.views or (ts.snapshot if ts is not None else ())
        return tuple(v for v in views if v.id not in self.removed)

    def refresh(self, index: int) -> None:
        """After the window drew frame `index`: every target's box, the list, the timeline curves."""
        ts = self.track_set()
        packet = self.window.drawn_packet
        views = None
        result = self.window.display.result_for(packet) if packet is not None else None
        if result is not None:
            views = result.extra.get("tracks")  # this frame's, also when seen again (seek, step back)
            if views is None and ts is not None and ts.count == 1:
                views = (self._single_view(ts, result),)  # one target: listed too
        if views is None and ts is not None and ts.count > 1 and (packet is None or packet.kind != "frame"):
            views = ts.snapshot
        if ts is not self._shown_set:
            # another run's tracker (a new source, another tracker): its targets start afresh
            self._shown_set = ts
            self._forget()
            self.removed.clear()
        live_ids = {m.id for m in ts.members} if ts is not None else set()
        self.removed &= live_ids  # once the worker has dropped a removed target, its id is free again
        views = tuple(v for v in (views or ()) if v.id not in self.removed and (not live_ids or v.id in live_ids))
        self.views = views
        self._drop_discarded(index)
        if len(views) > 1:
            self._take_missed(index)
        self._take(index, views)
        self._filled = index
        self._draw(views, index)
        if ts is not None and ts.compare is not None and len(views) == 2:
            self.window.compare_view.show_pair(views, index)
            if not self.window.compare_dock.isVisible():
                self.window.compare_dock.show()
                # a quarter of the window at most: at 1366x768 the video and the timeline keep their room
                height = min(280, self.window.height() // 4)
                self.window.resizeDocks([self.window.compare_dock], [height], Qt.Vertical)

    @staticmethod
    def _single_view(ts, result) -> TrackView:
        first = ts.members[0]
        return TrackView(1, first.name, first.tracker_name, colour_of(1), "solid", result)

    def truth_of(self, tid: int):
        """The ground truth of target `tid`: in A/B the attached one for both (they follow one
        target); otherwise the attached one is target 1's, and target k's is its OTB sibling file
        (`groundtruth_rect.1.txt` attached -> `groundtruth_rect.2.txt`) where there is one."""
        gt = self.window.groundtruth
        if gt is None or tid == 1 or self.comparing:
            return gt
        key = (gt.path, tid)
        if key not in self._truths:
            self._truths[key] = None
            m = re.fullmatch(r"(.*)\.1(\.[A-Za-z]+)", os.path.basename(gt.path))
            sibling = os.path.join(os.path.dirname(gt.path), f"{m.group(1)}.{tid}{m.group(2)}") if m else None
            if sibling is not None and os.path.isfile(sibling):
                try:
                    self._truths[key] = read_groundtruth(sibling)
                except (GroundTruthError, OSError):
                    pass
        return self._truths[key]

    def truth_paths(self) -> list[str]:
        """Every ground-truth file read for a target (inputs: never written over by an export)."""
        return [t.path for t in self._truths.values() if t is not None]

    def _truth_changed(self) -> None:
        """Another ground truth attached (or none): every target's IoU with it, over the run so far."""
        self.gt_iou.clear()
        for i, r in self.window.store.results.items():
            for v in (r.extra.get("tracks") or ()) if r is not None else ():
                gt = self.truth_of(v.id) if v.id not in self.removed and v.result is not None else None
                truth = gt.box(i) if gt is not None else None
                if truth is not None:
                    self.gt_iou.setdefault(v.id, {})[i] = float(iou([v.result.box], [truth])[0])
        self._timeline_taken = None  # the timeline's own IoU line comes back or goes
        self._take_timeline(len(self.views) > 1)
        self._fill_table(self.views)
        self._draw_timeline(self.views)

    def _take(self, index: int, views) -> None:
        """Frame `index`'s confidences, IoU between A and B, and IoUs with the truth into the curves."""
        for v in views:
            if v.result is None:
                continue
            self.history.setdefault(v.id, {})[index] = float(v.result.score)
            gt = self.truth_of(v.id)
            truth = gt.box(index) if gt is not None else None
            if truth is not None:
                self.gt_iou.setdefault(v.id, {})[index] = float(iou([v.result.box], [truth])[0])
        if len(views) == 2 and views[1].style == "dashed" and all(v.result is not None for v in views):
            self.ab_iou[index] = float(iou([views[0].result.box], [views[1].result.box])[0])
        if views and (self._last_taken is None or index > self._last_taken):
            self._last_taken = index

    def _drop_discarded(self, index: int) -> None:
        """A run restarted at an earlier frame (a re-drawn box after a seek back, "Discard them and
        restart here") throws its later frames away in the store: their curves go too. Seeing an
        earlier frame again while the later ones are kept (browsing back) drops nothing."""
        last = self._last_taken
        if last is None or index >= last or self.window.store.results.get(last) is not None:
            return
        for curve in (*self.history.values(), *self.gt_iou.values(), self.ab_iou):
            for k in [k for k in curve if k > index]:
                del curve[k]
        self._last_taken = index
        self._curves_drawn_at = 0.0  # redraw at once

    def _take_missed(self, index: int) -> None:
        """The frames tracked since the last one drawn (playing fast, the window skips drawing some):
        taken from the run's store, so every target's curves have every frame."""
        if self._filled is None or not (self._filled < index - 1):
            return
        results = self.window.store.results
        for i in range(max(self._filled + 1, index - 2000), index):
            r = results.get(i)
            views = r.extra.get("tracks") if r is not None else None
            if views:
                self._take(i, tuple(v for v in views if v.id not in self.removed))

    def _draw(self, views, index) -> None:
        video = self.window.video
        vb = video.vb
        shown = {v.id for v in views} if len(views) > 1 else set()
        if video.own_box == bool(shown):  # the selected box drawn once, by whoever draws them all
            video.own_box = not shown
            if shown:
                video.result_box.setVisible(False)  # back to one target: its next result shows it
        for tid in list(self._boxes):
            if tid not in shown:
                for item in self._boxes.pop(tid):
                    vb.removeItem(item)
        for v in views if len(views) > 1 else ():
            if v.result is None:
                continue
            if v.id not in self._boxes:
                rect = QGraphicsRectItem()
                rect.setZValue(9)
                label = pg.TextItem(anchor=(0, 1))
                label.setZValue(9)
                vb.addItem(rect)
                vb.addItem(label)
                self._boxes[v.id] = (rect, label)
            rect, label = self._boxes[v.id]
            colour = qcolour(v.colour)
            # only what changed is set again (a pen, a label's text re-lays its item out): eight
            # targets are drawn every frame the window shows
            width = 2.5 if v.id == self._selected_id() else 1.5
            if rect.pen().color() != colour or rect.pen().widthF() != width:
                pen = QPen(colour, width)
                pen.setCosmetic(True)
                if v.style == "dashed":
                    pen.setStyle(Qt.DashLine)
                rect.setPen(pen)
            x, y, w, h = v.result.box
            rect.setRect(QRectF(x, y, w, h))
            lost = v.result.state.value != "tracking"
            text = (f"{v.id} {v.name}" if v.name != str(v.id) else f"{v.id}") + (" LOST" if lost else "")
            if getattr(label, "shown_text", None) != text:
                label.setText(text, color=colour)
                label.fill = QBrush(QColor(0, 0, 0, 140))
                # B's name under its box: A/B boxes often coincide, and their names must not
                label.setAnchor((0, 0) if v.style == "dashed" else (0, 1))
                label.shown_text = text
            label.setPos(x, y + h if v.style == "dashed" else y)
        self._fill_table(views)
        self._take_timeline(len(views) > 1)
        # the curves at the timeline's own pace while playing (app/frame_display.py redraws it at most
        # every TIMELINE_INTERVAL_S): eight curves' setData cost more than the boxes and the list
        now = time.perf_counter()
        if not self.window.playing or now - self._curves_drawn_at >= TIMELINE_INTERVAL_S or len(views) < 2:
            self._curves_drawn_at = now
            self._draw_timeline(views)

    def _take_timeline(self, multi: bool) -> None:
        """With several targets the timeline's own single-run curve, IoU and summary line (the selected
        target's, a mix of targets when the selection changed) give way to every target's curves and
        the per-target means; they come back with one target."""
        truth = multi and self.window.groundtruth is not None
        state = (multi, truth)
        if state == self._timeline_taken:
            if truth and self.window.timeline.score_label.isVisible():
                self.window.timeline.score_label.hide()  # the display re-shows it when its text changes
            return
        self._timeline_taken = state
        timeline = self.window.timeline
        timeline.curve.setVisible(not multi)
        timeline.iou_curve.setVisible(not truth)
        timeline.score_label.setVisible(not truth and bool(timeline.score_label.text()))

    def _selected_id(self) -> int:
        ts = self.track_set()
        return ts.selected if ts is not None else 1

    def _fill_table(self, views) -> None:
        index = self.window.current_index
        self._filling = True
        editing = self.table.state() == QAbstractItemView.EditingState
        try:
            if self.table.rowCount() != len(views):
                self.table.setRowCount(len(views))
            for row, v in enumerate(views):
                r = v.result
                gt = self.truth_of(v.id)
                gt_box = gt.box(index) if gt is not None and index is not None else None
                state = "LOST" if r is not None and r.state.value == "lost" else (r.state.value if r else "ready")
                cells = [
                    "",
                    str(v.id),
                    v.name,
                    state,
                    f"{r.score:.3f}" if r else "",
                    f"{float(iou([r.box], [gt_box])[0]):.2f}" if (r is not None and gt_box is not None) else "",
                ]
                # only what changed is set: each set item tells the view (a signal, a repaint), and
                # eight targets' cells every draw cost ~24 ms of the GUI thread (bench --gui --targets 8)
                for col, text in enumerate(cells):
                    item = self.table.item(row, col)
                    if item is None:
                        item = QTableWidgetItem(text)
                        item.setFlags(
                            Qt.ItemIsSelectable | Qt.ItemIsEnabled | (Qt.ItemIsEditable if col == 2 else Qt.NoItemFlags)
                        )
                        self.table.setItem(row, col, item)
                    elif item.text() != text and not (col == 2 and editing):  # never under the user's typing
                        item.setText(text)
                colour = qcolour(v.colour)
                swatch = self.table.item(row, 0)
                if swatch.background().color() != colour:
                    swatch.setBackground(colour)
                if v.id == self._selected_id() and self.table.currentRow() != row:
                    self.table.selectRow(row)
        finally:
            self._filling = False

    def _draw_timeline(self, views) -> None:
        """Every target's confidence in its colour (B dashed); with ground truth each one's IoU with
        it, dotted in its colour (the timeline's own magenta IoU, the selected target's, is hidden
        then); in A/B the IoU between A and B (white dashed)."""
        timeline = self.window.timeline
        plot = timeline.plot
        wanted = {v.id: v for v in views} if len(views) > 1 else {}
        with_truth = self.window.groundtruth is not None and bool(wanted)
        truthful = {tid: v for tid, v in wanted.items() if with_truth and self.truth_of(tid) is not None}
        for curves, keep in ((self._curves, wanted), (self._gt_curves, truthful)):
            for tid in list(curves):
                if tid not in keep:
                    plot.removeItem(curves.pop(tid))
        means = []
        for tid, v in wanted.items():
            colour = qcolour(v.colour)
            hist = self.history.get(tid, {})
            xs = sorted(hist)
            if tid not in self._curves:
                pen = pg.mkPen(colour, width=1.2, style=Qt.DashLine if v.style == "dashed" else Qt.SolidLine)
                self._curves[tid] = plot.plot([], [], pen=pen, name=f"{v.id} {v.name}")
            self._curves[tid].setData(xs, [hist[x] for x in xs])
            if tid in truthful:
                ious = self.gt_iou.get(tid, {})
                xs = sorted(ious)
                if tid not in self._gt_curves:
                    self._gt_curves[tid] = plot.plot(
                        [], [], pen=pg.mkPen(colour, width=1.6, style=Qt.DotLine), name=f"{v.id} IoU"
                    )
                self._gt_curves[tid].setData(xs, [ious[x] for x in xs])
                if ious:
                    label = v.tracker_name if self.comparing else v.name
                    mean = float(np.mean(list(ious.values())))
                    means.append(f"<span style='color:{colour.name()}'>{label} {mean:.2f}</span>")
        if means:
            self.gt_label.setText("mean IoU with the truth (dotted): " + " · ".join(means))
            self.gt_label.adjustSize()
            self.gt_label.show()
            self.gt_label.raise_()
        else:
            self.gt_label.hide()
        if self.comparing and self.ab_iou:
            xs = sorted(self.ab_iou)
            self._ab_curve.setData(xs, [self.ab_iou[x] for x in xs])
        else:
            self._ab_curve.setData([], [])


def _contains(box, x: float, y: float) -> bool:
    bx, by, bw, bh = box
    return bx <= x <= bx + bw and by <= y <= by + bh
