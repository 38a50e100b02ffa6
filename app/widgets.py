"""Small widgets the window's parts share: a label that elides at a word boundary (whole text in its
tooltip) and a slider that jumps to the click."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import QLabel, QSizePolicy, QSlider, QStyle, QStyleOptionSlider

ELLIPSIS = "…"
#: characters left dangling before the ellipsis are dropped ("frame 12 · …", not "frame 12 ·…")
_TRAILING = " ·,;:—-("


def elide_words(metrics: QFontMetrics, text: str, width: int) -> str:
    """`text` whole when it fits `width` pixels, else its longest run of whole words that fits
    with an ellipsis after it; a first word too long for the width is cut (the only cut mid-word)."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    words = text.split(" ")
    lo, hi, best = 1, len(words) - 1, ""
    while lo <= hi:  # the widths grow with the word count: bisect
        mid = (lo + hi) // 2
        candidate = " ".join(words[:mid]).rstrip(_TRAILING) + " " + ELLIPSIS
        if metrics.horizontalAdvance(candidate) <= width:
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best or metrics.elidedText(text, Qt.ElideRight, width)


class ElidedLabel(QLabel):
    """One line that never wraps and never pushes its layout wider: cut at a word boundary with an
    ellipsis when it does not fit, the whole text in the tooltip. `text()` is the whole text;
    `shown_text()` is what is drawn."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self._tip = ""
        self.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.setMinimumWidth(0)
        self.setText(text)

    def text(self) -> str:  # noqa: D102 - the whole text, whatever is shown
        return self._full

    def shown_text(self) -> str:
        return super().text()

    def is_elided(self) -> bool:
        return self.shown_text() != self._full

    def setText(self, text: str) -> None:
        if text == self._full and self.shown_text():
            return
        self._full = text or ""
        self._elide()

    def setToolTip(self, tip: str) -> None:
        """A tooltip of its own (else the whole text shows there when it is cut)."""
        self._tip = tip or ""
        self._update_tip()

    def _update_tip(self) -> None:
        tip = self._tip or (self._full if self.is_elided() else "")
        if tip != super().toolTip():
            super().setToolTip(tip)

    def _elide(self) -> None:
        width = self.contentsRect().width()
        shown = elide_words(self.fontMetrics(), self._full, width) if width > 0 else self._full
        if shown != super().text():
            super().setText(shown)
        self._update_tip()

    def resizeEvent(self, ev) -> None:
        super().resizeEvent(ev)
        self._elide()

    def minimumSizeHint(self):
        hint = super().minimumSizeHint()
        hint.setWidth(0)
        return hint


class ClickSlider(QSlider):
    """A slider whose groove jumps to where it is clicked (a page step of 10 frames is not what a
    click on a video's timeline means), then drags from there."""

    def mousePressEvent(self, ev) -> None:
        if ev.button() == Qt.LeftButton and self.isEnabled():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            handle = self.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderHandle, self)
            if not handle.contains(ev.position().toPoint()):
                groove = self.style().subControlRect(QStyle.CC_Slider, opt, QStyle.SC_SliderGroove, self)
                half = handle.width() // 2
                pos = int(ev.position().x()) - groove.x() - half
                span = max(groove.width() - handle.width(), 1)
                value = QStyle.sliderValueFromPosition(self.minimum(), self.maximum(), pos, span, opt.upsideDown)
                self.setSliderPosition(value)  # valueChanged -> seek (tracking off: setValue follows)
                self.setValue(value)
        super().mousePressEvent(ev)
