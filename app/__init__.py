"""The PySide6 / pyqtgraph GUI (the only package that imports Qt)."""
from .qt_compat import guard_singleton_refcounts, undo_opencv_qt_environment

guard_singleton_refcounts()
undo_opencv_qt_environment()
