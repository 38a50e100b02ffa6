"""Which tracker the worker runs: the picked one (app/tracker_bar.py) is loaded, or refused in place
when its checkpoint is missing; what is loaded is shown in the transport row and the parameter
panel (never what is merely picked); the model zoo refreshes the picker after a download."""

from __future__ import annotations

import os
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from trackers.core import registry

from .params_panel import ParamsPanel
from .tracker_bar import TrackerBar
from .transport import TransportBar
from .worker_protocol import TrackerInfo


class TrackerControl(QObject):
    def __init__(
        self,
        window: QWidget,
        worker,
        tracker_bar: TrackerBar,
        transport: TransportBar,
        params: ParamsPanel,
        show_message: Callable,
        return_focus: Callable[[], None],
        confirm_discard: Callable[[str], bool] = lambda doing: True,
    ):
        """`confirm_discard(doing)`: the question before a switch drops the unexported run (True:
        go on); `doing` names the switch ("switching to SiamFC")."""
        super().__init__(window)
        self.window, self.worker, self.tracker_bar, self.transport, self.params = (
            window,
            worker,
            tracker_bar,
            transport,
            params,
        )
        self.show_message, self.return_focus = show_message, return_focus
        self.confirm_discard = confirm_discard
        self.tracker_info: TrackerInfo | None = None
        self.zoo_dialog = None
        tracker_bar.configChanged.connect(self.configure_tracker)
        tracker_bar.message.connect(show_message)
        tracker_bar.after_dialog = return_focus

    def configure_tracker(self) -> bool:
        """Ask the worker for the picked tracker; False (the loaded one dropped, the fix offered in
        place) when it needs a checkpoint that nobody has chosen."""
        name = self.tracker_bar.tracker_name()
        if not name:
            return False
        spec = registry.get(name)
        weights = self.tracker_bar.weights()
        info = self.tracker_info
        wanted_weights = weights if spec.needs_weights else None
        if info is not None and (info.name, info.weights) != (name, wanted_weights):
            doing = (
                f"switching to {spec.title or name}"
                if info.name != name
                else f"loading {os.path.basename(weights or '') or 'another checkpoint'}"
            )
            if not self.confirm_discard(doing):
                self.tracker_bar.show_choice(info.name, info.weights)  # the run and its tracker stay
                return True
        if spec.needs_weights and weights is None:
            # never leave the previous tracker running under this one's name
            self.worker.unload()
            self.show_tracker(None)
            self.show_message(
                "warning",
                f"{spec.title or name} needs its checkpoint "
                f"({spec.weights_file or 'a .pth file'}). Choose the file, or download it "
                "from the model zoo.",
                actions=[("Choose file…", self.tracker_bar.choose_weights), ("Open model zoo", self.open_model_zoo)],
            )
            return False
        weights = weights if spec.needs_weights else None
        device = self.tracker_bar.device()
        engine = self.tracker_bar.engine()
        wanted = (name, weights, device, engine)
        if info is None or (info.name, info.weights, info.device, info.engine_choice) != wanted:
            self.show_message("info", f"Loading {spec.title or name} on {device.upper()}…")
        self.worker.configure(name, weights, device, engine)
        return True

    def on_tracker_ready(self, info: TrackerInfo | None) -> None:
        self.show_tracker(info)
        if info is not None:
            # only a tracker that loaded is remembered: the next launch must not open on a tracker
            # whose checkpoint is missing
            self.tracker_bar.prefs.set_tracker(info.name)
        # a load overtaken by a later pick (arrowing through the picker) is not news: the message
        # bar keeps what concerns the picked tracker (e.g. its missing checkpoint)
        if info is not None and info.name == self.tracker_bar.tracker_name():
            where = f" from {os.path.basename(info.checkpoint)}" if info.checkpoint else ""
            self.show_message("info", f"{info.name} loaded{where} on {info.device.upper()} ({info.engine})")

    def show_tracker(self, info: TrackerInfo | None) -> None:
        """Transport row and panel say what is loaded (never what is merely picked)."""
        self.tracker_info = info
        self.transport.show_loaded(info)
        if info is None:
            self.params.set_params(None)
            return
        ckpt = f" ({os.path.basename(info.checkpoint)})" if info.checkpoint else ""
        self.params.set_params(info.params, title=info.name + ckpt, defaults=info.defaults)

    def open_model_zoo(self, entries=None, dest_dir=None):
        """The model-zoo dialog (non-modal); a finished download refreshes the picker."""
        from .zoo_dialog import ModelZooDialog

        dialog = ModelZooDialog(self.window, entries, dest_dir)
        dialog.downloaded.connect(lambda _path: self.tracker_bar.refresh_labels())
        dialog.finished.connect(lambda *_: self.return_focus())
        dialog.show()
        self.zoo_dialog = dialog
        return dialog

    def running_download(self):
        """The model zoo's download, while one runs."""
        job = getattr(self.zoo_dialog, "job", None)
        return job if job is not None and job.isRunning() else None
