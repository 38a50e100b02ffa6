"""Recently opened videos and image folders, kept in the window's QSettings (newest first)."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

KEY = "recent_files"
LIMIT = 8


class RecentFiles:
    def __init__(self, settings: QSettings, limit: int = LIMIT):
        self.settings = settings
        self.limit = limit

    def paths(self) -> list[str]:
        """The remembered paths that still exist, newest first."""
        value = self.settings.value(KEY, []) or []
        if isinstance(value, str):  # QSettings hands back a lone string for a one-item list
            value = [value]
        return [p for p in value if isinstance(p, str) and os.path.exists(p)]

    def add(self, path: str) -> None:
        path = os.path.abspath(path)
        paths = [path] + [p for p in self.paths() if p != path]
        self.settings.setValue(KEY, paths[: self.limit])

    def clear(self) -> None:
        self.settings.setValue(KEY, [])
