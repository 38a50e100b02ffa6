"""Looking inside the tracker: the score heatmap, the DW-XCorr channel grid, the confidence timeline.

Each view draws one TrackResult (or the run so far) when the window's display timer asks; none of
them keeps a queue of results.
"""

from __future__ import annotations

import re

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGraphicsItem,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from trackers.core.base import ChannelMaps, TrackResult
from trackers.run.channel_rank import PEAK, TARGET, RankedChannel, rank_channels

from .widgets import ElidedLabel

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
            axis.enableAutoSIPrefix(False)  # pixels and frame numbers, never "x0.001"


def placeholder(text: str) -> QLabel:
    """What an empty panel shows: one short line of what will appear there (not a black area)."""
    label = QLabel(text)
    label.setAlignment(Qt.AlignCenter)
    label.setWordWrap(True)
    label.setStyleSheet("color: #888888; padding: 12px;")
    label.setMinimumSize(0, 0)
    label.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Ignored)
    return label


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
        self.caption = ElidedLabel("score map")
        self.caption.setAlignment(Qt.AlignCenter)
        self.empty = placeholder("The score map over the search region appears here once tracking starts.")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.plot)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(0)
        lay.addWidget(self.caption)
        lay.addWidget(self.stack, 1)
        self.caption.hide()
        self._bar_levels = (0.0, 1.0)
        self._shown_levels = None
        self.score_map: np.ndarray | None = None
        self.frame: int | None = None  # the frame the shown map belongs to
        self._range: QRectF | None = None
        self.plot.getPlotItem().vb.disableAutoRange()
        self.plot.setRange(QRectF(0, 0, 255, 255), padding=0.02)

    def clear(self) -> None:
        """Nothing of an earlier run: the line that says what will appear here."""
        self.score_map, self.frame, self._range, self._shown_levels = None, None, None, None
        self.image.clear()
        self.peak.setData([], [])
        self.caption.setText("")
        self.caption.setToolTip("")
        self.caption.hide()
        self.stack.setCurrentWidget(self.empty)

    @property
    def is_empty(self) -> bool:
        return self.stack.currentWidget() is self.empty

    def set_result(self, result: TrackResult | None, frame: int | None = None) -> None:
        if result is None or result.score_map is None:
            return
        sm = np.asarray(result.score_map, np.float32)
        self.score_map = sm
        self.frame = frame
        if self.stack.currentWidget() is not self.plot:
            self.stack.setCurrentWidget(self.plot)
            self.caption.show()
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
        # two numbers people compare: the map's peak here is after the scale/ratio penalty and the
        # cosine window; the tracker's score (status line) is the chosen cell's confidence before them
        self.caption.setText(f"{where}score map {S1}x{S0}, after penalty and window: peak {hi:.3f}")
        self.caption.setToolTip(
            f"peak of this map (after penalty and cosine window): {hi:.3f}\n"
            f"tracker score (the chosen cell's confidence before them): {result.score:.3f}"
        )

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


CHANNEL_LUT = CHANNEL_CMAP.getLookupTable(0.0, 1.0, 256)  # (256, 3) uint8


