"""The app's compute settings: the engine combo in the tracker bar and the remembered thread count
(Settings ▸ Compute threads) reach the worker's tracker and are written into the results export;
the channel maps are computed only while the channel grid is shown."""

import json

import pytest

pytest.importorskip("pytestqt")

import cv2  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402

from tests.app_support import ground_truth, open_bag, require_nanotrack, wait_drawn_latest  # noqa: E402
from tests.conftest import shared_path  # noqa: E402
from trackers.core import compute  # noqa: E402


@pytest.fixture
def restore_threads():
    torch_n, cv_n, applied = torch.get_num_threads(), cv2.getNumThreads(), compute._applied
    yield
    torch.set_num_threads(torch_n)
    cv2.setNumThreads(cv_n)
    compute._applied = applied


def window_with(qtbot, tmp_path, **values):
    from app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "siamscope.ini"), QSettings.IniFormat)
    # the teardown closes the window with its run unexported: nobody is there to answer the question
    settings.setValue("ask_before_closing", False)
    for k, v in values.items():
        settings.setValue(k, v)
    window = MainWindow(settings=settings)
    qtbot.addWidget(window)
    window.resize(1400, 880)
    window.show()
    qtbot.waitExposed(window)
    return window, settings


def test_engine_and_threads_reach_the_tracker_and_the_export(qtbot, tmp_path, restore_threads):
    weights = require_nanotrack()
    window, settings = window_with(qtbot, tmp_path, **{"compute/threads": 1, "engine": "torch"})
    # the remembered preference is applied at start: one thread for torch and OpenCV
    assert window.compute_policy.threads == 1 and window.compute_policy.source == "preference"
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert window.threads_actions[1].isChecked() and not window.threads_actions[0].isChecked()
    assert window.engine_choice() == "torch"
    open_bag(qtbot, window, weights)
    assert window.tracker_info.engine == "torch" and window.worker.tracker.engine_name == "torch"

    # the combo switches the engine: the worker rebuilds the tracker on ONNX Runtime
    window.engine_combo.setCurrentIndex(window.engine_combo.findData("onnxruntime"))
    qtbot.waitUntil(lambda: window.tracker_info.engine == "onnxruntime", timeout=60000)
    assert settings.value("engine") == "onnxruntime"
    session = window.worker.tracker.onnx_engine.session
    assert session.get_session_options().intra_op_num_threads == 1

    # hide the channel grid: the worker's tracker stops collecting the maps
    gt = ground_truth()
    window.channels_action.setChecked(False)
    window.speed_combo.setCurrentIndex(window.speed_combo.findData(0.0))
    window.video.set_user_box(tuple(gt[0]))
    window.start_tracking()
    qtbot.waitUntil(lambda: window.current_index >= 15, timeout=60000)
    window.set_playing(False)
    wait_drawn_latest(qtbot, window)
    assert window.worker.tracker.collect_channels is False
    assert window.drawn_packet.result.channels == []

    path = tmp_path / "run.json"
    assert window.export_results(str(path))
    data = json.loads(path.read_text())
    assert data["compute"]["threads"] == 1 and data["compute"]["engine"] == "onnxruntime"
    assert data["compute"]["engine_choice"] == "onnxruntime" and data["compute"]["source"] == "preference"

    # Settings ▸ Compute threads ▸ Automatic: remembered, applied by the worker (one core kept)
    before = window.tracker_info
    window.threads_actions[0].trigger()
    assert int(settings.value("compute/threads")) == 0
    auto = compute.decide(0, gui=True)
    qtbot.waitUntil(lambda: window.tracker_info is not before, timeout=60000)  # rebuilt with the new policy
    assert torch.get_num_threads() == auto.threads and compute.current().source == "default"
    assert window.worker.tracker.onnx_engine.session.get_session_options().intra_op_num_threads == auto.threads
    # shown again: the maps come back
    window.channels_action.setChecked(True)
    qtbot.waitUntil(lambda: window.worker.tracker.collect_channels is True, timeout=30000)


def test_gui_bench_drives_the_window_through_a_run(qtbot, tmp_path, restore_threads):
    """`bench --gui`'s child: the real window tracks a short clip at speed max with the heatmap and
    the channel grid shown, and reports what it measured."""
    from scripts.gui_bench import measure
    from trackers.tools.bench import read_frames

    weights = require_nanotrack()
    gt = ground_truth()
    clip = tmp_path / "clip"
    clip.mkdir()
    for i, f in enumerate(read_frames(shared_path("data", "videos", "bag.avi"), 8)):
        cv2.imwrite(str(clip / f"{i:04d}.png"), f)
    result = measure(str(clip), "nanotrack-v2", tuple(gt[0]), weights, engine="onnxruntime", threads=1)
    assert result["frames"] == 7 and result["engine"] == "onnxruntime" and result["threads"] == 1
    assert result["fps"] > 0 and result["wall_fps"] > 0 and result["drawn"] >= 1
    assert result["channels_in_results"]
