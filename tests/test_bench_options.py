"""The engine options study's own arithmetic (trackers/tools/bench_options.py): the uint8 HWC input
moved into the graph gives the same outputs, the convolution count is the textbook one, and the
parity measure is tests/test_engines.py's. (Its timings are a study's, never asserted.)"""

import io

import numpy as np
import pytest
import torch

from trackers.tools import bench_options


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.dw = torch.nn.Conv2d(4, 4, 3, groups=4)

    def forward(self, x):
        return self.dw(self.conv(x))

    def track(self, x):
        return {"cls": self(x)}


def test_the_layout_copy_moved_into_the_graph_gives_the_same_outputs():
    import onnxruntime as ort

    net = Tiny().eval()
    buf = io.BytesIO()
    torch.onnx.export(net, torch.zeros(1, 3, 12, 10), buf, input_names=["x"], output_names=["y"], dynamo=False)
    patch = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    nchw = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    hwc = ort.InferenceSession(bench_options._uint8_hwc_graph(buf.getvalue()), providers=["CPUExecutionProvider"])
    assert hwc.get_inputs()[0].type == "tensor(uint8)" and hwc.get_inputs()[0].shape == [1, 12, 10, 3]
    want = nchw.run(None, {"x": patch.transpose(2, 0, 1)[None].astype(np.float32)})[0]
    got = hwc.run(None, {"x": patch[None]})[0]
    assert np.array_equal(got, want)


def test_conv_flops_counts_two_per_multiply_add():
    x = torch.zeros(1, 3, 8, 8)
    # conv: 4 x 6 x 6 outputs of 3*3*3 products; depth-wise: 4 x 4 x 4 outputs of 3*3*1
    assert bench_options.conv_flops(Tiny(), x) == 2 * (4 * 6 * 6 * 27 + 4 * 4 * 4 * 9)


def test_parity_is_the_engine_tests_bound():
    ref = [np.array([10.0, -20.0])]
    bound = bench_options.NET_RTOL * 20 + bench_options.NET_ATOL
    assert bench_options._parity([np.array([10.0, -20.0])], ref) == 0
    assert bench_options._parity([ref[0] + [bound, 0]], ref) == pytest.approx(1.0, rel=1e-6)


def test_box_agreement_measures_the_difference():
    a = np.array([[10.0, 10.0, 20.0, 20.0], [0.0, 0.0, 10.0, 10.0]])
    b = a.copy()
    assert bench_options.box_agreement(a, b) == (0.0, 0.0, 1.0)
    b[1, 0] += 5.0  # half the second box's width: IoU 50 / 150
    most, mean, low = bench_options.box_agreement(a, b)
    assert most == 5.0 and mean == pytest.approx(5.0 / 8) and low == pytest.approx(1 / 3)
