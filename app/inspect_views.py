"""Looking inside the tracker: the score heatmap, the DW-XCorr channel grid, the confidence timeline.

Each view draws one TrackResult (or the run so far) when the window's display timer asks; none of
them keeps a queue of results.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QSpinBox,
                               QVBoxLayout, QWidget)

from trackers.base import ChannelMaps, TrackResult

HEAT_CMAP = pg.colormap.get("inferno")
CHANNEL_CMAP = pg.colormap.get("viridis")
STATE_COLOURS = {"lost": (255, 60, 60), "re-detecting": (255, 170, 0)}


def _levels(a: np.ndarray) -> tuple[float, float]:
    lo, hi = float(np.min(a)), float(np.max(a))
    return lo, (hi if hi > lo else lo + 1e-6)


class HeatmapView(QWidget):
    """The final score map in search-crop coordinates (frame pixels from the crop's top-left),
    with a colour bar and the chosen cell marked."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setAspectLocked(True)
        self.plot.invertY(True)
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "search crop x", units="px")
        self.plot.setLabel("left", "y", units="px")
        self.plot.setTitle("score map")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.peak = pg.ScatterPlotItem(size=12, symbol="+", pen=pg.mkPen("c", width=2), brush=None)
        self.plot.addItem(self.peak)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=HEAT_CMAP, interactive=False, width=12)
        self.bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot)
        self.score_map: Optional[np.ndarray] = None

    def set_result(self, result: Optional[TrackResult]) -> None:
        if result is None or result.score_map is None:
            return
        sm = np.asarray(result.score_map, np.float32)
        self.score_map = sm
        lo, hi = _levels(sm)
        self.image.setImage(sm, autoLevels=False)
        self.bar.setLevels((lo, hi))
        S0, S1 = sm.shape
        if result.search_region is not None:
            sr = result.search_region
            x0, y0, x1, y1 = sr.score_extent
            rect = QRectF(x0 - sr.x, y0 - sr.y, x1 - x0, y1 - y0)
        else:
            rect = QRectF(0, 0, S1, S0)
        self.image.setRect(rect)
        i, j = np.unravel_index(int(np.argmax(sm)), sm.shape)
        self.peak.setData([rect.x() + (j + 0.5) * rect.width() / S1], [rect.y() + (i + 0.5) * rect.height() / S0])
        self.plot.setTitle(f"score map {S1}x{S0}   max {hi:.3f}")


class _Cell:
    def __init__(self, layout: pg.GraphicsLayout, row: int, col: int):
        self.label = layout.addLabel("", row=2 * row, col=col, size="8pt")
        self.vb = layout.addViewBox(row=2 * row + 1, col=col, lockAspect=True, invertY=True,
                                    enableMouse=False, enableMenu=False)
        self.vb.setDefaultPadding(0.02)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setLookupTable(CHANNEL_CMAP.getLookupTable(0.0, 1.0, 256))
        self.vb.addItem(self.image)
        self.frame = pg.QtWidgets.QGraphicsRectItem()
        self.frame.setPen(pg.mkPen((255, 220, 0), width=2))
        self.frame.setVisible(False)
        self.vb.addItem(self.frame)
        self.key: Optional[tuple] = None
        self.data: Optional[np.ndarray] = None

    def show(self, key, data, pinned: bool, selected: bool):
        self.key, self.data = key, data
        level, branch, c = key
        self.label.setText(f"{'* ' if pinned else ''}{level}/{branch} #{c}")
        self.image.setImage(data, autoLevels=False, levels=_levels(data))
        h, w = data.shape
        self.frame.setRect(QRectF(0, 0, w, h))
        self.frame.setVisible(selected)
        self.vb.setVisible(True)

    def clear(self):
        self.key, self.data = None, None
        self.label.setText("")
        self.image.clear()
        self.frame.setVisible(False)


def top_channels(channels: list[ChannelMaps], k: int, pinned: list[tuple]) -> list[tuple[tuple, np.ndarray]]:
    """The pinned channels (in pin order) then the strongest others by peak response, k in all
    (or more when more are pinned). Keys are (level, branch, channel index)."""
    by_label = {(c.level, c.branch): c.maps for c in channels}
    chosen: list[tuple[tuple, np.ndarray]] = []
    for key in pinned:
        maps = by_label.get(key[:2])
        if maps is not None and key[2] < len(maps):
            chosen.append((key, maps[key[2]]))
    taken = {key for key, _ in chosen}
    need = k - len(chosen)
    if need > 0 and channels:
        peaks = np.concatenate([c.maps.reshape(len(c.maps), -1).max(1) for c in channels])
        owners = [(c.level, c.branch, i) for c in channels for i in range(len(c.maps))]
        for idx in np.argsort(-peaks, kind="stable"):
            key = owners[idx]
            if key in taken:
                continue
            chosen.append((key, by_label[key[:2]][key[2]]))
            need -= 1
            if need == 0:
                break
    return chosen


