"""Dataset layouts as they ship, built in tmp_path from the real ../shared/bench sequences (the
images linked, the annotation files written as each dataset writes them), and results written in
the toolkits' layouts, resumed, never half-written."""

import json
import os

import numpy as np
import pytest

from tests.conftest import shared_path
from trackers.run.results import read_boxes
from trackers.tools import datasets as D
from trackers.tools import eval_results as R
from trackers.tools.cli import main
from trackers.tools.evaluate import EvalError

N = 12  # frames per sample sequence: enough for 2-digit frame numbers (TrackingNet's sort)


def _bench(name):
    d = shared_path("bench", name)
    frames = sorted(os.path.join(d, "img", f) for f in os.listdir(os.path.join(d, "img")))[:N]
    return frames, read_boxes(os.path.join(d, "groundtruth.txt"))[:N]


def _link_frames(frames, folder, pattern):
    os.makedirs(folder, exist_ok=True)
    for i, f in enumerate(frames):
        os.symlink(f, os.path.join(folder, pattern % i))


def _write_rows(path, rows, sep=","):
    with open(path, "w") as f:
        for r in rows:
            f.write(sep.join(f"{v:g}" for v in r) + "\n")


def _frames_target(seq):
    return [os.path.realpath(p) for p in seq.frames]


def test_otb_separators_and_two_targets(tmp_path):
    bag_frames, bag_gt = _bench("bag")
    cup_frames, cup_gt = _bench("cup")
    _link_frames(bag_frames, tmp_path / "Bag" / "img", "%04d.jpg")
    _write_rows(tmp_path / "Bag" / "groundtruth_rect.txt", bag_gt, "\t")  # tabs
    _link_frames(cup_frames, tmp_path / "Cup" / "img", "%04d.jpg")
    _write_rows(tmp_path / "Cup" / "groundtruth_rect.txt", cup_gt, " ")  # spaces
    _link_frames(bag_frames, tmp_path / "Jogging" / "img", "%04d.jpg")  # two targets, as OTB's Jogging
    _write_rows(tmp_path / "Jogging" / "groundtruth_rect.1.txt", bag_gt, ",")
    _write_rows(tmp_path / "Jogging" / "groundtruth_rect.2.txt", bag_gt + 5, ",")
    seqs = D.load_dataset(str(tmp_path))
    assert [s.name for s in seqs] == ["Bag", "Cup", "Jogging.1", "Jogging.2"]
    assert all(s.layout == "otb" and len(s.frames) == N for s in seqs)
    np.testing.assert_allclose(seqs[0].gt, bag_gt, atol=1e-3)
    np.testing.assert_allclose(seqs[1].gt, cup_gt, atol=1e-3)
    np.testing.assert_allclose(seqs[3].gt, bag_gt + 5, atol=1e-3)
    assert _frames_target(seqs[1]) == [os.path.realpath(f) for f in cup_frames]


def _got10k(root, names, absent_at=(), covered_at=(), test_split=False):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "list.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    for name in names:
        frames, gt = _bench(name)
        d = os.path.join(root, name)
        _link_frames(frames, d, "%08d.jpg")
        _write_rows(os.path.join(d, "groundtruth.txt"), gt[:1] if test_split else gt)
        if not test_split:
            with open(os.path.join(d, "absence.label"), "w") as f:
                f.write("".join("1\n" if i in absent_at else "0\n" for i in range(N)))
            with open(os.path.join(d, "cover.label"), "w") as f:
                f.write("".join("0\n" if i in covered_at else "8\n" for i in range(N)))


def test_got10k_list_order_absence_and_cover(tmp_path):
    _got10k(str(tmp_path), ["cup", "bag"], absent_at=(3, 4), covered_at=(7,))
    seqs = D.load_dataset(str(tmp_path))
    assert [s.name for s in seqs] == ["cup", "bag"]  # list.txt's order, not sorted
    s = seqs[0]
    assert s.layout == "got10k" and s.scored
    assert s.absent.tolist() == [i in (3, 4, 7) for i in range(N)]
    assert np.isnan(s.gt[[3, 4, 7]]).all() and not np.isnan(s.gt[[0, 1, 2, 5, 6, 8]]).any()
    np.testing.assert_allclose(s.gt[5], _bench("cup")[1][5], atol=1e-3)


