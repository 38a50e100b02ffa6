"""The tracker bar: which tracker, its checkpoint, the device. It remembers choices in the
preferences (app/preferences.py) and says what to load with `configChanged`; the tracker control
(app/tracker_control.py) sends that to the worker.

The picker is filled from the registry (trackers/core/registry.py), the one table the CLI reads too.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from trackers.core import registry

from .preferences import Preferences


def available_devices() -> list[str]:
    devices = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available():
            devices.append("cuda")
    except Exception:  # noqa: BLE001 - a broken CUDA setup still leaves the CPU
        pass
    return devices


#: the engine choice (trackers/core/engines.py), remembered in the preferences
ENGINES = [("Engine: auto", "auto"), ("Engine: torch", "torch"), ("Engine: ONNX Runtime", "onnxruntime")]


class TrackerBar(QWidget):
    #: the tracker, checkpoint or device changed: the window (re)configures the worker
    configChanged = Signal()
    #: (level, text) for the window's message bar
    message = Signal(str, str)

    def __init__(self, prefs: Preferences, parent=None):
        super().__init__(parent)
        self.prefs = prefs
        self.tracker_combo = QComboBox()
        self.tracker_combo.setMinimumWidth(160)
        self.tracker_combo.setToolTip("tracker")
        # the whole title shows ("…trained here" was cut to "…train")
        self.tracker_combo.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.weights_edit = QLineEdit()
        self.weights_edit.setPlaceholderText("checkpoint file")
        self.weights_edit.setMinimumWidth(160)
        self.weights_edit.editingFinished.connect(self._weights_edited)
        self.weights_button = QPushButton("Checkpoint…")
        self.weights_button.clicked.connect(self.choose_weights)
        self.weights_button.setFocusPolicy(Qt.NoFocus)
        self.after_dialog = lambda: None  # the window hands the keyboard back to the video
        self.device_combo = QComboBox()
        for d in available_devices():
            self.device_combo.addItem(d.upper(), d)
        self.device_combo.setToolTip("where the network runs")
        self.engine_combo = QComboBox()
        for label, value in ENGINES:
            self.engine_combo.addItem(label, value)
        self.engine_combo.setCurrentIndex(max(0, self.engine_combo.findData(prefs.engine())))
        self.engine_combo.setToolTip("what runs the network: auto = the engine measured fastest on this machine")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        for w in (
            QLabel("Tracker"),
            self.tracker_combo,
            self.weights_edit,
            self.weights_button,
            self.device_combo,
            self.engine_combo,
        ):
            lay.addWidget(w)
        lay.setStretch(2, 1)

    def fill(self) -> None:
        """List the registered trackers and pick the remembered one (or the preferred default)."""
        specs = registry.all_trackers()
        self.tracker_combo.blockSignals(True)
        self.tracker_combo.clear()
        for spec in specs:
            self.tracker_combo.addItem(self._tracker_label(spec), spec.name)
            if spec.experimental:
                self.tracker_combo.setItemData(
                    self.tracker_combo.count() - 1, registry.experimental_label(spec), Qt.ToolTipRole
                )
        self.tracker_combo.blockSignals(False)
        if not specs:
            problems = "; ".join(f"{m}: {e}" for m, e in registry.IMPORT_ERRORS.items())
            self.message.emit("error", "No trackers are available." + (f" ({problems})" if problems else ""))
            return
        if registry.IMPORT_ERRORS:
            # a plugin that failed to load costs one line; the other trackers are offered as usual
            problems = "; ".join(f"{m}: {e}" for m, e in registry.IMPORT_ERRORS.items())
            self.message.emit("warning", f"Not loaded: {problems}")
        names = [s.name for s in specs]
        last = self.prefs.tracker()
        # a new user starts with the default where its checkpoint is found, else with the tracker
        # trained here, which needs no download (registry.PREFERRED_TRACKERS)
        choice = last if last in names else registry.preferred_tracker()
        self.tracker_combo.setCurrentIndex(names.index(choice))
        self.tracker_combo.currentIndexChanged.connect(self._tracker_changed)
        self.device_combo.currentIndexChanged.connect(lambda _: self.configChanged.emit())
        self.engine_combo.currentIndexChanged.connect(self._engine_changed)
        self._tracker_changed()

    def engine(self) -> str:
        return self.engine_combo.currentData() or "auto"

    def _engine_changed(self) -> None:
        self.prefs.set_engine(self.engine())
        self.configChanged.emit()

    def _tracker_label(self, spec) -> str:
        """The picker's text: the title, marked where no checkpoint is known (none chosen, none in a
        model folder)."""
        title = spec.title or spec.name
        if spec.experimental:  # trained here, not shown to beat the training-free floor (SRE)
            title = f"{title}  — experimental"
        if spec.needs_weights and self.prefs.known_weights(spec) is None:
            return f"{title}  — no checkpoint"
        return title

    def _refresh_item_labels(self) -> None:
        for i in range(self.tracker_combo.count()):
            self.tracker_combo.setItemText(i, self._tracker_label(registry.get(self.tracker_combo.itemData(i))))

    def refresh_labels(self) -> None:
        """After a download: labels say again which checkpoints are present, and the current
        tracker's checkpoint field is filled in."""
        self._refresh_item_labels()
        self._fill_weights(self.tracker_name())

    def tracker_name(self) -> str:
        return self.tracker_combo.currentData() or ""

    def device(self) -> str:
        return self.device_combo.currentData()

    def weights(self) -> str | None:
        return self.weights_edit.text().strip() or None

    def select_tracker(self, name: str, weights: str | None = None) -> None:
        """Pick a tracker (and optionally its checkpoint) as a user would."""
        i = self.tracker_combo.findData(name)
        if i < 0:
            self.message.emit("error", f"Unknown tracker {name!r}")
            return
        self.tracker_combo.blockSignals(True)
        self.tracker_combo.setCurrentIndex(i)
        self.tracker_combo.blockSignals(False)
        if weights is not None:
            self.prefs.set_weights(name, weights)
            self._refresh_item_labels()
        self._fill_weights(name, weights)
        self.configChanged.emit()

    def show_choice(self, name: str, weights: str | None) -> None:
        """Put the picker and the checkpoint field back to `name` and `weights` without asking for a
        load (the user kept the run of the tracker loaded)."""
        i = self.tracker_combo.findData(name)
        if i >= 0:
            self.tracker_combo.blockSignals(True)
            self.tracker_combo.setCurrentIndex(i)
            self.tracker_combo.blockSignals(False)
            self.weights_edit.blockSignals(True)
            self._fill_weights(name, weights or None)
            self.weights_edit.blockSignals(False)

    def _tracker_changed(self) -> None:
        self._fill_weights(self.tracker_name())
        self.configChanged.emit()

    def _fill_weights(self, name: str, path: str | None = None) -> None:
        spec = registry.get(name)
        path = path if path is not None else (self.prefs.known_weights(spec) or "")
        self.weights_edit.setText(path)
        self.weights_edit.setEnabled(spec.needs_weights)
        self.weights_button.setEnabled(spec.needs_weights)
        if spec.needs_weights and not path:
            self.weights_edit.setPlaceholderText(f"{spec.weights_file or 'checkpoint'} not found — choose it")

    def choose_weights(self) -> None:
        name = self.tracker_name()
        start = self.weights_edit.text() or self.prefs.last_dir()
        path, _ = QFileDialog.getOpenFileName(
            self, f"Checkpoint for {name}", start, "Checkpoints (*.pth *.pt *.pkl *.model *.tar);;All files (*)"
        )
        self.after_dialog()
        if path:
            self.weights_edit.setText(path)
            self._weights_edited()

    def _weights_edited(self) -> None:
        name = self.tracker_name()
        if name:
            self.prefs.set_weights(name, self.weights_edit.text().strip())
            self._refresh_item_labels()  # "— no checkpoint" goes once one is chosen
            self.configChanged.emit()
