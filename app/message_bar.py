"""Problems and hints shown inside the window (never a dialog that blocks, never a traceback)."""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

MESSAGE_STYLES = {"error": "background:#b71c1c; color:white;", "warning": "background:#f9a825; color:black;",
                  "info": "background:#1565c0; color:white;"}


class MessageBar(QWidget):
    """One message at a time; an info hides itself after a while, problems stay until closed."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.clicked.connect(self.hide)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(8, 3, 4, 3)
        lay.addWidget(self.label, 1)
        lay.addWidget(close)
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.level = ""
        self.text = ""
        self._timer = QTimer(self, singleShot=True, interval=8000)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, level: str, text: str) -> None:
        self.level, self.text = level, text
        self.label.setText(text)
        self.setStyleSheet(MESSAGE_STYLES.get(level, MESSAGE_STYLES["info"]))
        self.show()
        if level == "info":
            self._timer.start()
        else:
            self._timer.stop()
