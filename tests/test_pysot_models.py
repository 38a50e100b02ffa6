"""pysot network parts on their own (heads, necks, backbones) and pysot model-zoo checkpoint loading.

The fixture parity of the assembled networks is in test_pysot_parity.py; here: the parts without
a fixture (UP-XCorr head), the shapes other trackers rely on, and the checkpoint formats.
"""

import json

import pytest
import torch
import torch.nn.functional as F

from models.backbones import AlexNetLegacy, mobilenetv2, resnet50
from models.checkpoint import CheckpointError
from models.heads import MultiRPN, UPChannelRPN, xcorr_depthwise, xcorr_fast
from models.necks import AdjustAllLayer
from tests.conftest import shared_path
from trackers.core import registry


def _randomise_bn(module, gen):
    """Non-trivial BN statistics so a wrong channel pairing cannot hide behind identity BNs."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)


@torch.no_grad()
def test_up_channel_rpn_equals_explicit_loop():
    """UP-XCorr: cls channel k of sample b = sum over input channels of the search features
    correlated with kernel k (its `feature_in` channels), computed here with one F.conv2d per
    sample and per output map; loc gets the 1x1 adjust on top."""
    gen = torch.Generator().manual_seed(0)
    A, C = 5, 8
    head = UPChannelRPN(anchor_num=A, feature_in=C).eval()
    for p in head.parameters():
        p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    z = torch.randn(2, C, 6, 6, generator=gen)
    x = torch.randn(2, C, 22, 22, generator=gen)
    cls, loc = head(z, x)
    assert cls.shape == (2, 2 * A, 17, 17) and loc.shape == (2, 4 * A, 17, 17)

    cls_kernel = head.template_cls_conv(z)  # (B, 2A*C, 4, 4)
    loc_kernel = head.template_loc_conv(z)
    cls_search = head.search_cls_conv(x)  # (B, C, 20, 20)
    loc_search = head.search_loc_conv(x)
    loc_corr = []
    for b in range(2):
        for k in range(2 * A):
            w = cls_kernel[b, k * C : (k + 1) * C][None]  # one (1, C, 4, 4) filter
            expect = F.conv2d(cls_search[b : b + 1], w)[0, 0]
            torch.testing.assert_close(cls[b, k], expect, atol=1e-5, rtol=1e-5)
        loc_maps = torch.stack(
            [F.conv2d(loc_search[b : b + 1], loc_kernel[b, k * C : (k + 1) * C][None])[0, 0] for k in range(4 * A)]
        )
        loc_corr.append(loc_maps)
        expect_loc = F.conv2d(loc_maps[None], head.loc_adjust.weight, head.loc_adjust.bias)[0]
        torch.testing.assert_close(loc[b], expect_loc, atol=1e-5, rtol=1e-5)
    # the correlation maps the GUI shows: cls itself and loc before the adjust
    _, _, corr = head.match(head.embed_kernels(z[:1]), x[:1])
    assert [(lvl, br) for lvl, br, _ in corr] == [(0, "cls"), (0, "loc")]
    torch.testing.assert_close(corr[0][2], cls[:1])
    torch.testing.assert_close(corr[1][2][0], loc_corr[0], atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_xcorr_depthwise_and_fast_equal_loops():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 6, 12, 12, generator=gen)
    k = torch.randn(2, 6, 5, 5, generator=gen)
    out = xcorr_depthwise(x, k)
    for b in range(2):
        for c in range(6):
            torch.testing.assert_close(out[b, c], F.conv2d(x[b : b + 1, c : c + 1], k[b : b + 1, c : c + 1])[0, 0])
    kk = torch.randn(2, 3 * 6, 5, 5, generator=gen)
    full = xcorr_fast(x, kk)
    assert full.shape == (2, 3, 8, 8)
    torch.testing.assert_close(full[1, 2], F.conv2d(x[1:2], kk[1, 12:18][None])[0, 0])
    with pytest.raises(ValueError, match="multiple"):
        xcorr_fast(x, torch.randn(2, 7, 5, 5))


@torch.no_grad()
@pytest.mark.parametrize("weighted", [True, False])
def test_multi_rpn_fusion(weighted):
    gen = torch.Generator().manual_seed(2)
    head = MultiRPN(anchor_num=5, in_channels=[16, 16, 16], weighted=weighted).eval()
    for p in head.parameters():
        p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    _randomise_bn(head, gen)
    zs = [torch.randn(1, 16, 7, 7, generator=gen) for _ in range(3)]
    xs = [torch.randn(1, 16, 31, 31, generator=gen) for _ in range(3)]
    cls, loc = head(zs, xs)
    per_level = [rpn(z, x) for rpn, z, x in zip(head.levels(), zs, xs)]
    if weighted:
        wc, wl = F.softmax(head.cls_weight, 0), F.softmax(head.loc_weight, 0)
    else:
        wc = wl = torch.full((3,), 1 / 3)
    torch.testing.assert_close(cls, sum(w * c for w, (c, _) in zip(wc, per_level)), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loc, sum(w * l for w, (_, l) in zip(wl, per_level)), atol=1e-5, rtol=1e-5)
    assert cls.shape == (1, 10, 25, 25) and loc.shape == (1, 20, 25, 25)
    assert ("cls_weight" in dict(head.named_parameters())) == weighted


@torch.no_grad()
def test_adjust_layer_crops_template_only():
    neck = AdjustAllLayer([8, 16], [4, 4]).eval()
    z = neck([torch.randn(1, 8, 15, 15), torch.randn(1, 16, 15, 15)])
    x = neck([torch.randn(1, 8, 31, 31), torch.randn(1, 16, 31, 31)])
    assert [t.shape[-1] for t in z] == [7, 7] and [t.shape[-1] for t in x] == [31, 31]
    full = neck.downsample2.downsample(torch.ones(1, 8, 15, 15))
    one = AdjustAllLayer([8], [4])
    assert "downsample.downsample.0.weight" in one.state_dict()  # pysot's single-level name
    assert full.shape[-1] == 15


@torch.no_grad()
def test_backbone_levels_and_strides():
    r = resnet50(used_layers=[0, 1, 2, 3]).eval()  # SiamMask's levels: no layer4 weights
    assert not any(k.startswith("layer4") for k in r.state_dict())
    outs = r(torch.zeros(1, 3, 127, 127))
    assert [tuple(o.shape[1:]) for o in outs] == [(64, 61, 61), (256, 31, 31), (512, 15, 15), (1024, 15, 15)]
    assert r.channels == [64, 256, 512, 1024]
    m = mobilenetv2(1.4, [3, 5, 7]).eval()
    assert [tuple(o.shape[1:]) for o in m(torch.zeros(1, 3, 127, 127))] == [(44, 15, 15), (134, 15, 15), (448, 15, 15)]
    a = AlexNetLegacy().eval()
    assert a(torch.zeros(1, 3, 127, 127)).shape == (1, 256, 6, 6)
    with pytest.raises(ValueError, match="used_layers"):
        resnet50(used_layers=[5])


# -- checkpoints as pysot's model zoo stores them -------------------------------------------------
def _manifest_state_dict(fixture):
    """A state dict with the manifest's names and shapes; every tensor filled with its own index so
    each one can be found again after loading."""
    with open(shared_path("fixtures", fixture, "manifest.json")) as f:
        entries = json.load(f)["state_dict"]
    return {k: torch.full(shape, float(i), dtype=getattr(torch, dtype)) for i, (k, shape, dtype) in enumerate(entries)}


def test_pysot_checkpoint_snapshot_loads(tmp_path):
    """pysot's training snapshot layout: {'epoch', 'state_dict'} with DistributedDataParallel's
    'module.' prefixes, here also without BN `num_batches_tracked` (older torch checkpoints)."""
    state = _manifest_state_dict("pysot_siamrpn_r50_l234_dwxcorr")
    obj = {
        "epoch": 20,
        "state_dict": {"module." + k: v for k, v in state.items() if not k.endswith("num_batches_tracked")},
    }
    path = tmp_path / "model.pth"
    torch.save(obj, path)
    tracker = registry.build("siamrpnpp-r50", weights=str(path))
    loaded = tracker.network.state_dict()
    for i, k in enumerate(state):
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(loaded[k], state[k]), k


def test_pysot_checkpoint_truncated_names_missing_keys(tmp_path):
    state = _manifest_state_dict("pysot_siamrpn_r50_l234_dwxcorr")
    dropped = [k for k in state if k.startswith("rpn_head.rpn4.loc.head.3")]
    for k in dropped:
        del state[k]
    state["rpn_head.rpn5.cls.head.3.bias"] = torch.zeros(10)
    state["backbone.conv1.weight"] = torch.zeros(64, 3, 3, 3)
    path = tmp_path / "model.pth"
    torch.save({"state_dict": state, "epoch": 3}, path)
    with pytest.raises(CheckpointError) as e:
        registry.build("siamrpnpp-r50", weights=str(path))
    msg = str(e.value)
    assert "missing keys (2)" in msg and all(k in msg for k in dropped)
    assert "unexpected keys (1): rpn_head.rpn5.cls.head.3.bias" in msg
    assert "backbone.conv1.weight (64, 3, 3, 3) vs model (64, 3, 7, 7)" in msg


def test_registry_lists_the_family_with_pysot_zoo_names():
    specs = {s.name: s for s in registry.all_trackers()}
    expected = {
        "siamrpn-alex": "siamrpn_alex_dwxcorr/model.pth",
        "siamrpnpp-r50": "siamrpn_r50_l234_dwxcorr/model.pth",
        "siamrpnpp-mobilev2": "siamrpn_mobilev2_l234_dwxcorr/model.pth",
        "siamrpnpp-r50-lt": "siamrpn_r50_l234_dwxcorr_lt/model.pth",
    }
    for name, wf in expected.items():
        assert specs[name].weights_file == wf
    with pytest.raises(CheckpointError, match="needs"):
        specs["siamrpn-alex"].build(None)
