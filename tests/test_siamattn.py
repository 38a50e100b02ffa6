"""SiamAttn built from the paper (no reference code or weights exist): each equation against a
straightforward computation written here, shapes, training, ONNX, and the tracker on bag.avi."""

import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models.siamattn import (
    ChannelAttention,
    DeformableSiameseAttention,
    DeformConv2d,
    DeformRoIPool,
    MapGeometry,
    RefineBranch,
    SearchBranch,
    SiamAttn,
    SiamAttnConfig,
    SpatialSelfAttention,
    StagedBackbone,
    TemplateBranch,
    apply_box_deltas,
    channel_attention_map,
    deform_conv2d,
    mask_targets,
    refine_targets,
    roi_align,
    rpn_targets,
    siamattn_loss,
    spatial_attention_map,
)

from .conftest import shared_path


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# -- attention equations ------------------------------------------------------------------------
def test_spatial_attention_map_is_column_softmax_of_qtk():
    q = torch.randn(2, 3, 5, generator=_gen(1))
    k = torch.randn(2, 3, 5, generator=_gen(2))
    a = spatial_attention_map(q, k)
    assert a.shape == (2, 5, 5)
    # columns sum to one, rows in general do not
    torch.testing.assert_close(a.sum(1), torch.ones(2, 5))
    assert not torch.allclose(a.sum(2), torch.ones(2, 5), atol=1e-3)
    for b in range(2):
        for j in range(5):
            logits = [sum(q[b, c, i] * k[b, c, j] for c in range(3)) for i in range(5)]
            e = [math.exp(float(v)) for v in logits]
            ref = torch.tensor([v / sum(e) for v in e])
            torch.testing.assert_close(a[b, :, j], ref, rtol=1e-5, atol=1e-6)


def test_channel_attention_map_is_row_softmax_of_ffT():
    f = torch.randn(1, 4, 6, generator=_gen(3)) * 0.5
    a = channel_attention_map(f)
    assert a.shape == (1, 4, 4)
    torch.testing.assert_close(a.sum(2), torch.ones(1, 4))
    ref = torch.softmax(f[0] @ f[0].T, dim=1)
    torch.testing.assert_close(a[0], ref)


def test_spatial_self_attention_equation_and_zero_scale_identity():
    torch.manual_seed(0)
    m = SpatialSelfAttention(16)
    assert m.query.out_channels == 2 and m.key.out_channels == 2 and m.value.out_channels == 16
    x = torch.randn(2, 16, 3, 4, generator=_gen(4))
    # alpha starts at zero: the module is the identity
    torch.testing.assert_close(m(x), x)
    with torch.no_grad():
        m.alpha.fill_(0.7)
    # reference: X_s = alpha V A + X, A = softmax over i of sum_c q[c, i] k[c, j]
    X = x.flatten(2)
    Q = torch.einsum("oc,bcn->bon", m.query.weight[:, :, 0, 0], X) + m.query.bias[None, :, None]
    K = torch.einsum("oc,bcn->bon", m.key.weight[:, :, 0, 0], X) + m.key.bias[None, :, None]
    V = torch.einsum("oc,bcn->bon", m.value.weight[:, :, 0, 0], X) + m.value.bias[None, :, None]
    logits = torch.einsum("bci,bcj->bij", Q, K)
    A = torch.exp(logits - logits.max(1, keepdim=True).values)
    A = A / A.sum(1, keepdim=True)
    ref = 0.7 * torch.einsum("bci,bij->bcj", V, A) + X
    torch.testing.assert_close(m(x), ref.reshape(x.shape), rtol=1e-5, atol=1e-5)


