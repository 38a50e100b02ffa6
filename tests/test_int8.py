"""The opt-in int8 engine (trackers/core/quantize.py, `--precision int8`).

Small and fast: SiamRPN AlexNet with the fixtures' seeded weights (tests/test_engines.py's build()),
calibrated on a shortened plan (the four ../shared videos, two samples each) instead of the full one, so the
whole file takes seconds. The accuracy of the real plan on the heavy networks is measured by the
commands in docs/speed-int8.md, not here.
"""

import hashlib
import json
import os
import stat

import numpy as np
import pytest

from tests.conftest import box_iou, shared_path
from tests.test_engines import BAG_BOX, bag_frames, build

NAME = "siamrpn-alex"
#: int8 boxes against fp32 boxes over the first frames of bag (seeded weights, short calibration):
#: 0.98-0.995 over 10 frames with the full plan and with this shortened one (measured)
MIN_MEAN_IOU = 0.9


@pytest.fixture(autouse=True)
def short_calibration(monkeypatch):
    """The four calibration videos, two samples each (4 frames tracked): the same code path as the
    full plan, in seconds. (One video alone is not enough: its ranges do not cover bag's frames and
    the seeded network's int8 boxes drift, IoU 0.78 after one frame; measured.)"""
    from trackers.core import quantize

    for video, _, _ in quantize.CALIBRATION:
        shared_path("data", "videos", video)
    monkeypatch.setattr(quantize, "CALIBRATION_FRAMES", 4)
    monkeypatch.setattr(quantize, "CALIBRATION_STEP", 2)


