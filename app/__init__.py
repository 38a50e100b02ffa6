"""The PySide6 / pyqtgraph GUI (the only package that imports Qt)."""

from .qt_compat import undo_opencv_qt_environment

undo_opencv_qt_environment()

# the app offers every tracker: the project's catalogue (trackers/families' declared list) and plugins
import trackers.families  # noqa: E402,F401
