"""What the video area shows before anything is open: the ways to open a source, and recent files."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout


class StartPage(QFrame):
    openVideo = Signal()
    openFolder = Signal()
    openCamera = Signal()
    openRecent = Signal(str)  # a path from the recent list

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("startPage")
        self.setStyleSheet(
            "#startPage { background: #141414; } QLabel { color: #dddddd; }"
            "QPushButton { padding: 8px 18px; font-size: 11pt; }"
        )
        title = QLabel("SiamScope")
        title.setStyleSheet("font-size: 22pt; font-weight: bold; color: white;")
        hint = QLabel(
            "Open a video, an image-sequence folder or a camera — or drop a file here. Then drag "
            "a box around the target and press Start."
        )
        hint.setWordWrap(True)
        hint.setAlignment(Qt.AlignCenter)
        self.video_button = QPushButton("Open video…")
        self.folder_button = QPushButton("Open folder…")
        self.camera_button = QPushButton("Camera…")
        self.video_button.clicked.connect(self.openVideo)
        self.folder_button.clicked.connect(self.openFolder)
        self.camera_button.clicked.connect(self.openCamera)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for b in (self.video_button, self.folder_button, self.camera_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        self.recent_title = QLabel("Recent")
        self.recent_title.setStyleSheet("font-weight: bold; margin-top: 14px;")
        self.recent_box = QVBoxLayout()
        self.recent_buttons: list[QPushButton] = []
        keys = QLabel("Press ? for the keyboard shortcuts")
        keys.setStyleSheet("color: #999999;")
        lay = QVBoxLayout(self)
        lay.addStretch(2)
        lay.addWidget(title, 0, Qt.AlignCenter)
        lay.addWidget(hint)
        lay.addSpacing(10)
        lay.addLayout(buttons)
        lay.addWidget(self.recent_title, 0, Qt.AlignCenter)
        lay.addLayout(self.recent_box)
        lay.addStretch(3)
        lay.addWidget(keys, 0, Qt.AlignCenter)

    def set_recent(self, paths: list[str]) -> None:
        for b in self.recent_buttons:
            self.recent_box.removeWidget(b)
            b.deleteLater()
        self.recent_buttons = []
        for path in paths:
            name = os.path.basename(path.rstrip("/")) or path
            b = QPushButton(f"{name}   —   {os.path.dirname(path)}")
            b.setFlat(True)
            b.setStyleSheet("color: #80cbff; text-align: left; padding: 2px 8px; font-size: 10pt;")
            b.setToolTip(path)
            b.setCursor(Qt.PointingHandCursor)
            b.clicked.connect(lambda *_, p=path: self.openRecent.emit(p))
            self.recent_box.addWidget(b, 0, Qt.AlignCenter)
            self.recent_buttons.append(b)
        self.recent_title.setVisible(bool(paths))
