"""Winograd F(4x4, 3x3) convolutions (models/winograd.py) and the engine's use of them.

The module must give the direct convolution's output up to fp32 rounding for every geometry the
backbones have (dilation 1, 2, 4; odd and even maps; a batch; a bias), put the original modules
back after an export, and rewrite exactly the convolutions it measured a gain for (ResNet-50's two
3x3 stage shortcuts), only in CPU fp32 graphs. Whole-network parity in ONNX Runtime against eager
torch is tests/test_engines.py's (siamrpnpp-r50, siammask-r50 and r50-lt's wide graph run these
graphs there).
"""

import numpy as np
import pytest
import torch
from torch import nn

from models import winograd
from models.backbones import resnet50
from models.winograd import WinogradConv2d, fast_convolutions

#: largest |winograd - direct| / max|direct| allowed: F(4, 3)'s fp32 rounding measured 1e-6 to 4e-6
#: on these geometries; the engines' network tolerance (tests/test_engines.py) is 1e-4
REL_TOL = 3e-5


@pytest.mark.parametrize(
    "c, k, dilation, padding, h, w, batch, bias",
    [
        (16, 24, 1, 1, 31, 31, 1, False),  # layer3's shortcut geometry
        (16, 24, 2, 2, 31, 31, 1, False),  # layer4's (dilation 2)
        (8, 8, 4, 4, 31, 29, 2, True),  # dilation 4, a non-square map, a batch, a bias
        (3, 5, 1, 0, 10, 13, 3, True),  # no padding (a valid convolution)
        (6, 6, 2, 1, 15, 15, 1, False),  # padding below the dilation
        (4, 4, 3, 3, 7, 9, 1, True),  # dilation 3: phases of unequal sizes
        (4, 4, 1, 1, 1, 1, 1, False),  # a single cell
        (8, 16, 2, 2, 104, 104, 1, False),  # r50-lt's wide search map
    ],
)
def test_winograd_gives_the_direct_convolution(c, k, dilation, padding, h, w, batch, bias, monkeypatch):
    monkeypatch.setattr(winograd, "MIN_PHASE_SIDE", 1)  # every map here by Winograd, the small ones too
    torch.manual_seed(0)
    conv = nn.Conv2d(c, k, 3, padding=padding, dilation=dilation, bias=bias).eval()
    x = torch.randn(batch, c, h, w) * 50
    with torch.no_grad():
        want = conv(x)
        got = WinogradConv2d(conv)(x)
    assert got.shape == want.shape
    err = float((got - want).abs().max() / want.abs().max())
    assert err <= REL_TOL, err
    assert err > 0  # it did compute differently (the test would pass on the module itself otherwise)


def test_small_maps_run_the_direct_convolution():
    """Below MIN_PHASE_SIDE cells a polyphase grid side the module calls the convolution itself
    (bit-identical); at the side, Winograd (not identical)."""
    conv = nn.Conv2d(8, 8, 3, padding=4, dilation=4).eval()
    module = WinogradConv2d(conv)
    side = winograd.MIN_PHASE_SIDE * 4
    with torch.no_grad():
        small, large = torch.randn(1, 8, side - 1, side - 1), torch.randn(1, 8, side, side)
        assert torch.equal(module(small), conv(small))
        assert not torch.equal(module(large), conv(large))
        assert torch.allclose(module(large), conv(large), rtol=0, atol=REL_TOL * float(conv(large).abs().max()))


def test_only_plain_3x3_convolutions_are_taken():
    for conv in (
        nn.Conv2d(4, 4, 3, stride=2),
        nn.Conv2d(4, 4, 5, padding=2),
        nn.Conv2d(4, 4, 3, groups=2),
        nn.Conv2d(4, 4, 3, padding=(1, 2)),
    ):
        with pytest.raises(ValueError, match="not a plain 3x3 stride-1 convolution"):
            WinogradConv2d(conv)
        assert not winograd.qualifies(conv)