def test_channel_self_and_cross_attention_by_hand():
    m = ChannelAttention()
    z = torch.randn(1, 3, 2, 2, generator=_gen(5)) * 0.5
    x = torch.randn(1, 3, 4, 4, generator=_gen(6)) * 0.5
    torch.testing.assert_close(m(x, source=z), x)  # gamma = 0: identity
    with torch.no_grad():
        m.scale.fill_(0.3)
    # cross: A = softmax_row(Z Z^T) from the template, applied to the search features
    Z = z[0].reshape(3, -1).tolist()
    X = x[0].reshape(3, -1)
    aff = [[sum(a * b for a, b in zip(Z[r], Z[s])) for s in range(3)] for r in range(3)]
    A = [[math.exp(v) / sum(math.exp(w) for w in row) for v in row] for row in aff]
    ref = torch.stack([0.3 * sum(A[r][s] * X[s] for s in range(3)) + X[r] for r in range(3)])
    torch.testing.assert_close(m(x, source=z)[0].reshape(3, -1), ref, rtol=1e-5, atol=1e-6)
    # self: the same with the search's own affinities
    ref_self = 0.3 * torch.softmax(X @ X.T, 1) @ X + X
    torch.testing.assert_close(m(x)[0].reshape(3, -1), ref_self, rtol=1e-5, atol=1e-6)


def test_dsa_adds_self_and_cross_and_uses_the_other_branch():
    torch.manual_seed(1)
    dsa = DeformableSiameseAttention(8)
    with torch.no_grad():
        dsa.spatial.alpha.fill_(0.5)
        dsa.channel.scale.fill_(0.2)
        dsa.cross.scale.fill_(0.4)
    z = torch.randn(1, 8, 3, 3, generator=_gen(7))
    x = torch.randn(1, 8, 6, 6, generator=_gen(8))
    expected = dsa.spatial(x) + dsa.channel(x) + dsa.cross(x, source=z)
    torch.testing.assert_close(dsa.attend(x, z), expected)
    # all scales zero -> three residual copies of the input
    with torch.no_grad():
        for s in (dsa.spatial.alpha, dsa.channel.scale, dsa.cross.scale):
            s.zero_()
    torch.testing.assert_close(dsa.attend(x, z), 3 * x)
    zo, xo = dsa(z, x)
    assert zo.shape == z.shape and xo.shape == x.shape


