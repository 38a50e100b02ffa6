"""The PySide6 / pyqtgraph GUI (the only package that imports Qt)."""
from .qt_compat import guard_singleton_refcounts

guard_singleton_refcounts()