def test_resnet50_rewrites_its_two_stage_shortcuts_and_gets_them_back():
    net = resnet50((2, 3, 4)).eval()
    shortcuts = [net.layer3[0].downsample[0], net.layer4[0].downsample[0]]
    # the two shortcuts and layer4's three 3x3s (512x512; at 255 px their dilation-4 grids are under
    # MIN_PHASE_SIDE, so they run direct per call)
    assert winograd.rewrites(net) == 5
    x = torch.rand(1, 3, 255, 255) * 255
    with torch.no_grad():
        want = net(x)
        with fast_convolutions(net) as n:
            assert n == 5
            assert isinstance(net.layer3[0].downsample[0], WinogradConv2d)
            assert isinstance(net.layer4[0].downsample[0], WinogradConv2d)
            # layer3's block 3x3s (256x256) stay direct: no gain measured there
            assert type(net.layer3[1].conv2) is nn.Conv2d
            got = net(x)
    assert [net.layer3[0].downsample[0], net.layer4[0].downsample[0]] == shortcuts
    for a, b in zip(got, want):
        assert float((a - b).abs().max() / b.abs().max()) <= REL_TOL


def test_the_modules_come_back_after_a_failed_export():
    net = resnet50((2, 3)).eval()
    shortcut = net.layer3[0].downsample[0]
    with pytest.raises(RuntimeError, match="export failed"):
        with fast_convolutions(net):
            raise RuntimeError("export failed")
    assert net.layer3[0].downsample[0] is shortcut


def test_which_backbone_convolutions_are_taken():
    from models.backbones import AlexNetLegacy, mobilenetv2

    assert winograd.rewrites(mobilenetv2()) == 0  # no dense 3x3 of 256 x 384 channels or more
    alex = AlexNetLegacy()
    taken = [name for name, m in alex.named_modules() if winograd.qualifies(m)]
    assert len(taken) == 3  # conv3, conv4, conv5 (256x384, 384x384, 384x256); not the 11x11 nor the 5x5


class ShortcutNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(512, 1024, 3, padding=2, dilation=2, bias=False)
        self.kernel = None

    def template(self, z):
        self.kernel = z.mean(dim=(2, 3), keepdim=True)

    def track(self, x):
        return {"cls": self.conv(x) * self.kernel.mean()}


def test_engine_uses_it_in_cpu_fp32_graphs_only(tmp_path, monkeypatch):
    """A network with a qualifying convolution: the CPU fp32 engine's graph has no 3x3 Conv of that
    size and gives torch's output; the same engine asked without the rewrite (what int8 quantises)
    keeps the Conv; the two graphs have different cache keys."""
    import onnx

    from trackers.core.engines import OnnxEngine

    monkeypatch.setenv("SIAMSCOPE_CACHE", str(tmp_path))

    torch.manual_seed(0)
    net = ShortcutNet().eval()
    fast = OnnxEngine(net, (1, 512, 4, 4), (1, 512, 31, 31), use_cache=False, keep_graph=True)
    plain = OnnxEngine(net, (1, 512, 4, 4), (1, 512, 31, 31), use_cache=False, fast_convolutions=False, keep_graph=True)
    assert fast.winograd and not plain.winograd and fast.key != plain.key
    assert type(net.conv) is nn.Conv2d  # put back after the export

    def ops(graph):
        return [n.op_type for n in onnx.load_from_string(graph).graph.node]

    # the rewritten graph's only Conv is the depth-wise input transform (a group per channel)
    fast_convs = [n for n in onnx.load_from_string(fast.graph).graph.node if n.op_type == "Conv"]
    assert [a.i for n in fast_convs for a in n.attribute if a.name == "group"] == [512]
    assert ops(plain.graph).count("Conv") == 1 and "MatMul" not in ops(plain.graph)
    z, x = torch.rand(1, 512, 4, 4), torch.rand(1, 512, 31, 31)
    with torch.no_grad():
        net.template(z)
        want = net.track(x)["cls"].numpy()
    for engine in (fast, plain):
        got = engine.track(x)["cls"].numpy()
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max() + 1e-5


def test_the_switch_turns_it_off(tmp_path, monkeypatch):
    from trackers.core.engines import OnnxEngine

    monkeypatch.setenv("SIAMSCOPE_CACHE", str(tmp_path))
    monkeypatch.setenv(winograd.ENV_SWITCH, "0")
    assert not winograd.enabled()
    engine = OnnxEngine(ShortcutNet().eval(), (1, 512, 4, 4), (1, 512, 31, 31), use_cache=False)
    assert not engine.winograd
    monkeypatch.setenv(winograd.ENV_SWITCH, "1")
    assert winograd.enabled()
