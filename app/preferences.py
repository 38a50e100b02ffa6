"""What the app remembers between sessions (QSettings): the last folder, the picked tracker, engine
and compute threads, each tracker's checkpoint, and whether to ask before closing. Recent files
are app/recent.py. The keys are written here only, so a renamed key cannot lose a user's choice."""

from __future__ import annotations

import os

from PySide6.QtCore import QSettings

from trackers.core import registry

#: QSettings key: ask before a close discards an unexported run or cancels an export
ASK_BEFORE_CLOSING = "ask_before_closing"


def setting_bool(value) -> bool:
    # QSettings' INI files give booleans back as the strings "true" / "false"
    return value if isinstance(value, bool) else str(value).lower() not in ("false", "0", "")


class Preferences:
    def __init__(self, settings: QSettings):
        self.settings = settings

    def last_dir(self) -> str:
        return str(self.settings.value("last_dir", os.getcwd()))

    def remember_dir_of(self, path: str) -> None:
        self.settings.setValue("last_dir", os.path.dirname(os.path.abspath(path)))

    def threads(self) -> int:
        """Remembered compute-thread count; 0 = automatic (every core but one)."""
        try:
            return max(0, int(self.settings.value("compute/threads", 0) or 0))
        except (TypeError, ValueError):
            return 0

    def set_threads(self, threads: int) -> None:
        self.settings.setValue("compute/threads", int(threads))

    def tracker(self) -> str:
        return str(self.settings.value("tracker", "") or "")

    def set_tracker(self, name: str) -> None:
        self.settings.setValue("tracker", name)

    def engine(self) -> str:
        return str(self.settings.value("engine", "auto") or "auto")

    def set_engine(self, engine: str) -> None:
        self.settings.setValue("engine", engine)

    def known_weights(self, spec) -> str | None:
        """The checkpoint chosen for this tracker before (if the file is still there), else the one
        in the model folders."""
        remembered = str(self.settings.value(f"weights/{spec.name}", "") or "")
        return remembered if remembered and os.path.isfile(remembered) else registry.find_weights(spec)

    def set_weights(self, name: str, path: str) -> None:
        self.settings.setValue(f"weights/{name}", path)

    def ask_before_closing(self) -> bool:
        return setting_bool(self.settings.value(ASK_BEFORE_CLOSING, True))

    def stop_asking_before_closing(self) -> None:
        self.settings.setValue(ASK_BEFORE_CLOSING, False)
