"""The PySide6 / pyqtgraph GUI (the only package that imports Qt)."""
from .qt_compat import undo_opencv_qt_environment

undo_opencv_qt_environment()