def colourise(
    data: np.ndarray, lut: np.ndarray = CHANNEL_LUT, levels: tuple[float, float] | None = None, dim: bool = False
) -> QImage:
    """A float map as an RGB QImage, min-max normalised on its own range or on `levels` (a scale
    shared by several maps). `dim`: darkened, for a map that belongs to an earlier frame (drawn
    into the image, not with a graphics effect: an opacity effect on the scrolling grid repainted
    it with fragments of other widgets)."""
    lo, hi = _levels(data) if levels is None else levels
    idx = np.clip((data - lo) * (255.0 / max(hi - lo, 1e-12)), 0, 255).astype(np.uint8)
    rgb = lut[idx][..., :3]
    if dim:
        rgb = (rgb.astype(np.uint16) * 90 // 255 + 20).astype(np.uint8)
    rgb = np.ascontiguousarray(rgb)
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
        self.value_label = QLabel("")  # the ranking value (target contrast or peak)
        self.value_label.setAlignment(Qt.AlignCenter)
        self.value_label.setStyleSheet("font-size: 8pt;")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 1, 2, 2)
        lay.setSpacing(1)
        lay.addWidget(self.title)
        lay.addWidget(self.picture, 0, Qt.AlignCenter)
        lay.addWidget(self.value_label)
        self.key: tuple | None = None
        self.data: np.ndarray | None = None
        self.value: float = float("nan")
        self._style = None
        self._set_style("normal")

    def _set_style(self, style: str) -> None:
        if style != self._style:  # re-polishing a widget is costly: only on change
            self._style = style
            colour = {"selected": "#ffd600", "pinned": "#26c6da"}.get(style, "transparent")
            self.setStyleSheet(f"ChannelCell {{ border: 2px solid {colour}; }}")

    def show_channel(
        self,
        key,
        data,
        pinned: bool,
        selected: bool,
        value: float = float("nan"),
        value_name: str = "",
        levels: tuple[float, float] | None = None,
        dim: bool = False,
    ) -> None:
        self.key, self.data, self.value = key, data, value
        level, branch, c = key
        # "layer3" -> "L3", "stride16" -> "S16" so level, branch and index fit over a 62-px map (the
        # index matters most); the tooltip has the names whole
        text = f"{'* ' if pinned else ''}{channel_name(key)}"
        if self.title.text() != text:
            self.title.setText(text)
            self.title.setToolTip(f"{level}/{branch} channel {c}" + (" (pinned)" if pinned else ""))
        shown = "–" if np.isnan(value) else f"{value:.2f}"
        if self.value_label.text() != shown:
            self.value_label.setText(shown)
            self.value_label.setToolTip(value_name)
        pix = QPixmap.fromImage(colourise(data, levels=levels, dim=dim)).scaled(
            self.SIDE, self.SIDE, Qt.KeepAspectRatio, Qt.FastTransformation
        )
        self.picture.setPixmap(pix)
        self._set_style("selected" if selected else "pinned" if pinned else "normal")

    def clear(self) -> None:
        self.key, self.data, self.value = None, None, float("nan")
        self.title.setText("")
        self.value_label.setText("")
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
    return [(r.key, r.data) for r in rank_channels(channels, k, pinned, by=PEAK)]


#: the grid's ranking choices: (label, trackers.run.channel_rank name, what the tile's value is)
RANKING_CHOICES = [
    (
        "target contrast",
        TARGET,
        "target contrast: (mean on the target − mean elsewhere) / range, "
        "border cells left out; 1 = fires on the target only",
    ),
    ("peak", PEAK, "peak response over the map's interior (border cells left out)"),
]
SCALE_CHOICES = [("per-channel scale", "channel"), ("shared scale", "shared")]


