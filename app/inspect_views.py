"""Looking inside the tracker: the score heatmap, the DW-XCorr channel grid, the confidence timeline.

Each view draws one TrackResult (or the run so far) when the window's display timer asks; none of
them keeps a queue of results.
"""
from __future__ import annotations

import re
from typing import Optional

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (QCheckBox, QFrame, QGraphicsItem, QGraphicsOpacityEffect, QGridLayout, QHBoxLayout, QLabel,
                               QPushButton, QScrollArea, QSizePolicy, QSpinBox, QVBoxLayout, QWidget)

from trackers.base import ChannelMaps, TrackResult

HEAT_CMAP = pg.colormap.get("inferno")
CHANNEL_CMAP = pg.colormap.get("viridis")
STATE_COLOURS = {"lost": (255, 60, 60), "re-detecting": (255, 170, 0)}


def cache_axes(plot_item) -> None:
    """Keep each axis as a cached pixmap: re-rendering tick labels on every repaint of the plot
    costs more than the data drawn in it (measured: ~10 axis repaints per frame otherwise)."""
    for name in ("left", "bottom", "right", "top"):
        axis = plot_item.getAxis(name)
        if axis is not None:
            axis.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
            axis.enableAutoSIPrefix(False)   # pixels and frame numbers, never "x0.001"


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
        self.plot.setLabel("bottom", "x in the search crop (frame px)")
        self.plot.setLabel("left", "y (frame px)")
        self.image = pg.ImageItem(axisOrder="row-major")
        self.plot.addItem(self.image)
        self.peak = pg.ScatterPlotItem(size=12, symbol="+", pen=pg.mkPen("c", width=2), brush=None)
        self.plot.addItem(self.peak)
        self.bar = pg.ColorBarItem(values=(0, 1), colorMap=HEAT_CMAP, interactive=False, width=12)
        self.bar.setImageItem(self.image, insert_in=self.plot.getPlotItem())
        cache_axes(self.plot.getPlotItem())
        self.bar.axis.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.caption = QLabel("score map")
        self.caption.setAlignment(Qt.AlignCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.caption)
        lay.addWidget(self.plot)
        self._bar_levels = (0.0, 1.0)
        self._shown_levels = None
        self.score_map: Optional[np.ndarray] = None
        self.frame: Optional[int] = None    # the frame the shown map belongs to
        self._range: Optional[QRectF] = None
        self.plot.getPlotItem().vb.disableAutoRange()
        self.plot.setRange(QRectF(0, 0, 255, 255), padding=0.02)

    def set_result(self, result: Optional[TrackResult], frame: Optional[int] = None) -> None:
        if result is None or result.score_map is None:
            return
        sm = np.asarray(result.score_map, np.float32)
        self.score_map = sm
        self.frame = frame
        self.image.setOpacity(1.0)
        lo, hi = _levels(sm)
        self.image.setImage(sm, autoLevels=False)
        levels = self._stable_levels(lo, hi)
        if levels != self._shown_levels:
            self._shown_levels = levels
            self.bar.setLevels(levels)
        S0, S1 = sm.shape
        if result.search_region is not None:
            sr = result.search_region
            x0, y0, x1, y1 = sr.score_extent
            rect = QRectF(x0 - sr.x, y0 - sr.y, x1 - x0, y1 - y0)
        else:
            rect = QRectF(0, 0, S1, S0)
        self.image.setRect(rect)
        if self._range is None or abs(rect.width() - self._range.width()) > 0.1 * self._range.width():
            self._range = QRectF(rect)
            self.plot.setRange(rect, padding=0.02)
        i, j = np.unravel_index(int(np.argmax(sm)), sm.shape)
        self.peak.setData([rect.x() + (j + 0.5) * rect.width() / S1], [rect.y() + (i + 0.5) * rect.height() / S0])
        where = f"frame {frame}: " if frame is not None else ""
        self.caption.setText(f"{where}score map {S1}x{S0} after penalty and window — max {hi:.3f}")

    def mark_stale(self, frame_on_screen: int) -> None:
        """The video shows a frame with no network output (seeked to, or not tracked): keep the last
        map for reference, but dimmed and captioned with the frame it belongs to."""
        if self.score_map is None or self.frame == frame_on_screen:
            return
        self.image.setOpacity(0.3)
        self.caption.setText(f"score map of frame {self.frame} — frame {frame_on_screen} has no network output")

    def _stable_levels(self, lo: float, hi: float) -> tuple[float, float]:
        """Colour-bar range: [0, 1] for probabilities; otherwise the data range, changed only when
        the data leave it or use less than half of it (re-drawing the bar's axis costs time)."""
        if lo >= 0.0 and hi <= 1.0:
            levels = (0.0, 1.0)
        else:
            blo, bhi = self._bar_levels
            if lo < blo or hi > bhi or (hi - lo) < 0.5 * (bhi - blo):
                pad = 0.05 * (hi - lo)
                levels = (lo - pad, hi + pad)
            else:
                levels = self._bar_levels
        self._bar_levels = levels
        return levels


