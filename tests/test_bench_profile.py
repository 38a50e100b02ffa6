"""`python main.py bench --profile`: per-stage milliseconds of one frame, torch and onnxruntime side by side.
(Speed itself is not asserted: the machine's load varies; the table's rows and arithmetic are.)"""
import re

import pytest

from tests.conftest import shared_path


def test_onnx_node_names_map_to_the_module_they_were_exported_from():
    from trackers.tools.bench_profile import _ort_module_of
    modules = {"backbone", "neck", "rpn_head"}
    assert _ort_module_of("/net/backbone/layer1/conv1/Conv", modules) == "backbone"
    assert _ort_module_of("/net/rpn_head/cls/head/Conv_1", modules) == "rpn_head"
    assert _ort_module_of("Conv_123_fused", modules) == "other"


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
    rows = dict(re.findall(r"^  ((?:crop|network|decode|total|network: \w+)) +(\S+ +\S+)$", out, re.M))
    for stage in ("crop", "network", "decode", "network: backbone", "network: rpn_head", "total"):
        assert stage in rows, out
        torch_ms, ort_ms = (float(v) for v in rows[stage].split())
        assert torch_ms >= 0 and ort_ms >= 0
    total = [float(v) for v in rows["total"].split()]
    parts = [[float(v) for v in rows[s].split()] for s in ("crop", "network", "decode")]
    for engine in (0, 1):   # the total is at least its three main stages (the tracker may report more)
        assert total[engine] >= sum(p[engine] for p in parts) - 0.02
