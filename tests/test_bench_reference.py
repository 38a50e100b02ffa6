"""`python main.py bench --reference`: the reference code and ours in alternating processes, one line each.
(Speed itself is not asserted: the machine's load varies; the line's shape and arithmetic are.)"""

import os
import re
import subprocess
import sys

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
