"""The window says which model produced what is on screen and in the exports (issue 14, item 1):
the tracker bar, the panel and the export JSON name the tracker actually loaded, its checkpoint
file and sha256 (the built-in weights in resources/ included); a tracker without a checkpoint is
refused in place with the fix offered, and the previous tracker is not silently kept."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from tests.app_support import BAG, drag_box, make_window, require_nanotrack, wait_drawn_latest  # noqa: E402
from tests.conftest import shared_path  # noqa: E402
from trackers.run.results import file_sha256  # noqa: E402


def _needs_checkpoint(window) -> str:
    from trackers.core import registry

    for i in range(window.tracker_combo.count()):
        spec = registry.get(window.tracker_combo.itemData(i))
        if spec.needs_weights and registry.find_weights(spec) is None and spec.name != "nanotrack-v2":
            return spec.name
    pytest.skip("every tracker that needs a checkpoint has one here")


def _pick(qtbot, window, name: str) -> None:
    """Choose a tracker in the picker with the keyboard, as a user would."""
    combo = window.tracker_combo
    combo.setFocus()
    target = combo.findData(name)
    while combo.currentIndex() != target:
        QTest.keyClick(combo, Qt.Key_Down if combo.currentIndex() < target else Qt.Key_Up)
    qtbot.wait(10)


def test_default_tracker_bar_panel_and_export_name_its_builtin_weights(qtbot, tmp_path):
    from trackers.families.effnet import WEIGHTS

    window = make_window(qtbot, tmp_path)
    _pick(qtbot, window, "siamscope-effnet")
    window.open_source(shared_path(*BAG))
    qtbot.waitUntil(
        lambda: (
            window.tracker_info is not None
            and window.tracker_info.name == "siamscope-effnet"
            and window.drawn_packet is not None
        ),
        timeout=60000,
    )
    sha = file_sha256(WEIGHTS)
    assert window.tracker_info.checkpoint == WEIGHTS and window.tracker_info.checkpoint_sha256 == sha
    assert "default_tracker.pth" in window.loaded_label.text() and sha[:8] in window.loaded_label.text()
    assert sha in window.loaded_label.toolTip()
    assert "default_tracker.pth" in window.params.title.text()
    assert "Stop" == window.stop_button.text() and not window.stop_button.isEnabled()

    drag_box(qtbot, window.video, (292.23, 128.36, 145.96, 132.47))
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.store.record is not None and len(window.store.record.frames) >= 4, timeout=60000)
    assert window.stop_button.isEnabled()
    QTest.mouseClick(window.stop_button, Qt.LeftButton)
    wait_drawn_latest(qtbot, window)
    qtbot.waitUntil(lambda: not window.stop_button.isEnabled())
    out = tmp_path / "run.json"
    assert window.export_results(str(out))
    data = json.loads(out.read_text())
    assert data["tracker"] == "siamscope-effnet"
    assert data["checkpoint"] == WEIGHTS and data["checkpoint_sha256"] == sha


def test_tracker_without_checkpoint_is_refused_in_place_and_previous_one_dropped(qtbot, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMSCOPE_MODELS", str(tmp_path / "empty"))
    window = make_window(qtbot, tmp_path)
    window.open_source(shared_path(*BAG))
    qtbot.waitUntil(lambda: window.tracker_info is not None and window.drawn_packet is not None, timeout=60000)
    before = window.tracker_info.name
    name = _needs_checkpoint(window)
    _pick(qtbot, window, name)
    assert window.tracker_combo.currentData() == name
    # the worker has dropped the previous tracker and the window says so
    wait_drawn_latest(qtbot, window)
    assert window.worker.tracker is None and window.tracker_info is None
    assert "no tracker" in window.loaded_label.text() and before not in window.loaded_label.text()
    assert window.params.title.text() == "No tracker loaded"
    buttons = {b.text(): b for b in window.messages.action_buttons}
    assert set(buttons) == {"Choose file…", "Open model zoo"} and window.messages.isVisible()

    # Start with a drawn box is refused: nothing is tracked by anything
    drag_box(qtbot, window.video, (292.23, 128.36, 145.96, 132.47))
    QTest.mouseClick(window.start_button, Qt.LeftButton)
    wait_drawn_latest(qtbot, window)
    assert window.store.record is None and not window.tracking
    assert {b.text() for b in window.messages.action_buttons} == {"Choose file…", "Open model zoo"}

    QTest.mouseClick(window.messages.action_buttons[1], Qt.LeftButton)
    qtbot.waitUntil(lambda: getattr(window, "zoo_dialog", None) is not None and window.zoo_dialog.isVisible())
    window.zoo_dialog.close()


def test_picker_label_follows_the_checkpoint_typed_in(qtbot, tmp_path, monkeypatch):
    from trackers.core import registry

    weights = require_nanotrack()
    monkeypatch.setenv("SIAMSCOPE_MODELS", str(tmp_path / "empty"))
    monkeypatch.setattr(registry, "shipped_file", lambda name: None)  # as if the bundled copy were gone
    window = make_window(qtbot, tmp_path)
    _pick(qtbot, window, "nanotrack-v2")
    i = window.tracker_combo.findData("nanotrack-v2")
    assert window.tracker_combo.itemText(i).endswith("no checkpoint")
    QTest.mouseClick(window.weights_edit, Qt.LeftButton)
    QTest.keyClicks(window.weights_edit, weights)
    QTest.keyClick(window.weights_edit, Qt.Key_Return)
    assert "no checkpoint" not in window.tracker_combo.itemText(i)
    qtbot.waitUntil(
        lambda: window.tracker_info is not None and window.tracker_info.name == "nanotrack-v2", timeout=60000
    )
    assert window.tracker_info.checkpoint == weights
    assert file_sha256(weights)[:8] in window.loaded_label.text()
    assert "nanotrackv2.pth" in window.params.title.text()


def test_loaded_checkpoint_names_the_file_each_tracker_reads(tmp_path, monkeypatch):
    from trackers.core import registry
    from trackers.families.effnet import WEIGHTS

    monkeypatch.setenv("SIAMSCOPE_MODELS", str(tmp_path))
    assert registry.loaded_checkpoint(registry.get("siamscope-effnet")) == WEIGHTS
    floor = registry.loaded_checkpoint(registry.get("effnet-siamfc-floor"))
    assert floor and floor.endswith(".pth") and file_sha256(floor)
    spec = registry.get("nanotrack-v2")
    bundled = registry.shipped_file("nanotrackv2.pth")
    assert bundled and registry.loaded_checkpoint(spec) == bundled  # none chosen, none found: the bundled copy
    given = str(tmp_path / "mine.pth")
    assert registry.loaded_checkpoint(spec, given) == given
    (tmp_path / "nanotrackv2.pth").write_bytes(b"x")
    assert registry.loaded_checkpoint(spec) == str(tmp_path / "nanotrackv2.pth")  # found in a model folder
