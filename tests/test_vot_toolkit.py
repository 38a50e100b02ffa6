"""The official VOT toolkit runs SiamScope trackers over TraX and scores them as we do.

`vot-setup` writes a workspace from ../shared/bench; the toolkit (vot-toolkit 0.9.0, in a venv of
its own because it installs opencv-python over our opencv-contrib-python's cv2/) runs `vot
evaluate` (the one-pass, unsupervised experiment) and `vot analysis`; the accuracy it reports must
equal ours over the trajectories it stored.

The venv is made once under $SIAMSCOPE_VOT_VENV (default /tmp/siamscope-vot-toolkit-0.9.0) with
`pip install vot-toolkit==0.9.0 attributee==0.1.9`; the test skips, saying why, where that cannot
be installed (no registry) or where the tracker side's `trax` package (the `vot` extra:
pip install -e '.[vot]') is absent. `.ci/vot` is the optional CI job that runs it."""

import glob
import json
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from tests.conftest import shared_path
from trackers.run import metrics as M
from trackers.tools import datasets as D
from trackers.tools import vot_client as V
from trackers.tools.cli import main

pytestmark = pytest.mark.slow
VENV = os.environ.get("SIAMSCOPE_VOT_VENV", "/tmp/siamscope-vot-toolkit-0.9.0")
PINS = ["vot-toolkit==0.9.0", "attributee==0.1.9"]
TRACKERS = ["csrt", "effnet-siamfc-floor"]
FRAMES = 30


def _toolkit() -> str:
    pytest.importorskip("trax", reason="the tracker side needs vot-trax (pip install -e '.[vot]'); run .ci/vot")
    vot = os.path.join(VENV, "bin", "vot")
    if not os.path.isfile(vot):
        made = subprocess.run([sys.executable, "-m", "venv", VENV], capture_output=True, text=True)
        if made.returncode == 0:
            made = subprocess.run(
                [os.path.join(VENV, "bin", "pip"), "install", "-q", *PINS], capture_output=True, text=True
            )
        if made.returncode != 0 or not os.path.isfile(vot):
            pytest.skip(f"cannot install {' '.join(PINS)} into {VENV}: {made.stderr.strip()[-300:]}")
    return vot


def test_vot_toolkit_one_pass_accuracy_equals_ours(tmp_path, capsys):
    vot = _toolkit()
    ws = tmp_path / "workspace"
    assert (
        main(
            [
                "vot-setup",
                str(ws),
                "--trackers",
                ",".join(TRACKERS),
                "--sequences",
                shared_path("bench"),
                "--max-frames",
                str(FRAMES),
            ]
        )
        == 0
    )
    ids = [V.toolkit_id(t) for t in TRACKERS]
    assert "siamscope-csrt" in capsys.readouterr().out
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the toolkit's own interpreter
    run = subprocess.run(
        [vot, "evaluate", "--workspace", str(ws), *ids], cwd=ws, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0 and "Evaluation concluded" in run.stdout + run.stderr, run.stdout + run.stderr
    run = subprocess.run(
        [vot, "analysis", "--workspace", str(ws), "--format", "json", *ids],
        cwd=ws,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    (report,) = glob.glob(str(ws / "analysis" / "*.json"))
    with open(report) as f:
        data = json.load(f)
    assert list(data["trackers"]) == ids
    accuracy = data["results"]["baseline"]["results"][0]  # the stack's one analysis: one value per tracker
    toolkit = {tid: accuracy[i][0] for i, tid in enumerate(ids)}

    # our reading of the converted workspace, and of the trajectories the toolkit stored
    sequences = D.load_dataset(str(ws / "sequences"))
    assert [s.name for s in sequences] == ["bag", "cup"] and all(len(s.frames) == FRAMES for s in sequences)
    sizes = {s.name: cv2.imread(s.frames[0]).shape[1::-1] for s in sequences}
    for tid in ids:
        traj = {
            s.name: V.read_vot_trajectory(str(ws / "results" / tid / "baseline" / s.name / f"{s.name}_001.bin"))
            for s in sequences
        }
        assert all(len(t) == FRAMES and t[0] == 1 for t in traj.values())  # 1: the initialisation frame
        ours = V.toolkit_accuracy(traj, sequences, sizes)
        assert ours == pytest.approx(toolkit[tid], abs=1e-9), tid
        # the rasterised measure is close to the continuous IoU of the same boxes
        cont = np.mean([M.iou(np.array(t[1:]), s.gt[1:]).mean() for s, t in zip(sequences, traj.values())])
        assert abs(cont - ours) < 0.02 and 0.3 < ours < 1.0, (tid, cont, ours)

    # the tracker under the toolkit gives the boxes `eval` gives (TraX carries float32 boxes)
    assert (
        main(
            [
                "eval",
                str(ws / "sequences"),
                "--trackers",
                "csrt",
                "--threads",
                "1",
                "--quiet",
                "--results",
                str(tmp_path / "res"),
            ]
        )
        == 0
    )
    for s in sequences:
        ours = np.loadtxt(tmp_path / "res" / "csrt" / f"{s.name}.txt", delimiter=",")
        theirs = np.array(
            V.read_vot_trajectory(str(ws / "results" / "siamscope-csrt" / "baseline" / s.name / f"{s.name}_001.bin"))[
                1:
            ]
        )
        assert M.iou(ours[1:], theirs).min() > 0.99, s.name


def test_toolkit_ids():
    assert V.toolkit_id("csrt") == "siamscope-csrt" and V.toolkit_id("siamscope-default") == "siamscope-default"


def test_vot_setup_refuses_a_workspace_over_its_sequences(tmp_path, capsys):
    assert main(["vot-setup", shared_path("bench"), "--trackers", "csrt", "--sequences", shared_path("bench")]) == 2
    assert "must not be the sequences folder" in capsys.readouterr().err


def test_vot_binary_and_text_trajectories_read_the_same(tmp_path):
    import struct

    rows = [1, (10.5, 20.25, 30.0, 40.0), 2, (1.0, 2.0, 3.0, 4.0)]
    with open(tmp_path / "t_001.bin", "wb") as f:
        f.write(struct.pack("<hI", 1, len(rows)))
        for r in rows:
            f.write(struct.pack("<BI", 0, r) if isinstance(r, int) else struct.pack("<Bffff", 1, *r))
    (tmp_path / "t_001.txt").write_text("1\n10.5,20.25,30,40\n2\n1,2,3,4\n")
    assert V.read_vot_trajectory(str(tmp_path / "t_001.bin")) == rows
    assert V.read_vot_trajectory(str(tmp_path / "t_001.txt")) == rows


def test_vot_overlap_is_the_rasterised_pixel_count():
    """A rectangle rounded to whole pixels and clipped to the image, as the toolkit counts pixels."""
    gt = np.array([[10.0, 10.0, 20.0, 20.0]])
    assert V.vot_overlaps(np.array([[10.4, 10.4, 20.4, 20.4]]), gt, (100, 100))[0] == 1.0
    # two 20x20 rectangles overlapping by half their height: 200 / 600
    assert V.vot_overlaps(np.array([[10.0, 20.0, 20.0, 20.0]]), gt, (100, 100))[0] == pytest.approx(0.5 / 1.5)
    # clipped at the image's right edge (width 25): the prediction keeps 5 columns of its 20
    assert V.vot_overlaps(np.array([[20.0, 10.0, 20.0, 20.0]]), gt, (25, 100))[0] == pytest.approx(100 / 300)