CHANNEL_LUT = CHANNEL_CMAP.getLookupTable(0.0, 1.0, 256)   # (256, 3) uint8


def colourise(data: np.ndarray, lut: np.ndarray = CHANNEL_LUT) -> QImage:
    """A float map as an RGB QImage, min-max normalised (each channel is shown on its own scale)."""
    lo, hi = _levels(data)
    idx = np.clip((data - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    rgb = np.ascontiguousarray(lut[idx][..., :3])
    h, w = idx.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format_RGB888).copy()


def channel_name(key: tuple) -> str:
    """(level, branch, index) as a short label: a level named word + number ("layer3", "stride16")
    becomes its capital initial + number ("L3", "S16"); other names stay as they are."""
    level, branch, c = key
    m = re.fullmatch(r"([A-Za-z]{3,})(\d+)", str(level))
    short = f"{m.group(1)[0].upper()}{m.group(2)}" if m else str(level)
    return f"{short}/{branch} #{c}"


class ChannelCell(QFrame):
    """One channel of the grid: its label (level/branch #index) over its response.

    Plain Qt widgets rather than a pyqtgraph layout: a grid of plots re-lays itself out whenever a
    label changes, which costs more than the whole frame is worth at tracking rate."""

    clicked = Signal(object)
    SIDE = 62
    # fixed cell width so the grid's column count is known before the labels arrive; a long
    # label ("layer3/mask #171") is cut at the left edge and shown whole in the tooltip
    WIDTH = SIDE + 30

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Box)
        self.setLineWidth(2)
        self.title = QLabel("")
        self.title.setAlignment(Qt.AlignCenter)
        self.title.setStyleSheet("font-size: 8pt;")
        self.title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setFixedWidth(self.WIDTH)
        self.picture = QLabel()
        self.picture.setFixedSize(self.SIDE, self.SIDE)
        self.picture.setAlignment(Qt.AlignCenter)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 1, 2, 2)
        lay.setSpacing(1)
        lay.addWidget(self.title)
        lay.addWidget(self.picture, 0, Qt.AlignCenter)
        self.key: Optional[tuple] = None
        self.data: Optional[np.ndarray] = None
        self._style = None
        self._set_style("normal")

    def _set_style(self, style: str) -> None:
        if style != self._style:    # re-polishing a widget is costly: only on change
            self._style = style
            colour = {"selected": "#ffd600", "pinned": "#26c6da"}.get(style, "transparent")
            self.setStyleSheet(f"ChannelCell {{ border: 2px solid {colour}; }}")

    def show_channel(self, key, data, pinned: bool, selected: bool) -> None:
        self.key, self.data = key, data
        level, branch, c = key
        # "layer3" -> "L3", "stride16" -> "S16" so level, branch and index fit over a 62-px map (the
        # index matters most); the tooltip has the names whole
        text = f"{'* ' if pinned else ''}{channel_name(key)}"
        if self.title.text() != text:
            self.title.setText(text)
            self.title.setToolTip(f"{level}/{branch} channel {c}" + (" (pinned)" if pinned else ""))
        pix = QPixmap.fromImage(colourise(data)).scaled(self.SIDE, self.SIDE, Qt.KeepAspectRatio,
                                                        Qt.FastTransformation)
        self.picture.setPixmap(pix)
        self._set_style("selected" if selected else "pinned" if pinned else "normal")

    def clear(self) -> None:
        self.key, self.data = None, None
        self.title.setText("")
        self.picture.clear()
        self._set_style("normal")

    def mousePressEvent(self, ev) -> None:
        if ev.button() == Qt.LeftButton and self.key is not None:
            self.clicked.emit(self.key)
            ev.accept()
            return
        super().mousePressEvent(ev)


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

    def __init__(self, parent=None, k: int = 12, columns: int = 4):
        super().__init__(parent)
        self.columns = columns
        self.pinned: list[tuple] = []
        self.selected: Optional[tuple] = None
        self.cells: list[ChannelCell] = []
        self._had_result = False
        self.channels: list[ChannelMaps] = []
        self.frame: Optional[int] = None    # the frame the shown channels belong to
        self._stale_note = ""
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
        self.grid_widget = QWidget()
        self.grid = QGridLayout(self.grid_widget)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setSpacing(2)
        scroll = QScrollArea()
        scroll.setWidget(self.grid_widget)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setFrameShape(QFrame.NoFrame)
        self.scroll = scroll
        self.big = pg.PlotWidget()
        self.big.setAspectLocked(True)
        self.big.invertY(True)
        self.big.setMenuEnabled(False)
        self.big_image = pg.ImageItem(axisOrder="row-major")
        self.big_image.setLookupTable(CHANNEL_CMAP.getLookupTable(0.0, 1.0, 256))
        self.big.addItem(self.big_image)
        self.big.setTitle("click a channel")
        self._big_title = ""
        self.big.setMinimumWidth(150)
        for axis in ("left", "bottom"):
            self.big.hideAxis(axis)
        body = QHBoxLayout()
        body.addWidget(self.scroll, 3)
        body.addWidget(self.big, 2)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addLayout(body, 1)
        self._build_cells(k)

    @property
    def k(self) -> int:
        return self.k_box.value()

    def _fitting_columns(self) -> int:
        """As many columns as the grid's width holds (a cell is SIDE + borders wide)."""
        width = self.scroll.viewport().width()
        return max(1, width // (ChannelCell.WIDTH + self.grid.spacing()))

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        if self.cells and self._fitting_columns() != self.columns:
            self.columns = self._fitting_columns()
            self._build_cells(len(self.cells))
            self.redraw()

    def _build_cells(self, n: int) -> None:
        for cell in self.cells:
            self.grid.removeWidget(cell)
            cell.deleteLater()
        for r in range(self.grid.rowCount()):
            self.grid.setRowStretch(r, 0)
        cols = max(1, min(self.columns, n))
        self.cells = []
        for i in range(n):
            cell = ChannelCell()
            cell.clicked.connect(self.select)
            self.grid.addWidget(cell, i // cols, i % cols)
            self.cells.append(cell)
        self.grid.setRowStretch((n - 1) // cols + 1, 1)

    def _k_changed(self, k: int) -> None:
        self.redraw()

    def set_result(self, result: Optional[TrackResult], frame: Optional[int] = None) -> None:
        if result is None:
            return
        self.channels = result.channels
        self.frame = frame
        self._stale_note = ""
        self.scroll.setGraphicsEffect(None)
        self._had_result = True
        self.redraw()

    def mark_stale(self, frame_on_screen: int) -> None:
        """As ScoreMapView.mark_stale: the channels of an earlier frame, dimmed and labelled."""
        if not self.channels or self.frame == frame_on_screen:
            return
        self._stale_note = f"frame {self.frame}'s "
        effect = QGraphicsOpacityEffect(self.scroll)
        effect.setOpacity(0.35)
        self.scroll.setGraphicsEffect(effect)
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
                cell.show_channel(item[0], item[1], item[0] in self.pinned, item[0] == self.selected)
        total = sum(len(c.maps) for c in self.channels)
        levels = ", ".join(f"{c.label} ({len(c.maps)})" for c in self.channels)
        if self.channels:
            info = f"{self._stale_note}{total} channels: {levels}"
        else:
            info = "this tracker reports no correlation channels" if self._had_result else "no channels yet"
        if info != self.info.text():
            self.info.setText(info)
            self.info.setToolTip(info)
        self._show_big()

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
        self.redraw()

    def pin(self, key: tuple) -> None:
        self.select(key)
        self.pin_button.setChecked(True)

    def clear_pins(self) -> None:
        self.pinned.clear()
        self.pin_button.blockSignals(True)
        self.pin_button.setChecked(False)
        self.pin_button.blockSignals(False)
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
            title = "click a channel" if key is None else "channel not in this frame"
            if title != self._big_title:
                self._big_title = title
                self.big.setTitle(title)
            return
        self.big_image.setImage(data, autoLevels=False, levels=_levels(data))
        pin = " (pinned)" if key in self.pinned else ""
        title = f"{channel_name(key)}{pin}"
        if title != self._big_title:      # a title change re-lays the plot out: only on change
            self._big_title = title
            self.big.setTitle(title)


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
        cache_axes(self.plot.getPlotItem())
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
        self.plot.setXRange(0, 100, padding=0)
        self.plot.setYRange(-0.02, 1.08, padding=0)
        self._unit_scale = True
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
        # probabilities on a fixed 0..1 scale; other scores (SiamFC responses) on their own range
        unit = not len(scores) or (scores.min() >= 0.0 and scores.max() <= 1.0)
        if unit != self._unit_scale:
            self._unit_scale = unit
            if unit:
                self.plot.setYRange(-0.02, 1.08, padding=0)
            else:
                self.plot.enableAutoRange(axis="y")
        if self.follow.isChecked() and len(frames):
            lo = max(float(frames[0]), current - 300)
            self.plot.setXRange(lo, max(current + 10, lo + 20), padding=0)
        self.set_state(state)

    def set_state(self, state: Optional[str]) -> None:
        if state == getattr(self, "_state", "?"):
            return
        self._state = state
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
