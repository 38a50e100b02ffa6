"""The video view: the frame, the tracker's box (mask, polygon, distractors), the optional score
heatmap blended over the frame at its true place, and drawing the target box with the mouse.

Drawing: press the left button on the frame, drag, release. The drawn box stays editable (drag
it, or its corner handles) until tracking starts. Coordinates are frame pixels throughout.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

from trackers.core.base import TrackingState, TrackResult
from trackers.run.annotate import HEAT_MAX_OPACITY, HEAT_OPACITY_GAMMA

BOX_PEN = QPen(QColor(0, 255, 0), 2)
LOST_PEN = QPen(QColor(255, 60, 60), 2)
# ground truth: magenta, dashed, so it reads as "the reference" beside the tracker's solid green
GT_PEN = QPen(QColor(255, 64, 255), 2, Qt.DashLine)
DRAW_PEN = pg.mkPen((255, 220, 0), width=2, style=Qt.DashLine)
for _pen in (BOX_PEN, LOST_PEN, GT_PEN):
    _pen.setCosmetic(True)  # width in screen pixels, whatever the zoom
# Overlay colours: inferno, with opacity rising with the score so that low-score cells leave the
# frame visible and the peak stands out (alpha 0 at the map's minimum, 160 at its maximum).
# (The exported video draws the same: trackers/run/annotate.py holds the numbers.)
HEAT_LUT = np.concatenate(
    [
        pg.colormap.get("inferno").getLookupTable(0.0, 1.0, 256, alpha=False),
        (np.linspace(0.0, 1.0, 256) ** HEAT_OPACITY_GAMMA * HEAT_MAX_OPACITY * 255).astype(np.uint8)[:, None],
    ],
    1,
)
MASK_RGB = (255, 80, 0)


class VideoView(pg.GraphicsView):
    #: the user finished dragging a new box (x, y, w, h), frame pixels
    boxDrawn = Signal(tuple)
    #: the user started dragging a new box
    drawStarted = Signal()

    MIN_SIDE = 2.0  # a drag smaller than this is a click, not a box

    def __init__(self, parent=None):
        super().__init__(parent, background=(20, 20, 20))
        self.vb = pg.ViewBox(lockAspect=True, invertY=True, enableMouse=False, enableMenu=False)
        self.vb.setDefaultPadding(0.0)
        self.setCentralItem(self.vb)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.vb.addItem(self.image)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.heat.setLookupTable(HEAT_LUT)
        self.heat.setZValue(5)
        self.heat.setVisible(False)
        self.vb.addItem(self.heat)
        self.mask = pg.ImageItem(axisOrder="row-major")
        self.mask.setZValue(6)
        self.vb.addItem(self.mask)
        self.polygon = pg.PlotCurveItem(pen=pg.mkPen((0, 255, 255), width=1.5))
        self.polygon.setZValue(7)
        self.vb.addItem(self.polygon)
        self.distractors = pg.PlotCurveItem(pen=pg.mkPen((255, 200, 0), width=1), connect="pairs")
        self.distractors.setZValue(7)
        self.vb.addItem(self.distractors)
        self.result_box = QGraphicsRectItem()
        self.result_box.setPen(BOX_PEN)
        self.result_box.setZValue(8)
        self.result_box.setVisible(False)
        self.vb.addItem(self.result_box)
        self.own_box = True  # False while app/targets_panel.py draws every target's box
        self.gt_box = QGraphicsRectItem()
        self.gt_box.setPen(GT_PEN)
        self.gt_box.setZValue(7.5)
        self.gt_box.setVisible(False)
        self.vb.addItem(self.gt_box)
        self.roi = pg.RectROI((0, 0), (1, 1), pen=DRAW_PEN, movable=True, rotatable=False, removable=False)
        self.roi.addScaleHandle((0, 0), (1, 1))
        self.roi.addScaleHandle((1, 0), (0, 1))
        self.roi.addScaleHandle((0, 1), (1, 0))
        self.roi.setZValue(10)
        self.roi.setVisible(False)
        self.vb.addItem(self.roi)
        self.drawing_enabled = True
        self.show_heatmap = False
        self.frame_shape: tuple | None = None
        self._drag_origin: QPointF | None = None
        self._pan_from: QPointF | None = None  # widget position of an ongoing pan
        # the keyboard goes to the video after a dialog closes (the window's keys work at once)
        self.setFocusPolicy(Qt.StrongFocus)

    # -- zoom and pan ---------------------------------------------------------------------------
    ZOOM_STEP = 1.25  # one wheel notch
    MAX_ZOOM = 40.0

    def zoom(self) -> float:
        """How many times the frame is enlarged over fitting the view (1 = fit)."""
        if self.frame_shape is None:
            return 1.0
        (x0, x1), (y0, y1) = self.vb.viewRange()
        H, W = self.frame_shape[:2]
        return max(W / max(x1 - x0, 1e-9), H / max(y1 - y0, 1e-9))

    def fit(self) -> None:
        """The whole frame in view again."""
        if self.frame_shape is not None:
            self.vb.setRange(QRectF(0, 0, self.frame_shape[1], self.frame_shape[0]), padding=0)

    def zoom_at(self, widget_pos, notches: float) -> None:
        """Zoom by `notches` wheel steps (positive: in), keeping the frame point under `widget_pos` still."""
        if self.frame_shape is None or notches == 0:
            return
        factor = self.ZOOM_STEP ** (-notches)
        if self.zoom() / factor > self.MAX_ZOOM:
            return
        if notches < 0 and self.zoom() * self.ZOOM_STEP**notches <= 1.0:
            self.fit()  # never smaller than the fitted frame
            return
        self.vb.scaleBy((factor, factor), center=self.widget_to_frame(widget_pos))

    def wheelEvent(self, ev):
        self.zoom_at(ev.position(), ev.angleDelta().y() / 120.0)
        ev.accept()

    # -- frames and results ---------------------------------------------------------------------
    def set_frame(self, rgb: np.ndarray) -> None:
        first = self.frame_shape is None or self.frame_shape[:2] != rgb.shape[:2]
        self.image.setImage(rgb, autoLevels=False, levels=(0, 255))
        if first:
            self.frame_shape = rgb.shape
            self.vb.setRange(QRectF(0, 0, rgb.shape[1], rgb.shape[0]), padding=0)

    def set_result(self, result: TrackResult | None) -> None:
        if result is None:
            self.result_box.setVisible(False)
            self.heat.setVisible(False)
            self.mask.setVisible(False)
            self.polygon.setData([], [])
            self.distractors.setData([], [])
            return
        x, y, w, h = result.box
        self.result_box.setRect(QRectF(x, y, w, h))
        self.result_box.setPen(BOX_PEN if result.state == TrackingState.TRACKING else LOST_PEN)
        # several targets: app/targets_panel.py draws every box, the selected one thicker, in its colour
        self.result_box.setVisible(self.own_box)
        self._set_heat(result)
        if result.mask is not None:
            m = np.asarray(result.mask) > result.mask_threshold
            rgba = np.zeros(m.shape + (4,), np.uint8)
            rgba[m] = (*MASK_RGB, 110)
            self.mask.setImage(rgba, autoLevels=False, levels=(0, 255))
            self.mask.setVisible(True)
        else:
            self.mask.setVisible(False)
        if result.polygon is not None:
            p = np.asarray(result.polygon, float).reshape(-1, 2)
            p = np.vstack([p, p[:1]])
            self.polygon.setData(p[:, 0], p[:, 1])
        else:
            self.polygon.setData([], [])
        if result.distractors:
            xs, ys = [], []
            for dx, dy, dw, dh in result.distractors:
                corners = [(dx, dy), (dx + dw, dy), (dx + dw, dy + dh), (dx, dy + dh), (dx, dy)]
                for a, b in zip(corners[:-1], corners[1:]):
                    xs += [a[0], b[0]]
                    ys += [a[1], b[1]]
            self.distractors.setData(xs, ys)
        else:
            self.distractors.setData([], [])

    def _set_heat(self, result: TrackResult) -> None:
        if not self.show_heatmap or result.score_map is None or result.search_region is None:
            self.heat.setVisible(False)
            return
        sm = np.asarray(result.score_map, np.float32)
        lo, hi = float(sm.min()), float(sm.max())
        self.heat.setImage(sm, autoLevels=False, levels=(lo, hi if hi > lo else lo + 1e-6))
        x0, y0, x1, y1 = result.search_region.score_extent
        self.heat.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.heat.setVisible(True)

    def set_groundtruth(self, box: tuple | None) -> None:
        """The ground-truth box of the frame on screen (None: none for it)."""
        if box is None:
            self.gt_box.setVisible(False)
            return
        self.gt_box.setRect(QRectF(*box))
        self.gt_box.setVisible(True)

    # -- the user's box --------------------------------------------------------------------------
    def user_box(self) -> tuple | None:
        if not self.roi.isVisible():
            return None
        pos, size = self.roi.pos(), self.roi.size()
        return (float(pos.x()), float(pos.y()), float(size.x()), float(size.y()))

    def set_user_box(self, box: tuple | None) -> None:
        if box is None:
            self.roi.setVisible(False)
            return
        x, y, w, h = box
        self.roi.setPos((x, y), update=False, finish=False)
        self.roi.setSize((w, h), update=True, finish=False)
        self.roi.setVisible(True)

    # -- coordinates -----------------------------------------------------------------------------
    def frame_to_widget(self, x: float, y: float) -> QPoint:
        """Viewport pixel of frame point (x, y) (what a test needs to send real mouse events)."""
        scene = self.vb.mapViewToScene(QPointF(x, y))
        return self.mapFromScene(scene)

    def widget_to_frame(self, pos) -> QPointF:
        return self.vb.mapSceneToView(self.mapToScene(QPoint(int(round(pos.x())), int(round(pos.y())))))

    # -- mouse -----------------------------------------------------------------------------------
    def _over_roi(self, pos) -> bool:
        if not self.roi.isVisible():
            return False
        for item in self.items(QPoint(int(pos.x()), int(pos.y()))):
            if item is self.roi or isinstance(item, pg.graphicsItems.ROI.Handle):
                return True
        return False

    def mousePressEvent(self, ev):
        pos = ev.position()
        if self.frame_shape is not None and (
            ev.button() == Qt.MiddleButton or (ev.button() == Qt.LeftButton and ev.modifiers() & Qt.ControlModifier)
        ):
            self._pan_from = QPointF(pos)  # Ctrl+drag or middle drag pans; a plain drag draws
            ev.accept()
            return
        if (
            ev.button() == Qt.LeftButton
            and self.drawing_enabled
            and self.frame_shape is not None
            and not self._over_roi(pos)
        ):
            self._drag_origin = self.widget_to_frame(pos)
            self.drawStarted.emit()
            ev.accept()
            return
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev):
        if self._pan_from is not None:
            a, b = self.widget_to_frame(self._pan_from), self.widget_to_frame(ev.position())
            self.vb.translateBy(x=a.x() - b.x(), y=a.y() - b.y())
            self._pan_from = QPointF(ev.position())
            ev.accept()
            return
        if self._drag_origin is not None:
            self._show_drag(self.widget_to_frame(ev.position()))
            ev.accept()
            return
        super().mouseMoveEvent(ev)

    def mouseReleaseEvent(self, ev):
        if self._pan_from is not None:
            self._pan_from = None
            ev.accept()
            return
        if self._drag_origin is not None and ev.button() == Qt.LeftButton:
            box = self._show_drag(self.widget_to_frame(ev.position()))
            self._drag_origin = None
            ev.accept()
            if box is not None:
                self.boxDrawn.emit(box)
            return
        super().mouseReleaseEvent(ev)

    def _show_drag(self, end: QPointF) -> tuple | None:
        H, W = self.frame_shape[:2]
        x0 = min(max(min(self._drag_origin.x(), end.x()), 0.0), W)
        y0 = min(max(min(self._drag_origin.y(), end.y()), 0.0), H)
        x1 = min(max(max(self._drag_origin.x(), end.x()), 0.0), W)
        y1 = min(max(max(self._drag_origin.y(), end.y()), 0.0), H)
        if x1 - x0 < self.MIN_SIDE or y1 - y0 < self.MIN_SIDE:
            return None
        box = (x0, y0, x1 - x0, y1 - y0)
        self.set_user_box(box)
        return box