class ChannelGrid(QWidget):
    """The top-K DW-XCorr channels by peak response. Click a channel to enlarge it; pin it to keep
    it in the grid across frames (how SiamRPN++'s category-selective channels become visible)."""

    pinsChanged = Signal()

    def __init__(self, parent=None, k: int = 12, columns: int = 4):
        super().__init__(parent)
        self.columns = columns
        self.pinned: list[tuple] = []
        self.selected: Optional[tuple] = None
        self.cells: list[_Cell] = []
        self.channels: list[ChannelMaps] = []
        self.k_box = QSpinBox()
        self.k_box.setRange(1, 64)
        self.k_box.setValue(k)
        self.k_box.setPrefix("top ")
        self.k_box.setToolTip("how many channels to show, strongest peak response first")
        self.k_box.valueChanged.connect(self._k_changed)
        self.info = QLabel("no correlation channels yet")
        self.info.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.pin_button = QPushButton("Pin")
        self.pin_button.setCheckable(True)
        self.pin_button.setEnabled(False)
        self.pin_button.setToolTip("keep the enlarged channel in the grid on every frame")
        self.pin_button.toggled.connect(self._pin_toggled)
        self.unpin_all = QPushButton("Unpin all")
        self.unpin_all.clicked.connect(self.clear_pins)
        top = QHBoxLayout()
        top.addWidget(QLabel("DW-XCorr channels"))
        top.addWidget(self.k_box)
        top.addWidget(self.info, 1)
        top.addWidget(self.pin_button)
        top.addWidget(self.unpin_all)
        self.grid_widget = pg.GraphicsLayoutWidget()
        self.grid_widget.ci.setSpacing(2)
        self.grid_widget.scene().sigMouseClicked.connect(self._clicked)
        self.big = pg.PlotWidget()
        self.big.setAspectLocked(True)
        self.big.invertY(True)
        self.big.setMenuEnabled(False)
        self.big_image = pg.ImageItem(axisOrder="row-major")
        self.big_image.setLookupTable(CHANNEL_CMAP.getLookupTable(0.0, 1.0, 256))
        self.big.addItem(self.big_image)
        self.big.setTitle("click a channel")
        self.big.setMinimumWidth(150)
        body = QHBoxLayout()
        body.addWidget(self.grid_widget, 3)
        body.addWidget(self.big, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        self._build_cells(k)

    @property
    def k(self) -> int:
        return self.k_box.value()

    def _build_cells(self, n: int) -> None:
        self.grid_widget.ci.clear()
        cols = min(self.columns if n > 4 else n, max(n, 1))
        self.cells = [_Cell(self.grid_widget.ci, i // cols, i % cols) for i in range(n)]

    def _k_changed(self, k: int) -> None:
        self.redraw()

    def set_result(self, result: Optional[TrackResult]) -> None:
        if result is None:
            return
        self.channels = result.channels
        self.redraw()

    def shown(self) -> list[tuple[tuple, np.ndarray]]:
        return top_channels(self.channels, self.k, self.pinned)

    def redraw(self) -> None:
        chosen = self.shown()
        if len(chosen) != len(self.cells) and (len(chosen) > len(self.cells) or len(self.cells) != self.k):
            self._build_cells(max(len(chosen), 1) if chosen else self.k)
        for cell, item in zip(self.cells, chosen + [None] * (len(self.cells) - len(chosen))):
            if item is None:
                cell.clear()
            else:
                cell.show(item[0], item[1], item[0] in self.pinned, item[0] == self.selected)
        total = sum(len(c.maps) for c in self.channels)
        levels = ", ".join(f"{c.label} ({len(c.maps)})" for c in self.channels)
        self.info.setText(f"{total} channels: {levels}" if self.channels else "this tracker reports no correlation channels")
        self._show_big()

    def _clicked(self, ev) -> None:
        pos = ev.scenePos()
        for cell in self.cells:
            if cell.key is not None and cell.vb.sceneBoundingRect().contains(pos):
                self.select(cell.key)
                return

    def select(self, key: Optional[tuple]) -> None:
        self.selected = key
        self.pin_button.setEnabled(key is not None)
        self.pin_button.blockSignals(True)
        self.pin_button.setChecked(key in self.pinned)
        self.pin_button.blockSignals(False)
        self.redraw()

    def _pin_toggled(self, on: bool) -> None:
        if self.selected is None:
            return
        if on and self.selected not in self.pinned:
            self.pinned.append(self.selected)
        elif not on and self.selected in self.pinned:
            self.pinned.remove(self.selected)
        self.pinsChanged.emit()
        self.redraw()

    def pin(self, key: tuple) -> None:
        self.select(key)
        self.pin_button.setChecked(True)

    def clear_pins(self) -> None:
        self.pinned.clear()
        self.pin_button.blockSignals(True)
        self.pin_button.setChecked(False)
        self.pin_button.blockSignals(False)
        self.pinsChanged.emit()
        self.redraw()

    def _show_big(self) -> None:
        key = self.selected
        data = None
        if key is not None:
            for c in self.channels:
                if (c.level, c.branch) == key[:2] and key[2] < len(c.maps):
                    data = c.maps[key[2]]
        if data is None:
            self.big_image.clear()
            self.big.setTitle("click a channel" if key is None else "channel not in this frame")
            return
        self.big_image.setImage(data, autoLevels=False, levels=_levels(data))
        pin = " (pinned)" if key in self.pinned else ""
        self.big.setTitle(f"{key[0]}/{key[1]} #{key[2]}{pin}  peak {float(data.max()):.3g}")


class Timeline(QWidget):
    """Best score per frame, the current frame marked, lost / re-detecting frames coloured and the
    frames where the tracker was (re-)initialised drawn as dashed lines."""

    seekRequested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "frame")
        self.plot.setLabel("left", "score")
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(y=True, alpha=0.2)
        self.curve = self.plot.plot([], [], pen=pg.mkPen((80, 200, 255), width=1.5))
        self.bad = pg.ScatterPlotItem(size=6, pen=None)
        self.plot.addItem(self.bad)
        self.inits = pg.PlotCurveItem(pen=pg.mkPen((0, 255, 0, 140), width=1, style=Qt.DashLine), connect="pairs")
        self.plot.addItem(self.inits)
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 220, 0), width=1.5))
        self.plot.addItem(self.cursor)
        self.state_label = QLabel("")
        self.state_label.setMinimumWidth(110)
        self.state_label.setAlignment(Qt.AlignCenter)
        self.follow = QCheckBox("follow")
        self.follow.setChecked(True)
        self.follow.setToolTip("keep the current frame in view")
        side = QVBoxLayout()
        side.addWidget(self.state_label)
        side.addWidget(self.follow)
        side.addStretch(1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        lay.addLayout(side)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.frames = np.zeros(0)
        self.scores = np.zeros(0)

    def set_run(self, records, current: int, state: Optional[str]) -> None:
        """records: the run's FrameRecords in frame order."""
        frames = np.fromiter((r.frame for r in records), float, len(records))
        scores = np.fromiter((r.score for r in records), float, len(records))
        self.frames, self.scores = frames, scores
        self.curve.setData(frames, scores)
        bad = [(r.frame, r.score, STATE_COLOURS[r.state]) for r in records if r.state in STATE_COLOURS]
        if bad:
            self.bad.setData([b[0] for b in bad], [b[1] for b in bad], brush=[pg.mkBrush(b[2]) for b in bad])
        else:
            self.bad.setData([], [])
        init_frames = [r.frame for r in records if r.init]
        xs = [v for f in init_frames for v in (f, f)]
        ys = [v for _ in init_frames for v in (0.0, 1.0)]
        self.inits.setData(xs, ys)
        self.cursor.setValue(current)
        if self.follow.isChecked() and len(frames):
            lo = max(float(frames[0]), current - 300)
            self.plot.setXRange(lo, max(current + 10, lo + 20), padding=0)
        self.set_state(state)

    def set_state(self, state: Optional[str]) -> None:
        if not state:
            self.state_label.setText("")
            self.state_label.setStyleSheet("")
            return
        colour = {"tracking": "#2e7d32", "init": "#1565c0", "lost": "#c62828",
                  "re-detecting": "#ef6c00"}.get(state, "#555")
        self.state_label.setText(state.upper())
        self.state_label.setStyleSheet(f"background:{colour}; color:white; font-weight:bold; padding:4px; border-radius:3px")

    def _clicked(self, ev) -> None:
        if ev.double():
            x = self.plot.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
            self.seekRequested.emit(int(round(x)))
