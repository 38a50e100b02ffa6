"""A/B: the two trackers' score maps of the same frame side by side, each with its own peak, and
both speeds. Shown while a comparison runs (app/targets_panel.py drives it)."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QVBoxLayout, QWidget

from .inspect_views import HeatmapView


class CompareView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.maps = (HeatmapView(), HeatmapView())
        self.titles = (QLabel("A"), QLabel("B"))
        self.speeds = QLabel("")
        row = QHBoxLayout()
        for title, view in zip(self.titles, self.maps):
            col = QVBoxLayout()
            col.addWidget(title)
            col.addWidget(view, 1)
            row.addLayout(col, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(2, 2, 2, 2)
        lay.addLayout(row, 1)
        lay.addWidget(self.speeds)
        self.shown_frame: int | None = None

    def show_pair(self, views, index: int) -> None:
        """`views`: the two TrackViews (A, B) of frame `index`."""
        parts = []
        for title, heat, v in zip(self.titles, self.maps, views):
            style = "solid" if v.style == "solid" else "dashed"
            title.setText(f"{'A' if v.style == 'solid' else 'B'}: {v.tracker_name} ({style} box)")
            r = v.result
            if r is not None and r.score_map is not None:
                heat.set_result(r, index)
            else:
                heat.mark_stale(index)
            parts.append(f"{v.tracker_name} {1000.0 / v.ms:.1f} fps" if v.ms > 0 else f"{v.tracker_name} —")
        self.speeds.setText("speed: " + "  ·  ".join(parts))
        self.shown_frame = index
