"""The keyboard shortcuts sheet (`?`), listed from the window's own actions, so it cannot drift."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QTableWidget, QTableWidgetItem, QVBoxLayout

#: what the mouse does on the video (no QAction to read them from)
MOUSE = [
    ("Drag on the video", "draw the target's box (while paused: re-initialise there)"),
    ("Wheel on the video", "zoom around the pointer"),
    ("Ctrl + drag, or middle-button drag", "pan the zoomed video"),
    ("Double-click on the timeline", "go to that frame"),
]


def shortcut_rows(actions) -> list[tuple[str, str]]:
    rows = []
    for a in actions:
        seq = a.shortcut()
        if not seq.isEmpty():
            rows.append((seq.toString(QKeySequence.NativeText), a.text().replace("&", "")))
    return rows


class ShortcutsSheet(QDialog):
    def __init__(self, actions, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = shortcut_rows(actions) + MOUSE
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Key", "Does"])
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        for r, (key, what) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(key))
            self.table.setItem(r, 1, QTableWidgetItem(what))
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setStretchLastSection(True)
        buttons = QDialogButtonBox(QDialogButtonBox.Close)
        buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(buttons)
        width = sum(self.table.columnWidth(c) for c in range(2)) + 60
        self.resize(max(520, width), min(40 + 30 * (len(rows) + 2), 700))

    def rows(self) -> list[tuple[str, str]]:
        return [(self.table.item(r, 0).text(), self.table.item(r, 1).text()) for r in range(self.table.rowCount())]