# -- deformable convolution ---------------------------------------------------------------------
def test_deform_conv_zero_offsets_is_conv2d():
    x = torch.randn(2, 4, 7, 6, generator=_gen(9))
    w = torch.randn(5, 4, 3, 3, generator=_gen(10))
    b = torch.randn(5, generator=_gen(11))
    off = torch.zeros(2, 18, 7, 6)
    torch.testing.assert_close(
        deform_conv2d(x, off, w, b, padding=1), F.conv2d(x, w, b, padding=1), rtol=1e-4, atol=1e-4
    )
    # the module starts with zero offsets
    m = DeformConv2d(4, 5)
    torch.testing.assert_close(m(x), F.conv2d(x, m.weight, m.bias, padding=1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dy,dx", [(1, 0), (-2, 1), (0, 3)])
def test_deform_conv_integer_offsets_is_shifted_conv(dy, dx):
    x = torch.randn(1, 3, 8, 9, generator=_gen(12))
    w = torch.randn(2, 3, 3, 3, generator=_gen(13))
    off = torch.zeros(1, 18, 8, 9)
    off[:, 0::2] = dy
    off[:, 1::2] = dx
    # reference: conv without padding on a zero-padded input, read at (y + dy, x + dx)
    P = 1 + max(abs(dy), abs(dx))
    full = F.conv2d(F.pad(x, (P, P, P, P)), w)
    ref = full[:, :, P - 1 + dy : P - 1 + dy + 8, P - 1 + dx : P - 1 + dx + 9]
    torch.testing.assert_close(deform_conv2d(x, off, w, None, padding=1), ref, rtol=1e-4, atol=1e-4)


def test_deform_conv_half_pixel_offset_averages_neighbours():
    x = torch.randn(1, 1, 5, 5, generator=_gen(14))
    w = torch.zeros(1, 1, 3, 3)
    w[0, 0, 1, 1] = 1.0  # centre tap only: output = input sampled at (y + dy, x + dx)
    off = torch.zeros(1, 18, 5, 5)
    off[:, 2 * 4 + 1] = 0.5  # centre tap (k = 4), dx = +0.5
    out = deform_conv2d(x, off, w, None, padding=1)
    ref = 0.5 * (x[..., :, :4] + x[..., :, 1:])
    torch.testing.assert_close(out[..., :, :4], ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[..., :, 4], 0.5 * x[..., :, 4], rtol=1e-5, atol=1e-5)  # zero beyond


# -- RoI pooling --------------------------------------------------------------------------------
GEOM = MapGeometry(origin=10.0, step=4.0)  # cell i at 10 + 4 i crop pixels


def test_roi_align_of_constant_map_is_the_constant():
    f = torch.full((2, 3, 20, 20), 2.5)
    rois = torch.tensor([[20.0, 30.0, 60.0, 50.0], [11.0, 12.0, 80.0, 85.0]])
    out = roi_align(f, rois, 7, GEOM, sampling=2)
    assert out.shape == (2, 3, 7, 7)
    torch.testing.assert_close(out, torch.full_like(out, 2.5))


def test_roi_align_of_linear_ramp_is_value_at_bin_centres():
    n = 20
    u = torch.arange(n, dtype=torch.float32) * GEOM.step + GEOM.origin  # crop pixel of each cell
    a, b, c = 0.3, -0.7, 5.0
    f = (a * u.view(1, n) + b * u.view(n, 1) + c).expand(1, 2, n, n).contiguous()
    x1, y1, x2, y2 = 17.0, 25.0, 61.0, 48.0
    out = roi_align(f, torch.tensor([[x1, y1, x2, y2]]), 5, GEOM, sampling=3)
    cx = x1 + (torch.arange(5) + 0.5) * (x2 - x1) / 5
    cy = y1 + (torch.arange(5) + 0.5) * (y2 - y1) / 5
    ref = a * cx.view(1, 5) + b * cy.view(5, 1) + c
    torch.testing.assert_close(out[0, 0], ref, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(out[0, 1], ref, rtol=1e-5, atol=1e-4)


def test_deformable_roi_pool_offsets_shift_bins():
    n = 20
    u = torch.arange(n, dtype=torch.float32) * GEOM.step + GEOM.origin
    f = u.view(1, 1, 1, n).expand(1, 1, n, n).contiguous()  # value = crop x
    pool = DeformRoIPool(1, 4, sampling=2, offset_gain=1.0)
    rois = torch.tensor([[20.0, 20.0, 60.0, 60.0]])
    plain = roi_align(f, rois, 4, GEOM, 2)
    torch.testing.assert_close(pool(f, rois, GEOM), plain)  # zero-initialised offsets
    with torch.no_grad():
        pool.offset.bias.copy_(torch.tensor([0.1, 0.0]))  # every bin moves right by 0.1 box widths
    torch.testing.assert_close(pool(f, rois, GEOM), plain + 4.0, rtol=1e-5, atol=1e-4)


def test_apply_box_deltas():
    rois = torch.tensor([[10.0, 20.0, 50.0, 40.0]])
    out = apply_box_deltas(rois, torch.tensor([[0.1, -0.5, math.log(2), 0.0]]))
    # centre (30, 30) + (4, -10); width 40 -> 80, height 20
    torch.testing.assert_close(out, torch.tensor([[-6.0, 10.0, 74.0, 30.0]]))


# -- training targets -------------------------------------------------------------------------
def test_refine_targets_invert_apply_box_deltas():
    rois = torch.tensor([[10.0, 20.0, 50.0, 40.0], [100.0, 90.0, 160.0, 200.0]])
    boxes = torch.tensor([[12.0, 15.0, 60.0, 45.0], [90.0, 100.0, 150.0, 180.0]])
    torch.testing.assert_close(apply_box_deltas(rois, refine_targets(rois, boxes)), boxes)


def test_rpn_targets_mark_the_anchor_on_the_box_positive():
    from trackers.core.decode import generate_anchors

    anchors = torch.from_numpy(generate_anchors(8, (0.33, 0.5, 1, 2, 3), (8,), 25))
    # a 64x64 box centred 16 px right of the crop centre: the square anchor (index 2) at cell
    # (12, 14) matches it exactly
    box = torch.tensor([127 + 16 - 32, 127 - 32, 127 + 16 + 32, 127 + 32], dtype=torch.float32)
    labels, loc, weight = rpn_targets(box, anchors, 5, 25)
    assert labels[2, 12, 14] == 1
    torch.testing.assert_close(loc[:, 2, 12, 14], torch.zeros(4), atol=1e-6, rtol=0)
    assert labels[:, 0, 0].eq(0).all()  # far corner: negative
    torch.testing.assert_close(weight.sum(), torch.tensor(1.0))
    assert set(labels.unique().tolist()) <= {-1.0, 0.0, 1.0}
    assert rpn_targets(None, anchors, 5, 25)[0].eq(0).all()  # negative pair


def test_mask_targets_crop_the_object_mask_to_the_roi():
    m = torch.zeros(1, 1, 100, 100)
    m[:, :, 20:60, 30:50] = 1  # rows 20..59, columns 30..49
    t = mask_targets(m, torch.tensor([[30.0, 20.0, 70.0, 60.0]]), size=8)  # roi twice the width
    ref = torch.zeros(8, 8)
    ref[:, :4] = 1
    torch.testing.assert_close(t[0, 0], ref)


def test_refinement_grid_is_the_anchor_grid():
    from models.siamattn import correlation_geometry
    from trackers.core.decode import generate_anchors

    anchors = generate_anchors(8, (0.33, 0.5, 1, 2, 3), (8,), 25)
    geom = correlation_geometry(25, 8, 255)
    # anchor cell x offsets from the crop centre (127) == the refinement's cell positions
    np.testing.assert_allclose(anchors[:25, 0] + 127, geom.origin + 8 * np.arange(25))


def test_backbone_levels_are_resampled_onto_the_centred_stride8_grid():
    # a level whose cells hold their own crop-pixel x: after resampling, cell j holds 7 + 8 j
    class Ramp(nn.Module):
        def forward(self, x):
            out = []
            for s, o in zip([2, 4, 8, 16, 32], [0.0, 2.0, 6.0, 14.0, 30.0]):  # EfficientNet geometry
                n = -(-x.shape[-1] // s)
                pos = o + s * torch.arange(n, dtype=torch.float32)
                out.append(pos.view(1, 1, 1, n).expand(1, 1, n, n).contiguous())
            return out

    bb = StagedBackbone(Ramp(), [1] * 5, [2, 4, 8, 16, 32], [0.0, 2.0, 6.0, 14.0, 30.0], "ramp")
    levels = bb(torch.zeros(1, 3, 255, 255))
    want = 7 + 8 * torch.arange(31, dtype=torch.float32)
    for f, lo, hi in ((levels[2], 0, 31), (levels[3], 1, 30), (levels[4], 3, 28)):  # edges are clamped
        assert f.shape[-2:] == (31, 31)
        torch.testing.assert_close(f[0, 0, 5, lo:hi], want[lo:hi])


# -- the whole network on a tiny backbone -------------------------------------------------------
class TinyTrunk(nn.Module):
    """Five levels like the real backbones (strides 2, 4, 8, 8, 16), few channels."""

    def __init__(self):
        super().__init__()
        self.s2 = nn.Conv2d(3, 4, 3, 2, 1)
        self.s4 = nn.Conv2d(4, 6, 3, 2, 1)
        self.s8 = nn.Conv2d(6, 8, 3, 2, 1)
        self.s8b = nn.Conv2d(8, 8, 3, 1, 1)
        self.s16 = nn.Conv2d(8, 10, 3, 2, 1)

    def forward(self, x):
        a = torch.relu(self.s2(x / 255))
        b = torch.relu(self.s4(a))
        c = torch.relu(self.s8(b))
        d = torch.relu(self.s8b(c))
        return [a, b, c, d, torch.relu(self.s16(d))]


#: smaller crops than the tracker's 127 / 255 keep the training and ONNX tests quick: a 95 crop
#: gives an 11-cell template (cut to 7), a 175 crop 21 search cells and a 15-cell correlation
SMALL = dict(exemplar_size=95, instance_size=175, box_map_size=15)


def tiny_net(seed=0, **sizes) -> SiamAttn:
    torch.manual_seed(seed)
    cfg = SiamAttnConfig(
        channels=16, refine_channels=8, mask_pool=8, box_pool=3, mask_map_size=16, pretrained_backbone=False, **sizes
    )
    # 3x3 stride-2 convs padded by 1: cell j of a stride-s level sits at s * j crop pixels
    backbone = StagedBackbone(TinyTrunk(), [4, 6, 8, 8, 10], [2, 4, 8, 8, 16], [0.0] * 5, "tiny")
    return SiamAttn(backbone, cfg)


def test_shapes_at_every_stage():
    net = tiny_net().eval()
    z = torch.rand(1, 3, 127, 127) * 255
    x = torch.rand(1, 3, 255, 255) * 255
    levels = net.backbone(x)
    # RPN levels resampled onto 31 cells centred on the crop (stride 8), detail levels kept
    assert [tuple(f.shape[1:]) for f in levels] == [(4, 128, 128), (6, 64, 64), (8, 31, 31), (8, 31, 31), (10, 31, 31)]
    zf = net.template_features(z)
    assert [tuple(f.shape) for f in zf] == [(1, 16, 7, 7)] * 3
    with torch.no_grad():
        net.template(z)
        out = net.track(x)
        assert out["cls"].shape == (1, 10, 25, 25) and out["loc"].shape == (1, 20, 25, 25)
        assert out["box_map"].shape == (1, 8, 25, 25) and out["mask_map"].shape == (1, 8, 16, 16)
        names = {(lvl, br) for lvl, br, _ in out["xcorr"]}
        assert names == {(l, b) for l in ("l3", "l4", "l5") for b in ("cls", "loc", "attn")}
        assert all(t.shape[-1] == 25 for _, _, t in out["xcorr"])
        deltas, mask = net.refine(torch.tensor([[80.0, 100.0, 160.0, 150.0]]))
    assert deltas.shape == (1, 4) and mask.shape == (1, 1, 16, 16)
    torch.testing.assert_close(deltas, torch.zeros(1, 4))  # the box head starts by keeping the box


def _synthetic_batch(B=2, S=15, A=5, M=16):
    g = _gen(42)
    z = torch.rand(B, 3, 95, 95, generator=g) * 255
    x = torch.rand(B, 3, 175, 175, generator=g) * 255
    labels = torch.full((B, A, S, S), -1.0)
    labels[:, :, 6:9, 6:9] = 1
    labels[:, :, :3] = 0
    labels[:, :, -3:] = 0
    pos = (labels == 1).float()
    loc_weight = pos / pos.sum(dim=(1, 2, 3), keepdim=True)
    loc_target = torch.randn(B, 4, A, S, S, generator=g) * 0.2
    rois = torch.tensor([[50.0, 60.0, 120.0, 110.0], [40.0, 45.0, 100.0, 130.0]])[:B]
    box_target = torch.randn(B, 4, generator=g) * 0.1
    mask_target = torch.zeros(B, 1, M, M)
    mask_target[:, :, 4:12, 3:13] = 1
    return z, x, rois, labels, loc_target, loc_weight, box_target, mask_target


def test_training_step_reduces_loss_and_reaches_every_parameter():
    net = tiny_net(1, **SMALL).train()
    z, x, rois, labels, loc_t, loc_w, box_t, mask_t = _synthetic_batch()
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=5e-3)
    losses, grads_seen = [], {n: False for n, p in net.named_parameters() if p.requires_grad}
    for it in range(5):
        opt.zero_grad()
        loss, parts = siamattn_loss(net(z, x, rois), labels, loc_t, loc_w, box_t, mask_t)
        loss.backward()
        for n, p in net.named_parameters():
            if p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0:
                grads_seen[n] = True
        losses.append(float(loss.detach()))
        opt.step()
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.9 * losses[0], losses
    # zero-initialised scales, offsets and last box layer block some gradients on the very first
    # step only; after it every parameter has had a non-zero gradient
    assert [n for n, seen in grads_seen.items() if not seen] == []


# -- ONNX -----------------------------------------------------------------------------------------
def _onnx_run(module, inputs, names):
    ort = pytest.importorskip("onnxruntime")
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, inputs, buf, dynamo=False, opset_version=17, input_names=names)
    sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
    return sess.run(None, {n: t.numpy() for n, t in zip(names, inputs)})


def _close(a, b, rel=1e-4):
    scale = max(float(np.abs(b).max()), 1e-6)
    assert np.abs(a - b).max() <= rel * scale + 1e-5, (np.abs(a - b).max(), scale)


def test_onnx_template_search_refine_branches_match_torch():
    import warnings

    net = tiny_net(2, **SMALL).eval()
    with torch.no_grad():  # non-zero scales so every path is live in the export
        for dsa in net.attention:
            dsa.spatial.alpha.fill_(0.3)
            dsa.channel.scale.fill_(0.2)
            dsa.cross.scale.fill_(0.1)
            dsa.deform.offset.bias.uniform_(-0.7, 0.7)
    z = torch.rand(1, 3, 95, 95, generator=_gen(7)) * 255
    x = torch.rand(1, 3, 175, 175, generator=_gen(8)) * 255
    rois = torch.tensor([[50.0, 55.0, 120.0, 125.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with torch.no_grad():
            zf = TemplateBranch(net)(z)
            ref = SearchBranch(net)(*zf, x)
            ref_refine = RefineBranch(net, 15, 175)(ref[2], ref[3], rois)
        got_z = _onnx_run(TemplateBranch(net), (z,), ["z"])
        got = _onnx_run(SearchBranch(net), (*zf, x), ["z3", "z4", "z5", "x"])
        got_refine = _onnx_run(RefineBranch(net, 15, 175), (ref[2], ref[3], rois), ["box_map", "mask_map", "rois"])
    for a, b in zip(got_z, zf):
        _close(a, b.numpy())
    for a, b in zip(got, ref):
        _close(a, b.numpy())
    for a, b in zip(got_refine, ref_refine):
        _close(a, b.numpy())


# -- the tracker ----------------------------------------------------------------------------------
def test_tracker_runs_bag_with_seeded_weights_mask_and_heatmap(tmp_path):
    import cv2

    from trackers.core import registry
    from trackers.families.siamattn import SiamAttnTracker

    path = shared_path("data", "videos", "bag.avi")
    spec = registry.get("siamattn")
    assert spec.needs_weights and spec.weights_file == "siamattn_effnet.pth"
    tracker = registry.build("siamattn", "seed:0")
    assert isinstance(tracker, SiamAttnTracker)
    cap = cv2.VideoCapture(path)
    ok, frame = cap.read()
    assert ok
    tracker.init(frame, (292.23, 128.36, 145.96, 132.47))
    mask_seen = False
    for _ in range(3):
        ok, frame = cap.read()
        assert ok
        r = tracker.track(frame)
        assert all(math.isfinite(v) for v in r.box) and r.box[2] >= 10 and r.box[3] >= 10
        assert r.score_map is not None and r.score_map.shape == (25, 25)
        assert r.mask is not None and r.mask.shape == frame.shape[:2] and r.mask.dtype == np.float32
        assert 0 <= r.mask.min() and r.mask.max() <= 1
        # the mask covers the picked proposal (mapped from the crop to the frame) and nothing else
        x, y, w, h = r.extra["proposal"]
        ys, xs = np.nonzero(r.mask > 1e-3)
        if len(xs):
            mask_seen = True
            assert xs.min() >= x - 2 and xs.max() <= x + w + 2
            assert ys.min() >= y - 2 and ys.max() <= y + h + 2
            inside = r.mask[
                max(int(y + 0.25 * h), 0) : int(y + 0.75 * h), max(int(x + 0.25 * w), 0) : int(x + 0.75 * w)
            ]
            assert inside.size == 0 or inside.min() > 0
        labels = {c.label for c in r.channels}
        assert {"l3/cls", "l4/loc", "l5/attn"} <= labels
        assert "refine" in r.timings
    # (a seeded network's proposals wander; the first frame's lies on the target and in the frame)
    assert mask_seen
    cap.release()
    # a saved network loads back as a checkpoint (variant detected from its keys)
    from models.checkpoint import CheckpointError

    ckpt = tmp_path / "siamattn_effnet.pth"
    torch.save({"state_dict": tracker.network.state_dict()}, ckpt)
    loaded = registry.build("siamattn", str(ckpt)).network.state_dict()
    a = dict(tracker.network.state_dict())
    assert a.keys() == loaded.keys() and all(torch.equal(a[k].cpu(), loaded[k]) for k in a)
    bad = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3, 3)}, bad)
    with pytest.raises(CheckpointError, match="not a SiamAttn checkpoint"):
        registry.build("siamattn", str(bad))
    with pytest.raises(CheckpointError, match="seed:N"):
        registry.build("siamattn", "seed:x")
