"""Qt set-up that must happen before PySide6 loads its platform plugin.

(PySide6 6.12.0 drops references to None / True on CPython 3.11 and aborts; pyproject.toml pins
PySide6 below 6.12, so no work-around for it is carried here.)
"""

from __future__ import annotations


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
