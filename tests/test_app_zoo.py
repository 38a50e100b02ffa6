"""The GUI's model-zoo action: a real download from a local server with a progress bar, and the
offline failure shown in the dialog with nothing left behind."""

import hashlib
import os

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtCore import Qt  # noqa: E402

from tests.app_support import make_window  # noqa: E402
from tests.test_zoo import PAYLOAD, _entry, _leftovers, server  # noqa: E402,F401  (server is a fixture)


def test_zoo_dialog_downloads_with_progress_and_refreshes(qtbot, tmp_path, server):  # noqa: F811 (the fixture)
    base, _stop = server
    window = make_window(qtbot, tmp_path)
    dest = tmp_path / "models"
    entry = _entry(f"{base}/ckpt.pth", sha=hashlib.sha256(PAYLOAD).hexdigest(), size=len(PAYLOAD))
    dialog = window.open_model_zoo([entry], str(dest))
    qtbot.addWidget(dialog)
    assert dialog.table.item(0, 2).text() == "missing"
    seen = []
    dialog.bar.valueChanged.connect(seen.append)
    with qtbot.waitSignal(dialog.downloaded, timeout=30000) as got:
        qtbot.mouseClick(dialog.download_button, Qt.LeftButton)
    assert got.args[0] == os.path.join(str(dest), "sub", "ckpt.pth")
    assert open(got.args[0], "rb").read() == PAYLOAD
    assert seen and seen[-1] == len(PAYLOAD)  # the bar reached the end
    assert dialog.table.item(0, 2).text() == "present"
    assert "Saved" in dialog.message.text()


def test_zoo_dialog_offline_shows_the_url_and_keeps_nothing(qtbot, tmp_path, server):  # noqa: F811 (the fixture)
    base, stop = server
    stop()  # the server is gone: as offline here
    window = make_window(qtbot, tmp_path)
    dest = tmp_path / "models"
    entry = _entry(f"{base}/ckpt.pth")
    dialog = window.open_model_zoo([entry], str(dest))
    qtbot.addWidget(dialog)
    job = dialog.download_selected()
    assert job is not None
    qtbot.waitUntil(lambda: job.isFinished() and dialog.download_button.isEnabled(), timeout=30000)
    text = dialog.message.text()
    assert "cannot download" in text and entry.url in text and str(dest) in text
    assert not dest.exists() or _leftovers(str(dest)) == []
    assert dialog.table.item(0, 2).text() == "missing"


def test_picker_marks_trackers_whose_checkpoint_is_missing(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMSCOPE_MODELS", str(tmp_path / "empty"))
    window = make_window(qtbot, tmp_path)
    labels = {
        window.tracker_combo.itemData(i): window.tracker_combo.itemText(i) for i in range(window.tracker_combo.count())
    }
    if "siamrpnpp-r50" in labels:
        assert labels["siamrpnpp-r50"].endswith("no checkpoint")
    if "siamscope-effnet" in labels:
        assert "no checkpoint" not in labels["siamscope-effnet"]
