"""The live hyper-parameter panel, generated from the tracker's params dataclass.

One editor per field: floats and ints get spin boxes (within the field's range), bools a check
box; structural values (`ParamInfo.live` false: crop sizes the network was built for, strides)
and other types are shown read-only. Each row's tooltip is the field's meaning (trackers/core/base.py
`param`). An edit is emitted as (name, value); the window queues it to the worker, which sets it
on `tracker.params` between frames, so it applies from the next frame. "Reset to defaults" goes
back to the variant's defaults as the registry makes them.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from trackers.core.base import ParamInfo, param_info


def _field_type(cls, field: dataclasses.Field):
    try:
        hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - unresolvable annotations: fall back to the default's type
        hints = {}
    t = hints.get(field.name, field.type)
    return t if isinstance(t, type) else None


class ParamsPanel(QWidget):
    paramChanged = Signal(str, object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.title = QLabel("No tracker loaded")
        self.title.setWordWrap(True)
        self.form = QFormLayout()
        self.reset = QPushButton("Reset to defaults")
        self.reset.setEnabled(False)
        self.reset.clicked.connect(self.reset_to_defaults)
        lay = QVBoxLayout(self)
        lay.addWidget(self.title)
        lay.addLayout(self.form)
        lay.addWidget(self.reset)
        lay.addStretch(1)
        self.editors: dict[str, QWidget] = {}
        self.params: object | None = None
        self.defaults: object | None = None

    def set_params(self, params: object | None, title: str = "", defaults: object | None = None) -> None:
        """Build the editors for a params dataclass instance (a copy: edits go out by signal).
        `defaults`: the variant's default values (else the dataclass's own)."""
        while self.form.rowCount():
            self.form.removeRow(0)
        self.editors.clear()
        self.params = params
        self.defaults = defaults
        self.reset.setEnabled(params is not None)
        if params is None or not dataclasses.is_dataclass(params):
            self.title.setText("This tracker has no adjustable parameters" if title else "No tracker loaded")
            return
        self.title.setText(f"{title} — {type(params).__name__}\nchanges apply from the next frame")
        defaults = self._defaults()
        for f in dataclasses.fields(params):
            value = getattr(params, f.name)
            info = param_info(type(params), f.name)
            editor = self._editor(f.name, _field_type(type(params), f), value, info)
            default = getattr(defaults, f.name, "-") if defaults is not None else "-"
            editor.setToolTip(_tooltip(f.name, info, default))
            self.form.addRow(f.name, editor)
            self.editors[f.name] = editor

    def _editor(self, name: str, ftype, value, info: ParamInfo) -> QWidget:
        lo, hi = info.range if info.range is not None else (-1e6, 1e6)
        if not info.live:
            w = QLabel(repr(value))  # structural: shown, not offered for editing
            w.setEnabled(False)
        elif isinstance(value, bool) or ftype is bool:
            w = QCheckBox()
            w.setChecked(bool(value))
            w.toggled.connect(lambda v, n=name: self._changed(n, bool(v)))
        elif isinstance(value, int) or ftype is int:
            w = QSpinBox()
            w.setRange(int(lo), int(hi))
            w.setValue(int(value))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=name: self._changed(n, int(v)))
        elif isinstance(value, float) or ftype is float:
            w = QDoubleSpinBox()
            w.setDecimals(4)
            w.setRange(float(lo), float(hi))
            w.setValue(float(value))
            # a step of about a tenth of the value: 0.05 -> 0.005, 0.42 -> 0.05
            step = 10 ** round(math.log10(abs(value))) / 10 if value else 0.01
            w.setSingleStep(step)
            w.setKeyboardTracking(False)
            w.valueChanged.connect(lambda v, n=name: self._changed(n, float(v)))
        else:
            w = QLabel(repr(value))
            w.setEnabled(False)
        return w

    def _changed(self, name: str, value) -> None:
        if self.params is not None:
            setattr(self.params, name, value)
        self.paramChanged.emit(name, value)

    def set_value(self, name: str, value) -> None:
        """Set an editor as a user would (emits paramChanged)."""
        w = self.editors[name]
        if isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.setValue(value)

    def values(self) -> dict:
        return dataclasses.asdict(self.params) if dataclasses.is_dataclass(self.params) else {}

    def _defaults(self) -> object | None:
        if self.defaults is not None:
            return self.defaults
        try:
            return type(self.params)()
        except TypeError:
            return None

    def reset_to_defaults(self) -> None:
        if self.params is None:
            return
        defaults = self._defaults()
        if defaults is None:
            return
        for f in dataclasses.fields(defaults):
            if f.name in self.editors and getattr(defaults, f.name) != getattr(self.params, f.name):
                self.set_value(f.name, getattr(defaults, f.name))


def _tooltip(name: str, info: ParamInfo, default) -> str:
    lines = [f"{name}: {info.help}" if info.help else name]
    if not info.live:
        lines.append("structural: fixed for this network, not editable")
    else:
        lines.append(f"default {default}" + (f", range {info.range[0]:g} to {info.range[1]:g}" if info.range else ""))
    return "\n".join(lines)
