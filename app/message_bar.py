"""Problems and hints shown inside the window (never a dialog that blocks, never a traceback)."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

MESSAGE_STYLES = {
    "error": "background:#b71c1c; color:white;",
    "warning": "background:#f9a825; color:black;",
    "info": "background:#1565c0; color:white;",
}


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
        self._actions_layout = QHBoxLayout()
        lay.addLayout(self._actions_layout)
        lay.addWidget(close)
        self.action_buttons: list[QPushButton] = []
        self.setAttribute(Qt.WA_StyledBackground, True)
        self.level = ""
        self.text = ""
        self._timer = QTimer(self, singleShot=True, interval=8000)
        self._timer.timeout.connect(self.hide)
        self.hide()

    def show_message(self, level: str, text: str, actions=()) -> None:
        """`actions`: (button text, callable) pairs shown beside the text -- the fix, right there."""
        self.level, self.text = level, text
        self.label.setText(text)
        self.setStyleSheet(MESSAGE_STYLES.get(level, MESSAGE_STYLES["info"]))
        for b in self.action_buttons:
            self._actions_layout.removeWidget(b)
            b.deleteLater()
        self.action_buttons = []
        for label, slot in actions:
            b = QPushButton(label)
            b.setStyleSheet("background:white; color:black; padding:2px 8px;")
            b.clicked.connect(lambda *_, f=slot: f())
            self._actions_layout.addWidget(b)
            self.action_buttons.append(b)
        self.show()
        if level == "info":
            self._timer.start()
        else:
            self._timer.stop()