def test_int8_graph_is_built_cached_and_its_calibration_recorded(tmp_path_factory, monkeypatch):
    from trackers.core import engines, quantize

    tracker = build(NAME, "onnxruntime", tmp_path_factory)
    tracker.set_precision("int8")
    assert tracker.engine_name == "onnxruntime-int8" and tracker.precision == "int8"
    engine = tracker.onnx_int8_engine
    path = engine.path
    assert os.path.dirname(path) == engines.cache_dir() and path.endswith(".int8.onnx")
    data = open(path, "rb").read()
    # cached as the fp32 graphs are: a private folder, a private file, its sha256 beside it
    assert stat.S_IMODE(os.stat(engines.cache_dir()).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert open(path + ".sha256").read().split()[0] == hashlib.sha256(data).hexdigest()
    import onnx

    ops = {n.op_type for n in onnx.load_from_string(data).graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops, ops  # really quantised
    assert len(data) < 0.5 * os.path.getsize(tracker.onnx_engine.path), "int8 weights are a quarter of fp32's"

    # the record says which frames calibrated it: files, boxes and frame indices
    record = json.load(open(quantize.record_path(path)))
    assert record == engine.calibration
    assert [c["video"] for c in record["calibration"]] == ["Megamind.avi", "box.mp4", "tree.avi", "vtest.avi"]
    assert [c["frames"] for c in record["calibration"]] == [[3, 5], [2, 4], [2, 4], [2, 4]]
    assert record["samples"] == 8
    assert record["calibration"][0]["box"] == [210.0, 162.0, 154.0, 154.0]
    # quantised from the fp32 graph with every convolution direct (a Winograd transform would be
    # quantised too: models/winograd.py), not from the fp32 engine's own graph, whose AlexNet conv3-5
    # are Winograd ones
    assert tracker.onnx_engine.winograd
    assert record["fp32_graph"] != os.path.basename(tracker.onnx_engine.path)
    assert os.path.isfile(os.path.join(engines.cache_dir(), record["fp32_graph"]))

    # a second tracker reads the cached graph: nothing is calibrated again
    def no_calibration(*a, **k):
        raise AssertionError("calibrated again despite the cached graph")

    record_feeds = quantize.record_feeds
    monkeypatch.setattr(quantize, "record_feeds", no_calibration)
    again = build(NAME, "onnxruntime", tmp_path_factory)
    again.set_precision("int8")
    assert again.onnx_int8_engine.path == path and again.onnx_int8_engine.calibration == record

    # a damaged int8 graph is refused and moved aside (then rebuilt), as an fp32 one is; shown on a
    # copy written the cache's way, so the other tests keep the cached graph
    monkeypatch.setattr(quantize, "record_feeds", record_feeds)
    copy = path.replace(".int8.onnx", "-copy.int8.onnx")
    engines.write_cached_graph(copy, data)
    assert engines.read_cached_graph(copy) == data
    with open(copy, "r+b") as f:
        f.seek(len(data) // 2)
        f.write(b"\0" * 16)
    assert engines.read_cached_graph(copy) is None and not os.path.exists(copy)
    assert any(n.startswith(os.path.basename(copy) + ".bad-") for n in os.listdir(engines.cache_dir()))


def test_int8_boxes_stay_close_to_fp32_on_bag(tmp_path_factory):
    frames = bag_frames()[:6]
    fp32 = build(NAME, "onnxruntime", tmp_path_factory)
    int8 = build(NAME, "onnxruntime", tmp_path_factory)
    int8.set_precision("int8")
    boxes = {}
    for key, tracker in (("fp32", fp32), ("int8", int8)):
        tracker.init(frames[0], BAG_BOX)
        boxes[key] = [tracker.track(f).box for f in frames[1:]]
    ious = [box_iou(a, b) for a, b in zip(boxes["fp32"], boxes["int8"])]
    assert np.mean(ious) >= MIN_MEAN_IOU, ious
    assert boxes["fp32"] != boxes["int8"], "int8 gave fp32's exact boxes: the int8 graph did not run"


def test_auto_never_picks_int8(tmp_path_factory):
    from trackers.core import engines
    from trackers.core.base import EngineError

    assert "int8" not in engines.ENGINES
    with pytest.raises(EngineError, match="unknown engine"):
        engines.check_choice("int8")
    tracker = build(NAME, "onnxruntime", tmp_path_factory)
    tracker.set_precision("int8")  # an int8 graph is in the cache now
    for _ in range(2):  # the probe, then its cached decision
        auto = build(NAME, "auto", tmp_path_factory)
        assert auto.engine_name in ("torch", "onnxruntime") and auto.precision == "fp32"
        assert auto.onnx_int8_engine is None
        assert auto.engine_probe["engine"] in ("torch", "onnxruntime")
    decisions = json.load(open(os.path.join(engines.cache_dir(), "auto_engine.json")))
    assert all(d["engine"] in ("torch", "onnxruntime") for d in decisions.values())
    # back to fp32 drops the int8 graph; torch with int8 is refused in one line
    tracker.set_precision("fp32")
    assert tracker.engine_name == "onnxruntime" and tracker.onnx_int8_engine is None
    with pytest.raises(EngineError, match="int8 runs in ONNX Runtime"):
        build(NAME, "torch", tmp_path_factory).set_precision("int8")


def test_int8_refusals_are_one_clear_line(tmp_path, capsys):
    import torch

    from models.device import DeviceError, check_precision
    from trackers.tools.cli import main

    with pytest.raises(DeviceError, match="CPU only"):
        check_precision("int8", torch.device("cuda"))
    from trackers.families.opencv_trackers import CSRTTracker

    with pytest.raises(DeviceError, match="no int8 path"):
        CSRTTracker().set_precision("int8")
    video = shared_path("data", "videos", "bag.avi")
    for argv in (
        ["track", video, "--box", "292,128,146,132", "--precision", "int4", "--out", str(tmp_path / "a.txt")],
        ["eval", shared_path("bench"), "--trackers", NAME, "--precision", "INT8"],
        ["bench", "--precision", "fp8"],
        ["bench", "--precision", "int8", "--trackers", NAME],  # int8 is timed by bench --reference
        ["track", video, "--box", "292,128,146,132", "--tracker", "csrt", "--precision", "int8", "--frames", "0:3"],
    ):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: "), (argv, err)
        assert "int8" in err[0] or "precision" in err[0], err
    assert not (tmp_path / "a.txt").exists()


def test_track_runs_int8_from_the_command_line(tmp_path_factory, tmp_path, capsys):
    from trackers.run.fixtures import SEEDED_FIXTURE, seeded_checkpoint
    from trackers.tools.cli import main

    weights = seeded_checkpoint(shared_path("fixtures", SEEDED_FIXTURE[NAME]), str(tmp_path))
    out = tmp_path / "int8.txt"
    argv = ["track", shared_path("data", "videos", "bag.avi"), "--tracker", NAME, "--weights", weights]
    argv += ["--box", ",".join(map(str, BAG_BOX)), "--frames", "0:4", "--precision", "int8", "--out", str(out)]
    assert main(argv) == 0
    assert "(onnxruntime-int8)" in capsys.readouterr().out
    assert len(out.read_text().splitlines()) == 4
