"""The compute policy (trackers/core/compute.py): decided once, applied to torch, ONNX Runtime and
OpenCV, overridable from the CLI, printed by bench and recorded in exports."""

import json
import os
import subprocess
import sys

import cv2
import pytest
import torch

from tests.conftest import ROOT, shared_path
from trackers.core import compute


@pytest.fixture
def restore_threads():
    torch_n, cv_n = torch.get_num_threads(), cv2.getNumThreads()
    applied = compute._applied
    yield
    torch.set_num_threads(torch_n)
    cv2.setNumThreads(cv_n)
    compute._applied = applied


def test_decide_leaves_a_core_free_and_keeps_one_for_the_gui():
    # one core left to the rest of the machine (a busy core then stalls no parallel region:
    # the measurements are in trackers/compute.py's docstring), one more kept for the Qt thread
    assert compute.decide(cores=4).threads == 3
    gui = compute.decide(cores=4, gui=True)
    assert gui.threads == 2 and gui.gui_reserved_cores == 1
    assert "1 core kept for the GUI, 1 left to the rest of the machine" in gui.summary()
    two = compute.decide(cores=2), compute.decide(cores=2, gui=True)
    assert [p.threads for p in two] == [1, 1] and two[1].gui_reserved_cores == 0
    assert compute.decide(cores=1).threads == 1 and compute.decide(cores=1, gui=True).threads == 1  # never zero
    chosen = compute.decide(2, cores=4, gui=True)
    assert chosen.threads == 2 and chosen.source == "preference" and chosen.gui_reserved_cores == 0
    cli = compute.decide(1, cores=2)
    assert (cli.threads, cli.ort_intra_op_threads, cli.opencv_threads, cli.source) == (1, 1, 1, "--threads")
    assert cli.torch_interop_threads == 1 and cli.ort_inter_op_threads == 1 and not cli.ort_allow_spinning
    with pytest.raises(ValueError):
        compute.decide(-1)


def test_apply_sets_torch_and_opencv(restore_threads):
    policy = compute.apply(compute.decide(1, cores=2))
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1
    assert compute.current() is policy
    compute.apply(compute.decide(2, cores=2))
    assert torch.get_num_threads() == 2 and cv2.getNumThreads() == 2


def test_onnx_sessions_follow_the_policy(restore_threads):
    pytest.importorskip("onnxruntime")
    from trackers.core import registry

    policy = compute.apply(compute.decide(1, cores=2))
    opts = compute.ort_session_options()
    assert opts.intra_op_num_threads == 1 and opts.inter_op_num_threads == 1
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    # a real tracker's session, as built by the registry
    tracker = registry.build("siamscope-effnet", None, engine="onnxruntime")
    got = tracker.onnx_engine.session.get_session_options()
    assert got.intra_op_num_threads == policy.ort_intra_op_threads == 1
    assert got.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert tracker.onnx_engine.session.get_providers()[0] == (
        "CUDAExecutionProvider" if "CUDAExecutionProvider" in compute.ort_providers() else "CPUExecutionProvider"
    )


def test_cuda_provider_only_with_a_gpu():
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    providers = compute.ort_providers()
    assert providers[-1] == "CPUExecutionProvider"
    has_gpu = "CUDAExecutionProvider" in ort.get_available_providers() and torch.cuda.is_available()
    assert ("CUDAExecutionProvider" in providers) == has_gpu


def test_main_sets_the_openmp_wait_policy_before_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = (
        "import sys, os; sys.path.insert(0, '.'); import main; "
        "print(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "False"]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # the user's own setting wins
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split()[0] == "ACTIVE"


def test_track_threads_and_engine_applied(restore_threads, tmp_path, capsys):
    from trackers.tools import cli
    from trackers.tools.bench import read_frames

    frames = read_frames(shared_path("data", "videos", "bag.avi"), 4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:04d}.png"), f)
    out = tmp_path / "boxes.txt"
    rc = cli.main(
        [
            "track",
            str(folder),
            "--tracker",
            "siamscope-effnet",
            "--box",
            "292.23,128.36,145.96,132.47",
            "--threads",
            "1",
            "--engine",
            "torch",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert torch.get_num_threads() == 1 and cv2.getNumThreads() == 1 and compute.current().threads == 1
    assert "siamscope-effnet (torch)" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 4
    rc = cli.main(["track", str(folder), "--box", "1,2,3,4", "--threads", "-2"])
    assert rc == 2 and "--threads must be" in capsys.readouterr().err


def test_bench_prints_the_policy():
    shared_path("models", "nanotrack", "nanotrackv2_backbone_sim.onnx")
    out = subprocess.run(
        [
            sys.executable,
            "main.py",
            "bench",
            "--frames",
            "3",
            "--rounds",
            "1",
            "--no-pysot",
            "--threads",
            "1",
            "--engine",
            "onnxruntime",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    first = out.stdout.splitlines()[0]
    assert first.startswith("compute policy (--threads): ") and "1 compute threads" in first
    assert "ONNX Runtime intra-op 1 / inter-op 1, spinning off" in first and "OMP_WAIT_POLICY=PASSIVE" in first
    assert "nanotrack-v2 (ours, onnxruntime)" in out.stdout


def test_results_export_records_the_policy(tmp_path):
    from trackers.core.base import TrackResult
    from trackers.run.results import RunRecord, export_results

    policy = compute.decide(1, cores=2)
    run = RunRecord(tracker="nanotrack-v2", source="bag.avi", compute=dict(policy.describe(), engine="onnxruntime"))
    run.add_init(0, (1, 2, 3, 4))
    run.add(1, TrackResult(box=(2, 3, 4, 5), score=0.9))
    path = tmp_path / "run.json"
    export_results(str(path), run)
    data = json.loads(path.read_text())
    assert data["compute"]["threads"] == 1 and data["compute"]["engine"] == "onnxruntime"
    assert data["compute"]["ort_allow_spinning"] is False and data["compute"]["cores"] == 2
