"""The leave-one-video-out machinery behind the default tracker's choice (issue 13): folds that
never see their video, the table that scores each video with its own fold, and the preferred
tracker when NanoTrack v2's checkpoint is missing."""

import json
import os

import cv2
import numpy as np

from tests.conftest import ROOT, shared_path


def test_leave_out_drops_the_video_and_an_unknown_one_is_refused(tmp_path, capsys):
    from trackers.tools import cli
    from trackers.train.pairs import TRAIN_VIDEOS, Library

    data = os.path.dirname(os.path.dirname(shared_path("data", "videos", "box.mp4")))
    lib = Library(data, frames_per_video=4, videos=tuple(v for v in TRAIN_VIDEOS if v != "box.mp4"))
    assert "box.mp4" not in lib.video_names and lib.video_names
    rc = cli.main(["train", "--leave-out", "bag.avi", "--out", str(tmp_path / "w.pth"), "--pairs", "8"])
    assert rc == 2 and "--leave-out bag.avi: not a training video" in capsys.readouterr().err
    assert not (tmp_path / "w.pth").exists()


def _mini_sequence(root, name, n=8, absent_from=6):
    """The first n frames of bag written as a sequence folder, ground truth from the bench, NaN from
    absent_from on; read back as `eval` reads it."""
    from trackers.run.sequences import load_sequence, write_sequence

    gt = np.loadtxt(shared_path("bench", "bag", "groundtruth.txt"), delimiter=",")[:n]
    gt[absent_from:] = np.nan
    cap = cv2.VideoCapture(shared_path("data", "videos", "bag.avi"))
    frames = [cap.read()[1] for _ in range(n)]
    cap.release()
    write_sequence(str(root / name), frames, gt)
    seq = load_sequence(str(root / name))
    assert len(seq.frames) == n and np.allclose(seq.gt, gt.round(2), equal_nan=True)
    return root / name


def test_table_scores_each_video_with_the_head_that_never_saw_it(tmp_path):
    from trackers.train import lovo

    _mini_sequence(tmp_path / "seqs", "mini")
    folds = tmp_path / "folds"
    folds.mkdir()
    fold = os.path.join(ROOT, "resources", "lovo_folds", "fold_box.pth")
    (folds / "fold_mini.pth").write_bytes(open(fold, "rb").read())
    lines = []
    table = lovo.lovo_table(str(tmp_path / "seqs"), ["siamscope-effnet"], str(folds), log=lines.append)
    row = table["siamscope-effnet"]["mini"]
    assert row["head"] == str(folds / "fold_mini.pth")  # the fold, not the committed head
    assert 0.0 <= row["auc"] <= 1.0 and 0.0 <= row["lt_f"] <= 1.0  # target absent at the end: VOT-LT too
    assert lines and "siamscope-effnet" in lines[0] and "LT-F mini" in lines[0]
    json.dumps(table)  # the record is plain JSON


def test_with_empty_model_folders_the_default_runs_on_the_bundled_checkpoint(monkeypatch, tmp_path):
    from trackers.core import registry
    from trackers.core.paths import resource_path

    monkeypatch.setenv("SIAMSCOPE_MODELS", str(tmp_path / "empty"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    # NanoTrack v2's checkpoint ships in the package (issue 22): no download, no ../shared
    assert registry.find_weights(registry.get("siamscope-default")) == resource_path("nanotrackv2.pth")
    assert registry.preferred_tracker() == "siamscope-default"


def test_without_nanotrack_weights_the_preferred_tracker_needs_no_download(monkeypatch):
    from trackers.core import registry

    assert registry.preferred_tracker() in registry.PREFERRED_TRACKERS
    # a package whose bundled copy was removed, on a machine with no model folders
    monkeypatch.setattr(registry, "find_file", lambda name: None)
    monkeypatch.setattr(registry, "shipped_file", lambda name: None)
    assert not registry.ready(registry.get("siamscope-default"))
    assert registry.preferred_tracker() == "siamscope-effnet"