def test_got10k_test_split_is_run_not_scored(tmp_path):
    _got10k(str(tmp_path), ["bag"], test_split=True)
    (s,) = D.load_dataset(str(tmp_path))
    assert not s.scored and s.gt.shape == (N, 4) and np.isnan(s.gt[1:]).all()


def test_lasot_class_folders_with_occlusion_and_out_of_view(tmp_path):
    for cls, name in (("bag", "bag"), ("cup", "cup")):
        frames, gt = _bench(name)
        d = tmp_path / cls / f"{cls}-1"
        _link_frames(frames, d / "img", "%08d.jpg")
        _write_rows(d / "groundtruth.txt", gt)
        (d / "full_occlusion.txt").write_text(",".join("1" if i == 2 else "0" for i in range(N)) + "\n")
        (d / "out_of_view.txt").write_text(",".join("1" if i in (5, 6) else "0" for i in range(N)) + "\n")
        (d / "nlp.txt").write_text(f"the {cls}\n")
    seqs = D.load_dataset(str(tmp_path))
    assert [s.name for s in seqs] == ["bag-1", "cup-1"] and {s.layout for s in seqs} == {"lasot"}
    assert np.flatnonzero(seqs[0].absent).tolist() == [2, 5, 6]
    # one class folder, or one sequence folder, read the same way
    assert [s.name for s in D.load_dataset(str(tmp_path / "cup"))] == ["cup-1"]
    assert [s.name for s in D.load_dataset(str(tmp_path / "cup" / "cup-1"))] == ["cup-1"]


def test_trackingnet_chunks_and_numeric_frame_order(tmp_path):
    for chunk, name in (("TRAIN_0", "bag"), ("TEST", "cup")):
        frames, gt = _bench(name)
        _link_frames(frames, tmp_path / chunk / "frames" / name, "%d.jpg")  # 0.jpg ... 11.jpg
        os.makedirs(tmp_path / chunk / "anno")
        _write_rows(tmp_path / chunk / "anno" / f"{name}.txt", gt[:1] if chunk == "TEST" else gt)
    seqs = D.load_dataset(str(tmp_path))
    assert [s.name for s in seqs] == ["cup", "bag"]  # chunks in name order: TEST, TRAIN_0
    bag = seqs[1]
    assert bag.layout == "trackingnet" and bag.scored and not seqs[0].scored
    # 10.jpg after 9.jpg, not after 1.jpg
    assert _frames_target(bag) == [os.path.realpath(f) for f in _bench("bag")[0]]
    assert [s.name for s in D.load_dataset(str(tmp_path / "TRAIN_0"))] == ["bag"]


def test_vot_sequence_file_polygons_and_rectangles(tmp_path):
    bag_dir = shared_path("bench", "bag")
    poly = np.loadtxt(os.path.join(bag_dir, "groundtruth_poly.txt"), delimiter=",")[:N]
    (tmp_path / "list.txt").write_text("bag\ncup\n")
    for name in ("bag", "cup"):
        frames, gt = _bench(name)
        d = tmp_path / name
        _link_frames(frames, d / "color", "%08d.jpg")
        for i in range(N):  # VOT numbers from 1
            os.rename(d / "color" / f"{N - 1 - i:08d}.jpg", d / "color" / f"{N - i:08d}.jpg")
        (d / "sequence").write_text(f"channels.color=color/%08d.jpg\nformat=default\nfps=30\nname={name}\n")
        _write_rows(d / "groundtruth.txt", poly if name == "bag" else gt)
    bag, cup = D.load_dataset(str(tmp_path))
    assert bag.layout == "vot" and len(bag.frames) == N
    assert _frames_target(bag) == [os.path.realpath(f) for f in _bench("bag")[0]]
    # ../shared/bench/bag/groundtruth.txt is the polygons' min/max rectangle, rounded to 0.01
    np.testing.assert_allclose(bag.gt, _bench("bag")[1], atol=0.011)
    np.testing.assert_allclose(cup.gt, _bench("cup")[1], atol=1e-3)