class ChannelGrid(QWidget):
    """The top-K DW-XCorr channels, by default those whose response concentrates most on the
    tracked target (trackers/run/channel_rank.py; by peak response as an option), each tile with its
    ranking value. Click a channel to enlarge it; pin it to keep it in the grid across frames (how
    SiamRPN++'s category-selective channels become visible)."""

    def __init__(self, parent=None, k: int = 12, columns: int = 4):
        super().__init__(parent)
        self.columns = columns
        self.pinned: list[tuple] = []
        self.selected: tuple | None = None
        self.cells: list[ChannelCell] = []
        self._had_result = False
        self.channels: list[ChannelMaps] = []
        self.frame: int | None = None  # the frame the shown channels belong to
        self.box = None  # the tracked box and search region of that frame
        self.region = None
        self._stale_note = ""
        self.ranked: list[RankedChannel] = []
        self.k_box = QSpinBox()
        self.k_box.setRange(1, 64)
        self.k_box.setValue(k)
        self.k_box.setPrefix("top ")
        self.k_box.setToolTip("how many channels to show, highest ranking value first")
        self.k_box.valueChanged.connect(self._k_changed)
        self.rank_combo = QComboBox()
        for label, name, tip in RANKING_CHOICES:
            self.rank_combo.addItem(label, name)
            self.rank_combo.setItemData(self.rank_combo.count() - 1, tip, Qt.ToolTipRole)
        self.rank_combo.setToolTip("how channels are ranked (the value under each tile)")
        self.rank_combo.currentIndexChanged.connect(lambda _: self.redraw())
        self.scale_combo = QComboBox()
        for label, name in SCALE_CHOICES:
            self.scale_combo.addItem(label, name)
        self.scale_combo.setToolTip("colour scale: each tile on its own range, or one range for all tiles")
        self.scale_combo.currentIndexChanged.connect(lambda _: self.redraw())
        # its own line under the controls (never hidden behind Pin), cut at a word with the whole in
        # the tooltip on a narrow panel
        self.info = ElidedLabel("no correlation channels yet")
        self.info.setStyleSheet("font-size: 8pt;")
        self.pin_button = QPushButton("Pin")
        self.pin_button.setCheckable(True)
        self.pin_button.setEnabled(False)
        self.pin_button.setToolTip("keep the enlarged channel in the grid on every frame")
        self.pin_button.toggled.connect(self._pin_toggled)
        self.unpin_all = QPushButton("Unpin all")
        self.unpin_all.clicked.connect(self.clear_pins)
        # the controls wrap onto a second row rather than widen the panel (a laptop's tab is ~400 px)
        top = QGridLayout()
        top.setContentsMargins(4, 2, 4, 0)
        top.setHorizontalSpacing(4)
        top.setVerticalSpacing(2)
        top.addWidget(QLabel("Channels"), 0, 0)
        top.addWidget(self.k_box, 0, 1)
        top.addWidget(self.rank_combo, 0, 2)
        top.addWidget(self.scale_combo, 1, 2)
        top.addWidget(self.pin_button, 1, 0)
        top.addWidget(self.unpin_all, 1, 1)
        top.setColumnStretch(3, 1)
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
        body_widget = QWidget()
        body = QHBoxLayout(body_widget)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.scroll, 3)
        body.addWidget(self.big, 2)
        self.empty = placeholder(
            "The strongest correlation channels of each tracked frame appear here; click one to enlarge it."
        )
        self.body = QStackedWidget()
        self.body.addWidget(self.empty)
        self.body.addWidget(body_widget)
        self.body_widget = body_widget
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(self.info)
        lay.addWidget(self.body, 1)
        self._build_cells(k)

    @property
    def ranking(self) -> str:
        return self.rank_combo.currentData()

    @property
    def dimmed(self) -> bool:
        """The tiles show an earlier frame's channels (drawn darkened)."""
        return bool(self._stale_note)

    @property
    def shared_scale(self) -> bool:
        return self.scale_combo.currentData() == "shared"

    @property
    def k(self) -> int:
        return self.k_box.value()

    def _fitting_columns(self) -> int:
        """As many columns as the grid's width holds (a cell is SIDE + borders wide)."""
        # the scroll bar's width is kept free: it appears once the rows overflow, and the last
        # column must not then be cut under it
        width = self.scroll.width() - self.scroll.verticalScrollBar().sizeHint().width()
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

    def clear(self) -> None:
        """Nothing of an earlier run (pins and the enlarged channel stay: they name channels, and the
        next run of the same tracker has them too)."""
        self.channels, self.frame, self.box, self.region = [], None, None, None
        self._stale_note = ""
        self._had_result = False
        self.body.setCurrentWidget(self.empty)
        self.redraw()

    @property
    def is_empty(self) -> bool:
        return self.body.currentWidget() is self.empty

    def set_result(self, result: TrackResult | None, frame: int | None = None) -> None:
        if result is None:
            return
        if result.channels and self.body.currentWidget() is not self.body_widget:
            self.body.setCurrentWidget(self.body_widget)
        self.channels = result.channels
        self.box, self.region = result.box, result.search_region
        self.frame = frame
        self._stale_note = ""
        self._had_result = True
        self.redraw()

    def mark_stale(self, frame_on_screen: int) -> None:
        """As HeatmapView.mark_stale: the channels of an earlier frame, dimmed and labelled."""
        if not self.channels or self.frame == frame_on_screen or self._stale_note:
            return
        self._stale_note = f"frame {self.frame}'s "
        self.redraw()

    def shown(self) -> list[tuple[tuple, np.ndarray]]:
        return [(r.key, r.data) for r in self.ranked]

    def redraw(self) -> None:
        self.ranked = rank_channels(
            self.channels, self.k, self.pinned, by=self.ranking, box=self.box, region=self.region
        )
        chosen = self.ranked
        if len(chosen) != len(self.cells) and (len(chosen) > len(self.cells) or len(self.cells) != self.k):
            self._build_cells(max(len(chosen), 1) if chosen else self.k)
        levels = None
        if self.shared_scale and chosen:
            levels = _levels(np.stack([np.asarray(r.data, np.float32) for r in chosen]))
        value_name = next(tip for _, name, tip in RANKING_CHOICES if name == self.ranking)
        dim = bool(self._stale_note)
        for cell, item in zip(self.cells, chosen + [None] * (len(self.cells) - len(chosen))):
            if item is None:
                cell.clear()
            else:
                cell.show_channel(
                    item.key,
                    item.data,
                    item.key in self.pinned,
                    item.key == self.selected,
                    item.value,
                    value_name,
                    levels,
                    dim,
                )
        total = sum(len(c.maps) for c in self.channels)
        # the same short level names as the tiles ("S16/xcorr"), so the two read alike
        layers = ", ".join(
            f"{channel_name((c.level, c.branch, 0)).rsplit(' #', 1)[0]} ({len(c.maps)})" for c in self.channels
        )
        if self.channels:
            info = f"{self._stale_note}{total} channels: {layers} · ranked by {self.rank_combo.currentText()}"
            if dim:
                info += " (dimmed: not this frame's)"
        else:
            info = "this tracker reports no correlation channels" if self._had_result else "no channels yet"
        if info != self.info.text():
            self.info.setText(info)
            self.info.setToolTip(value_name)
        self._show_big(levels)

    def select(self, key: tuple | None) -> None:
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

    def _show_big(self, levels: tuple[float, float] | None = None) -> None:
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
        self.big_image.setImage(data, autoLevels=False, levels=levels or _levels(data))
        self.big_image.setOpacity(0.35 if self.dimmed else 1.0)
        pin = " (pinned)" if key in self.pinned else ""
        title = f"{channel_name(key)}{pin}"
        if title != self._big_title:  # a title change re-lays the plot out: only on change
            self._big_title = title
            self.big.setTitle(title)


