"""`python main.py bench --reference`: the reference code and ours in alternating processes, one line each.
(Speed itself is not asserted: the machine's load varies; the line's shape and arithmetic are.)"""

import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import shared_path

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _refcode() -> str:
    refs = shared_path("refcode")  # skips, saying why, where ../shared/refcode is absent
    pytest.importorskip("yacs", reason="the reference code needs yacs (the bench extra)")
    return refs


def test_bench_reference_prints_both_rates_and_the_ratio():
    refs = _refcode()
    shared_path("fixtures", "pysot_siamrpn_alex_dwxcorr", "manifest.json")
    shared_path("data", "videos", "bag.avi")
    done = subprocess.run(
        [
            sys.executable,
            "main.py",
            "bench",
            "--reference",
            refs,
            "--trackers",
            "siamrpn-alex",
            "--frames",
            "3",
            "--rounds",
            "1",
            "--threads",
            "1",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr + done.stdout
    out = done.stdout
    header = re.search(
        r"reference vs ours, \d{4}-\d\d-\d\d \d\d:\d\d UTC, load average [\d. ]+ on \d+ cores: "
        r"bag\.avi, 3 tracked frames, 1 thread\(s\) on both sides",
        out,
    )
    line = re.search(
        r"^  siamrpn-alex +reference +(\d+\.\d\d) fps +ours \((torch|onnxruntime)\) +(\d+\.\d\d) fps "
        r"+ratio (\d+\.\d\d)$",
        out,
        re.M,
    )
    assert header and line, out
    ref, ours, ratio = float(line.group(1)), float(line.group(3)), float(line.group(4))
    assert ref > 0 and ours > 0
    assert ratio == pytest.approx(ours / ref, abs=0.011)


def test_bench_reference_without_the_reference_folder_is_one_line_error(tmp_path, capsys):
    from trackers.tools.cli import main

    rc = main(["bench", "--reference", str(tmp_path), "--trackers", "siamrpn-alex", "--frames", "2", "--rounds", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "pysot" in err[0], err


def test_bench_reference_rejects_a_tracker_without_reference_code(capsys):
    refs = _refcode()
    from trackers.tools.cli import main

    rc = main(["bench", "--reference", refs, "--trackers", "siamfc", "--frames", "2", "--rounds", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc != 0 and len(err) == 1 and "no reference code for siamfc" in err[0], err


def test_the_shims_give_the_reference_what_it_reads():
    import cv2
    import numpy as np

    from trackers.tools import bench_reference

    saved = cv2.__version__
    before = {alias for alias in ("float", "int", "bool") if alias in np.__dict__}
    try:
        bench_reference._shim_numpy()
        assert np.float is float and np.int is int
        # pysot reads findContours' arity from cv2.__version__[-5]; today's OpenCV returns two values
        assert len(cv2.findContours(np.zeros((4, 4), np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)) == 2
        for version in ("4.10.0", "5.1.0", "4.5.0"):
            cv2.__version__ = version
            bench_reference._shim_opencv_version()
            assert cv2.__version__[-5] == "4", version
    finally:
        cv2.__version__ = saved
        for alias in {"float", "int", "bool"} - before:  # the shim's aliases leave with the test
            delattr(np, alias)


def test_a_child_past_its_timeout_is_killed_with_what_it_started(tmp_path):
    from trackers.tools import bench_reference

    pid_file = tmp_path / "grandchild.pid"
    # the child starts a grandchild that sleeps, says its pid, and then waits on it forever
    script = (
        "import subprocess, sys\n"
        "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "p.wait()\n"
    )
    with pytest.raises(bench_reference.ChildFailed, match=r"timed out after 5 s \(killed\)"):
        bench_reference.run_child([sys.executable, "-c", script], dict(os.environ), timeout=5)
    pid = int(pid_file.read_text())

    def state() -> str:  # gone, or a zombie waiting for init to reap it: either way no longer running
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    # SIGKILL is delivered at once but the kernel tears the process down on its own time (CI saw it
    # still 'R' when read right after): wait for that, up to a deadline; a grandchild the kill
    # missed would sleep on for ten minutes and fail here
    deadline = time.monotonic() + 20
    while state() not in ("gone", "Z", "X") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert state() in ("gone", "Z", "X"), state()


def test_a_failed_child_is_reported_and_the_run_goes_on(tmp_path, monkeypatch, capsys):
    pytest.importorskip("yacs", reason="bench_reference checks that the reference code's yacs is there")
    from trackers.tools import bench_reference

    for sub in ("pysot", "NanoTrack"):
        (tmp_path / sub).mkdir()
    calls = []

    def fake_child(side, name, common, timeout):
        calls.append((side, name, timeout))
        if name == "siamrpnpp-r50":
            raise bench_reference.ChildFailed(f"reference side timed out after {timeout:g} s (killed)")
        return (10.0 if side == "ref" else 16.0), "onnxruntime"

    monkeypatch.setattr(bench_reference, "_run_child", fake_child)
    rows = bench_reference.bench_reference(
        str(tmp_path),
        ["siamrpnpp-r50", "siamrpn-alex"],
        "bag.avi",
        (1, 2, 3, 4),
        "fx",
        "nano",
        2,
        frames=3,
        rounds=2,
        child_timeout=7,
    )
    out = capsys.readouterr().out
    assert "a child killed after 7 s" in out
    assert re.search(r"^  siamrpnpp-r50 +failed: reference side timed out after 7 s \(killed\)$", out, re.M), out
    assert re.search(
        r"^  siamrpn-alex +reference +10\.00 fps +ours \(onnxruntime\) +16\.00 fps +ratio 1\.60$", out, re.M
    )
    assert rows == [("siamrpn-alex", 10.0, 16.0, 1.6)]
    assert [c for c in calls if c[1] == "siamrpn-alex"] == [
        ("ref", "siamrpn-alex", 7),
        ("ours", "siamrpn-alex", 7),
        ("ours", "siamrpn-alex", 7),
        ("ref", "siamrpn-alex", 7),
    ]


def test_keys_the_reference_cfg_refuses_are_left_out_of_its_config():
    yacs_config = pytest.importorskip("yacs.config", reason="the reference code's config system")
    from trackers.tools.bench_reference import known_keys_only

    CN = yacs_config.CfgNode
    known = CN()
    known.BACKBONE = CN()
    known.BACKBONE.TYPE = "res50"
    known.BACKBONE.KWARGS = CN(new_allowed=True)
    # pysot's long-term experiment, as its config.yaml has it
    loaded = CN(
        {
            "BACKBONE": {
                "TYPE": "resnet50",
                "KWARGS": {"used_layers": [2, 3, 4]},
                "CHANNELS": [512, 1024, 2048],
            },
            "ADJUST": {"ADJUST_CHANNEL": [128]},
        }
    )
    assert known_keys_only(loaded, known) == ["BACKBONE.CHANNELS", "ADJUST"]
    known.merge_from_other_cfg(loaded)  # what merge_from_file refused before
    assert known.BACKBONE.TYPE == "resnet50" and known.BACKBONE.KWARGS.used_layers == [2, 3, 4]
