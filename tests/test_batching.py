"""Batched inference (trackers/core/batching.py): N targets through one network call per frame give
each target the boxes of N single-target runs.

Tolerances are the engine tests' (tests/test_engines.py): network outputs to NET_RTOL / NET_ATOL
per tensor, boxes to BOX_ATOL pixels (batching changes only float32 summation order).
NanoTrack v2 (the default tracker's localiser): real checkpoint; SiamRPN AlexNet: the fixture's
seeded weights. Frames: bag.avi, three targets (the bag and two hand-picked background patches).
"""

import numpy as np
import pytest
import torch

from tests.test_engines import BAG_BOX, BOX_ATOL, assert_close, bag_frames, build, tensors

BOXES = [BAG_BOX, (60.0, 40.0, 70.0, 90.0), (420.0, 250.0, 80.0, 60.0)]
FRAMES = 4


@pytest.mark.parametrize(
    "name,engine",
    [
        ("nanotrack-v2", "torch"),
        ("nanotrack-v2", "onnxruntime"),
        ("siamrpn-alex", "torch"),
        ("siamrpn-alex", "onnxruntime"),
        # the default tracker: its localiser batched, its guard per target
        ("siamscope-default", "torch"),
    ],
)
def test_batched_boxes_equal_single_runs(name, engine, tmp_path_factory):
    from trackers.core.batching import BatchRunner, group_key, track_batched

    frames = bag_frames()[: FRAMES + 1]
    singles = [build(name, engine, tmp_path_factory) for _ in BOXES]
    batched = [build(name, engine, tmp_path_factory) for _ in BOXES]
    assert batched[0].engine_name == engine
    for a, b, box in zip(singles, batched, BOXES):
        a.init(frames[0], box)
        b.init(frames[0], box)
    assert len({group_key(t) for t in batched}) == 1, "same tracker, same weights: one group"
    runner = BatchRunner()

    # 1. one batched network call on each target's real search crop equals its own call
    patches = [t.crop_search(frames[1])[0] for t in batched]
    outs = runner.run(batched, patches)
    for i, (t, patch, got) in enumerate(zip(singles, patches, outs)):
        with torch.no_grad():
            want = t.run_network(patch)
        assert set(got) == set(want)
        for key in want:
            for j, (w, g) in enumerate(zip(tensors(want[key]), tensors(got[key]))):
                assert_close(w, g, f"{name} {engine} target {i} {key}[{j}]")

    # 2. closed loop: every target's boxes over the frames
    for k, frame in enumerate(frames[1:], 1):
        want = [t.track(frame) for t in singles]
        got = track_batched(runner, batched, frame, lambda i: pytest.fail("all three share one network"))
        for i, (w, g) in enumerate(zip(want, got)):
            np.testing.assert_allclose(g.box, w.box, atol=BOX_ATOL, rtol=0, err_msg=f"{name} frame {k} target {i}")
            assert abs(g.score - w.score) < 1e-4
            assert g.extra["batch"] == len(BOXES)


def test_free_batch_graph_matches_single_target_graph(tmp_path_factory):
    """NanoTrack v2's graph with a free batch axis, at batch 1, against the single-target graph; and
    the per-count fallback for a network whose graph fixes the batch (pysot's DW-XCorr)."""
    from trackers.core.batching import BatchRunner, group_key

    frames = bag_frames()
    nano = [build("nanotrack-v2", "onnxruntime", tmp_path_factory) for _ in range(2)]
    for t, box in zip(nano, BOXES):
        t.init(frames[0], box)
    runner = BatchRunner()
    runner.run(nano, [t.crop_search(frames[1])[0] for t in nano])
    engine = runner._engines[group_key(nano[0])]["dynamic"]
    assert engine is not None and engine.dynamic and engine.path.endswith("-batch.onnx")
    batch_in = [i for i in engine.session.get_inputs() if i.name == "x"][0]
    assert not isinstance(batch_in.shape[0], int), "the batch axis is free in the graph"
    x = nano[0]._host_input(nano[0].crop_search(frames[1])[0]).numpy().copy()
    want = nano[0].onnx_engine.track(x, with_channels=True)
    got = runner.run(nano[:1] + nano[:1], [nano[0].crop_search(frames[1])[0]] * 2)[1]
    for key in want:
        for w, g in zip(tensors(want[key]), tensors(got[key])):
            assert_close(w, g, f"free-batch graph {key}")

    alex = [build("siamrpn-alex", "onnxruntime", tmp_path_factory) for _ in range(2)]
    for t, box in zip(alex, BOXES):
        t.init(frames[0], box)
    runner.run(alex, [t.crop_search(frames[1])[0] for t in alex])
    slot = runner._engines[group_key(alex[0])]
    assert slot["dynamic"] is None and slot[2].x_shape[0] == 2


def test_unbatchable_trackers_run_alone(tmp_path_factory):
    """A tracker whose network takes no batch (SiamFC) is tracked through the caller's step, beside
    a batch, with the same boxes as alone."""
    from trackers.core.batching import BatchRunner, group_key, track_batched
    from trackers.run.session import Track

    frames = bag_frames()[:3]
    default = build("siamfc", "torch", tmp_path_factory)
    alone = build("siamfc", "torch", tmp_path_factory)
    nano = [build("nanotrack-v2", "torch", tmp_path_factory) for _ in range(2)]
    assert group_key(default) is None
    for t, box in zip([default, alone] + nano, [BAG_BOX, BAG_BOX] + BOXES[1:]):
        t.init(frames[0], box)
    runner = BatchRunner()
    for frame in frames[1:]:
        trackers = [nano[0], default, nano[1]]
        got = track_batched(runner, trackers, frame, lambda i: Track(trackers[i]).step(frame, 1).result)
        want = alone.track(frame)
        np.testing.assert_allclose(got[1].box, want.box, atol=1e-6)
        assert "batch" not in got[1].extra and got[0].extra["batch"] == 2


def test_bench_targets_prints_both_columns(capsys):
    """`bench --targets 1,2` through the CLI: a row per count with both fps and their ratio."""
    from tests.conftest import shared_path
    from trackers.tools.bench_targets import target_boxes
    from trackers.tools.cli import main

    shared_path("models", "nanotrack", "nanotrackv2.pth")
    boxes = target_boxes(BAG_BOX, (480, 640, 3), 8)
    assert len(set(boxes)) == 8 and all(0 <= x and x + w <= 640 and 0 <= y and y + h <= 480 for x, y, w, h in boxes)
    assert main(["bench", "--targets", "1,2", "--frames", "4", "--rounds", "1", "--engine", "torch"]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.strip().split(" ")[0] in ("1", "2")]
    assert [r[0] for r in rows] == ["1", "2"], out
    for r in rows:
        single, batched, ratio = float(r[1]), float(r[2]), float(r[4])
        assert single > 0 and batched > 0 and abs(ratio - batched / single) < 0.05 * ratio + 0.01
        assert float(r[-1]) <= BOX_ATOL, "batched boxes equal one-by-one boxes"
    assert main(["bench", "--targets", "0"]) == 2