def test_vot_mask_annotation_is_refused_with_a_message(tmp_path):
    frames, _ = _bench("bag")
    _link_frames(frames, tmp_path / "bag" / "color", "%08d.jpg")
    (tmp_path / "bag" / "groundtruth.txt").write_text("m100,100,20,20,0,5,10,5\n" * N)
    with pytest.raises(EvalError, match="segmentation mask"):
        D.load_dataset(str(tmp_path))


def test_pysot_json_with_polygons_and_absent(tmp_path):
    frames, gt = _bench("bag")
    _link_frames(frames, tmp_path / "bag" / "img", "%04d.jpg")
    poly = np.loadtxt(os.path.join(shared_path("bench", "bag"), "groundtruth_poly.txt"), delimiter=",")[:N]
    visible = [0 if i == 4 else 1 for i in range(N)]
    data = {
        "bag": {
            "video_dir": "bag",
            "init_rect": poly[0].tolist(),
            "img_names": [f"bag/img/{i:04d}.jpg" for i in range(N)],
            "gt_rect": poly.tolist(),
            "absent": visible,
        }
    }
    (tmp_path / "VOT2018.json").write_text(json.dumps(data))
    (s,) = D.load_dataset(str(tmp_path / "VOT2018.json"))
    assert s.name == "bag" and s.layout == "pysot-json"
    assert s.absent.tolist() == [i == 4 for i in range(N)] and np.isnan(s.gt[4]).all()
    np.testing.assert_allclose(np.delete(s.gt, 4, 0), np.delete(gt, 4, 0), atol=0.011)
    data["bag"]["img_names"][3] = "bag/img/missing.jpg"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(EvalError, match="missing.jpg"):
        D.load_dataset(str(tmp_path / "bad.json"))


def test_mismatched_labels_are_one_clear_error(tmp_path):
    _got10k(str(tmp_path), ["bag"])
    (tmp_path / "bag" / "absence.label").write_text("0\n" * (N - 2))
    with pytest.raises(EvalError, match="10 labels in absence.label for 12 frames"):
        D.load_dataset(str(tmp_path))