#: the timeline's score-axis choices: auto fits the scores (and IoU) shown, so a good run is not a
#: flat line under the top edge; "0 – 1" is the fixed probability scale
AXIS_CHOICES = [("axis: auto", "auto"), ("axis: 0 – 1", "unit")]


class Timeline(QWidget):
    """Best score per frame, the current frame marked, lost / re-detecting frames coloured and the
    frames where the tracker was (re-)initialised drawn as dashed lines; with ground truth, the
    IoU with it per frame (magenta) and the mean IoU / AUC so far."""

    seekRequested = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget()
        self.plot.setMenuEnabled(False)
        self.plot.setLabel("bottom", "frame")
        self.plot.setLabel("left", "score · IoU")
        self.plot.setMouseEnabled(x=True, y=False)
        self.plot.showGrid(y=True, alpha=0.2)
        self.curve = self.plot.plot([], [], pen=pg.mkPen((80, 200, 255), width=1.5))
        self.bad = pg.ScatterPlotItem(size=6, pen=None)
        self.plot.addItem(self.bad)
        self.inits = pg.PlotCurveItem(pen=pg.mkPen((0, 255, 0, 140), width=1, style=Qt.DashLine), connect="pairs")
        self.plot.addItem(self.inits)
        self.iou_curve = self.plot.plot([], [], pen=pg.mkPen((255, 64, 255), width=1.2))
        self.cursor = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((255, 220, 0), width=1.5))
        self.plot.addItem(self.cursor)
        cache_axes(self.plot.getPlotItem())
        self.state_label = QLabel("")
        self.state_label.setObjectName("stateBadge")
        self.state_label.setMinimumWidth(110)
        self.state_label.setAlignment(Qt.AlignCenter)
        self.follow = QCheckBox("follow")
        self.follow.setChecked(True)
        self.follow.setToolTip("keep the current frame in view")
        self.axis_combo = QComboBox()
        for label, name in AXIS_CHOICES:
            self.axis_combo.addItem(label, name)
        self.axis_combo.setToolTip("score axis: fitted to the run, or fixed at 0 – 1")
        self.axis_combo.currentIndexChanged.connect(lambda _: self._fit_y(force=True))
        # mean IoU / AUC so far (with ground truth): laid over the plot's top-left corner rather
        # than in the side column, which a short timeline (1280 x 800) has no height for
        self.score_label = QLabel("", self.plot)
        self.score_label.setStyleSheet("color:#ff60ff; background: rgba(0, 0, 0, 170); padding: 1px 4px;")
        self.score_label.move(70, 4)
        self.score_label.hide()
        side = QVBoxLayout()
        side.addWidget(self.state_label)
        side.addWidget(self.follow)
        side.addWidget(self.axis_combo)
        side.addStretch(1)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.plot, 1)
        lay.addLayout(side)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        self.plot.setXRange(0, 100, padding=0)
        self.plot.setYRange(-0.02, 1.08, padding=0)
        self._y_range: tuple[float, float] | None = (-0.02, 1.08)
        self.frames = np.zeros(0)
        self.scores = np.zeros(0)
        self._fit_scores = np.zeros(0)
        self.ious: dict[int, float] = {}

    def clear(self) -> None:
        """No run: no curve, no IoU, no badge."""
        self.set_ious({}, "")
        self.set_run([], 0, None)
        self.plot.setXRange(0, 100, padding=0)

    def set_ious(self, ious: dict[int, float], summary: str = "") -> None:
        """IoU with the ground truth per frame (empty: no ground truth) and its summary line."""
        self.ious = ious
        frames = sorted(ious)
        self.iou_curve.setData(frames, [ious[f] for f in frames])
        if summary != self.score_label.text():
            self.score_label.setText(summary)
            self.score_label.adjustSize()
            self.score_label.setVisible(bool(summary))
            self.score_label.raise_()

    def _fit_y(self, force: bool = False) -> None:
        """The score axis: 0 – 1, or (auto) the range of the scores and IoU shown, padded; changed
        only when the data leave it or use much less of it (re-laying the axis out costs time)."""
        if self.axis_combo.currentData() == "unit":
            target = (-0.02, 1.08)
        else:
            values = np.concatenate(
                [
                    self._fit_scores[np.isfinite(self._fit_scores)],
                    np.fromiter(self.ious.values(), float, len(self.ious)),
                ]
            )
            if not len(values):
                target = (-0.02, 1.08)
            else:
                lo, hi = float(values.min()), float(values.max())
                pad = max(0.05 * (hi - lo), 0.01)
                target = (lo - pad, hi + pad)
                cur = self._y_range
                if (
                    not force
                    and cur is not None
                    and cur[0] <= lo
                    and cur[1] >= hi
                    and (hi - lo) >= 0.6 * (cur[1] - cur[0])
                ):
                    return
        if force or target != self._y_range:
            self._y_range = target
            self.plot.setYRange(*target, padding=0)

    def set_run(self, records, current: int, state: str | None) -> None:
        """records: the run's FrameRecords in frame order."""
        frames = np.fromiter((r.frame for r in records), float, len(records))
        scores = np.fromiter((r.score for r in records), float, len(records))
        self.frames, self.scores = frames, scores
        # an init frame's score is 1 by definition: fitting the axis to it would flatten the run
        self._fit_scores = scores[~np.fromiter((r.init for r in records), bool, len(records))]
        self.curve.setData(frames, scores)
        bad = [(r.frame, r.score, STATE_COLOURS[r.state]) for r in records if r.state in STATE_COLOURS]
        if bad:
            self.bad.setData([b[0] for b in bad], [b[1] for b in bad], brush=[pg.mkBrush(b[2]) for b in bad])
        else:
            self.bad.setData([], [])
        init_frames = [r.frame for r in records if r.init]
        xs = [v for f in init_frames for v in (f, f)]
        ys = [v for _ in init_frames for v in (-1e6, 1e6)]  # full height, whatever the axis
        self.inits.setData(xs, ys)
        self.cursor.setValue(current)
        self._fit_y()
        if self.follow.isChecked() and len(frames):
            lo = max(float(frames[0]), current - 300)
            self.plot.setXRange(lo, max(current + 10, lo + 20), padding=0)
        self.set_state(state)

    def set_state(self, state: str | None) -> None:
        if state == getattr(self, "_state", "?"):
            return
        self._state = state
        if not state:
            self.state_label.setText("")
            self.state_label.setStyleSheet("")
            return
        colour = {"tracking": "#2e7d32", "init": "#1565c0", "lost": "#c62828", "re-detecting": "#ef6c00"}.get(
            state, "#555"
        )
        self.state_label.setText(state.upper())
        self.state_label.setStyleSheet(
            f"background:{colour}; color:white; font-weight:bold; padding:4px; border-radius:3px"
        )

    def _clicked(self, ev) -> None:
        if ev.double():
            x = self.plot.getPlotItem().vb.mapSceneToView(ev.scenePos()).x()
            self.seekRequested.emit(int(round(x)))
