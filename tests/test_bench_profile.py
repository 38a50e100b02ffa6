"""`python main.py bench --profile`: per-stage milliseconds of one frame, torch and onnxruntime side by side.
(Speed itself is not asserted: the machine's load varies; the table's rows and arithmetic are.)"""

import re

from tests.conftest import shared_path


def test_onnx_node_names_map_to_the_module_they_were_exported_from():
    from torch import nn

    from trackers.tools.bench_profile import _module_index, _ort_module_of

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv_search = nn.Sequential(nn.Conv2d(3, 3, 1), nn.ReLU())
            self.conv = nn.Conv2d(3, 3, 1)

    net = nn.Module()
    net.backbone = nn.Sequential(nn.Conv2d(3, 3, 1))
    net.backbone.conv = nn.Conv2d(3, 3, 1)
    net.rpn_head = Head()
    index = _module_index(net)
    assert _ort_module_of("/net/backbone/features/features.0/Conv", index) == "backbone"
    assert _ort_module_of("/net/rpn_head/conv/Conv", index) == "rpn_head"
    # a head called through a method: the exporter names its submodules' scopes, not its own
    assert _ort_module_of("/conv_search/conv_search.0/Conv", index) == "rpn_head"
    assert _ort_module_of("/conv/Conv", index) == "other"  # both modules have a `conv`
    assert _ort_module_of("Reshape_12", index) == "other"


def test_bench_profile_prints_every_stage_in_both_engines(capsys):
    shared_path("fixtures", "pysot_siamrpn_alex_dwxcorr", "manifest.json")
    shared_path("data", "videos", "bag.avi")
    import cv2
    import torch

    from trackers.tools.cli import main

    threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        rc = main(["bench", "--profile", "--trackers", "siamrpn-alex", "--frames", "1", "--threads", "1"])
    finally:  # --threads sets process-wide counts; give the other tests theirs back
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert re.search(r"per-stage profile, .* UTC, load average", out), out
    rows = {
        k: v.split() for k, v in re.findall(r"^  ((?:crop|network|decode|total|network: \w+)) +(\S+ +\S+)$", out, re.M)
    }
    # every stage in both engines; the backbone in both (its nodes carry its name), the head at least in torch
    for stage in ("crop", "network", "decode", "network: backbone", "total"):
        assert stage in rows and all(float(v) >= 0 for v in rows[stage]), out
    assert float(rows["network: rpn_head"][0]) > 0, out
    total = [float(v) for v in rows["total"]]
    parts = [[float(v) for v in rows[s]] for s in ("crop", "network", "decode")]
    for engine in (0, 1):  # the total is at least its three main stages (the tracker may report more)
        assert total[engine] >= sum(p[engine] for p in parts) - 0.02
    for engine in (0, 1):  # the module rows split the network stage: never more than it
        modules = sum(float(v[engine]) for k, v in rows.items() if k.startswith("network: ") and v[engine] != "-")
        assert modules <= float(rows["network"][engine]) + 0.05, out