# -- results: toolkit layouts, resume, atomic writes ------------------------------------------------
def test_eval_on_got10k_writes_got10k_layout_and_resumes(tmp_path, capsys):
    data, res = tmp_path / "GOT-10k" / "val", tmp_path / "res"
    _got10k(str(data), ["bag", "cup"], absent_at=(6,))
    args = ["eval", str(data), "--trackers", "csrt", "--results", str(res), "--threads", "1", "--quiet"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "got10k layout" in out and "2 jobs (0 read back)" in out
    box_file = res / "csrt" / "bag" / "bag_001.txt"
    boxes = read_boxes(str(box_file))
    assert boxes.shape == (N, 4)
    np.testing.assert_allclose(boxes[0], _bench("bag")[1][0], atol=1e-3)
    times = np.loadtxt(res / "csrt" / "bag" / "bag_time.txt")
    assert times.shape == (N,) and (times > 0).all()
    assert not [p for p in res.rglob("*") if p.name.endswith(".part")]
    first_table = out[out.index("sequence") : out.index("jobs (")]

    # a finished pair is read back, not run: its file is not rewritten
    stamp = box_file.stat().st_mtime_ns
    os.remove(res / "csrt" / "cup" / "cup_001.txt")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2 jobs (1 read back)" in out and box_file.stat().st_mtime_ns == stamp
    assert (res / "csrt" / "cup" / "cup_001.txt").is_file()
    # same scores from read-back results as from the run (the fps column aside)
    strip = lambda t: [l.rsplit(maxsplit=1)[0] for l in t.splitlines() if l.startswith(("bag", "cup"))]  # noqa: E731
    assert strip(out[out.index("sequence") : out.index("jobs (")]) == strip(first_table)


def test_published_raw_results_are_scored_beside_ours(tmp_path, capsys):
    """Published raw results (one txt per sequence, no _time.txt) in a folder of their own:
    --compare scores them next to the trackers run, read from the same layout we write."""
    bag = shared_path("bench", "bag")
    gt = read_boxes(os.path.join(bag, "groundtruth.txt"))
    from trackers.run.results import write_otb

    os.makedirs(tmp_path / "published" / "SiamFoo")
    write_otb(str(tmp_path / "published" / "SiamFoo" / "bag.txt"), gt[:N] + 2.0)
    assert (
        main(
            [
                "eval",
                bag,
                "--trackers",
                "csrt",
                "--max-frames",
                str(N),
                "--quiet",
                "--threads",
                "1",
                "--compare",
                str(tmp_path / "published" / "SiamFoo"),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "SiamFoo" in out
    from trackers.run.metrics import score_sequence

    expected = score_sequence(gt[:N] + 2.0, gt[:N])
    cells = out.split("\nbag")[1].split("\n")[0].split("|")[2].split()  # the second tracker's cells
    auc, p20, _, fps = cells
    assert float(auc) == pytest.approx(expected.auc, abs=5e-4) and 0.5 < expected.auc < 0.952
    assert float(p20) == pytest.approx(expected.precision, abs=5e-4)
    assert fps == "0.0"  # no _time.txt: no speed to report
    # the same boxes as a finished result of a tracker we run (its first line the init box, as
    # every result of ours starts): read back, not run again
    os.makedirs(tmp_path / "res" / "csrt")
    ours = gt[:N] + 2.0
    ours[0] = gt[0]
    write_otb(str(tmp_path / "res" / "csrt" / "bag.txt"), ours)
    assert (
        main(["eval", bag, "--trackers", "csrt", "--max-frames", str(N), "--results", str(tmp_path / "res"), "--quiet"])
        == 0
    )
    out = capsys.readouterr().out
    assert "1 jobs (1 read back)" in out and f"{score_sequence(ours, gt[:N]).auc:.3f}" in out.split("\nbag")[1]
    # a published folder that lacks a sequence: one clear line
    assert (
        main(
            [
                "eval",
                shared_path("bench"),
                "--trackers",
                "csrt",
                "--max-frames",
                "3",
                "--quiet",
                "--compare",
                str(tmp_path / "published" / "SiamFoo"),
            ]
        )
        == 2
    )
    assert "no result with 3 boxes for sequence 'bag'" in capsys.readouterr().err


def test_got10k_test_split_eval_writes_but_does_not_score(tmp_path, capsys):
    _got10k(str(tmp_path / "test"), ["bag"], test_split=True)
    assert (
        main(
            [
                "eval",
                str(tmp_path / "test"),
                "--trackers",
                "csrt",
                "--results",
                str(tmp_path / "res"),
                "--quiet",
                "--threads",
                "1",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "first frame only" in out and "overall" not in out
    assert read_boxes(str(tmp_path / "res" / "csrt" / "bag" / "bag_001.txt")).shape == (N, 4)


def test_interrupted_write_leaves_no_file(tmp_path):
    target = tmp_path / "t" / "seq.txt"

    def half_then_interrupt(tmp):
        with open(tmp, "w") as f:
            f.write("1,2,3,4\n1,2")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        R.atomic_write(str(target), half_then_interrupt)
    assert os.listdir(tmp_path / "t") == []
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        R.atomic_write(str(target), half_then_interrupt)
    assert target.read_text() == "old\n" and os.listdir(tmp_path / "t") == ["seq.txt"]


def test_a_result_of_another_length_is_run_again(tmp_path):
    """A box file from a run with another --max-frames is not taken as finished."""
    os.makedirs(tmp_path / "csrt")
    (tmp_path / "csrt" / "bag.txt").write_text("1,2,3,4\n" * 5)
    assert R.read_result(str(tmp_path), "otb", "csrt", "bag", N, 0) is None
    assert R.read_result(str(tmp_path), "otb", "csrt", "bag", 5, 0).boxes.shape == (5, 4)
