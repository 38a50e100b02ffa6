"""Work around a PySide6 6.12 reference-count bug on CPython < 3.12.

Measured here (PySide6 6.12.0, Python 3.11.7): every event-loop iteration, repaint and many
pyqtgraph calls release references to None and True that were never taken (about 3 per
`processEvents()`, hundreds per pyqtgraph redraw); PySide6 6.11.3 does not. Once None's count
falls to zero CPython aborts ("Fatal Python error: none_dealloc"), mid-run or at exit. From 3.12
these objects are immortal and the bug is harmless. Until a fixed PySide6 is pinned, give the
three singletons a reference count that no run can exhaust (they are never freed anyway).
"""
from __future__ import annotations

import ctypes
import sys

_TOP_UP = 1 << 40      # at a million lost references a second this lasts about 13 days
_done = False


def _affected() -> bool:
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return False
    try:
        import PySide6
        major, minor = (int(v) for v in PySide6.__version__.split(".")[:2])
    except (ImportError, ValueError):
        return False
    return (major, minor) >= (6, 12)


def guard_singleton_refcounts() -> bool:
    """Raise the reference counts of None, True and False once; True when it was needed."""
    global _done
    if _done or not _affected():
        return _done
    for obj in (None, True, False):
        ctypes.c_ssize_t.from_address(id(obj)).value += _TOP_UP
    _done = True
    return True


def undo_opencv_qt_environment() -> None:
    """opencv-python(-contrib) points QT_QPA_PLATFORM_PLUGIN_PATH / QT_QPA_FONTDIR at its own Qt
    build when cv2 is imported; PySide6 then loads cv2's xcb plugin and aborts ("Could not load the
    Qt platform plugin xcb ... even though it was found"). Import cv2 first, then drop them."""
    import os

    import cv2
    cv2_dir = os.path.dirname(os.path.abspath(cv2.__file__))
    for var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(var, "")
        if value and os.path.abspath(value).startswith(cv2_dir):
            del os.environ[var]
