"""SiamDW parity: SiamFC+ (Res22 / Incep22 / Next22) and SiamRPN+ (Res22) against the fixtures
siamdw_* (shared/fixtures/README_classic.md), plus the CIR networks without fixtures.

Tolerances (README_classic "Self-tolerance": the reference differs from itself by up to 2.6e-6
relative between thread counts on these CIR nets): network arrays within 1e-5 of the array's max
|value|; choices (scale, 272x272 peak, RPN cell) exact, a SiamFC peak may move to a neighbouring
pixel only where the recorded margin is below 1e-5 of the peak; states to 1e-3 px; crops identical.
"""

import json

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import shared_path

NET_RTOL = 1e-5
STATE_TOL = 1e-3

FC = {  # fixture id -> (tracker name, model constructor in models.cir)
    "siamdw_siamfcres22": ("siamfc-res22", "siamfc_res22"),
    "siamdw_siamfcincep22": ("siamfc-incep22", "siamfc_incep22"),
    "siamdw_siamfcnext22": ("siamfc-next22", "siamfc_next22"),
}
RPN = "siamdw_siamrpnres22"


def _rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture(scope="module")
def frames():
    cap = cv2.VideoCapture(shared_path("data", "videos", "bag.avi"))
    out = []
    for _ in range(41):
        ok, f = cap.read()
        assert ok
        out.append(f)
    cap.release()
    return out


_cache = {}


def _fixture(fid):
    if fid not in _cache:
        d = {
            "manifest": json.load(open(shared_path("fixtures", fid, "manifest.json"))),
            "io": dict(np.load(shared_path("fixtures", fid, "model_io.npz"))),
            "steps": dict(np.load(shared_path("fixtures", fid, "track_steps.npz"))),
            "json": json.load(open(shared_path("fixtures", fid, "track_steps.json"))),
        }
        from models.seeded import seeded_state_dict_torch

        d["seeded"] = seeded_state_dict_torch(d["manifest"])
        _cache[fid] = d
    return _cache[fid]


def _net(fid):
    from models import cir

    d = _fixture(fid)
    if "net" not in d:
        n = (cir.siamrpn_res22() if fid == RPN else getattr(cir, FC[fid][1])()).eval()
        n.load_state_dict(d["seeded"])
        d["net"] = n
    return d["net"]


def _fc_tracker(fid, frames, network=None):
    from trackers.families.siamfc import SiamFCPlusTracker, default_params

    d = _fixture(fid)
    name = FC[fid][0]
    tr = SiamFCPlusTracker(network if network is not None else _net(fid), default_params(name), name)
    tr.start(frames[0], d["json"]["init"]["target_pos"], d["json"]["init"]["target_sz"])
    return tr


class RecordedNet(torch.nn.Module):
    """Replays the reference's raw network outputs and keeps what it is fed."""

    def __init__(self, outputs):
        super().__init__()
        self.outputs, self.k, self.inputs = outputs, 0, []

    def template(self, z):
        self.z = z

    def track(self, x, with_channels=True):
        self.inputs.append(x.numpy().astype(np.uint8))
        out = {k: torch.from_numpy(v[self.k].copy()) for k, v in self.outputs.items()}
        self.k += 1
        return out


# -- weights --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fid", [*FC, RPN])
def test_seeded_weights_and_keys(fid):
    from models import cir
    from models.seeded import state_dict_sha256

    d = _fixture(fid)
    m, sd = d["manifest"], d["seeded"]
    order = [k for k, _, _ in m["state_dict"]]
    own = (cir.siamrpn_res22() if fid == RPN else getattr(cir, FC[fid][1])()).state_dict()
    assert list(own) == order, "key names / order differ from the reference"
    assert all(list(own[k].shape) == s for k, s, _ in m["state_dict"])
    assert state_dict_sha256(sd, order) == m["state_dict_sha256"]
    for key, s, sa in m["checksums"]:
        v = sd[key].double().numpy()
        assert abs(v.sum() - s) <= 1e-9 * max(1.0, abs(sa)), key
        assert abs(np.abs(v).sum() - sa) <= 1e-9 * max(1.0, sa), key


# -- SiamFC+ --------------------------------------------------------------------------------------
@pytest.mark.parametrize("fid", list(FC))
def test_fc_network_outputs_and_intermediates(fid):
    io = _fixture(fid)["io"]
    net = _net(fid)
    body = net.features.features
    got = {}
    hooks = [
        body.layer1.register_forward_hook(lambda m, i, o: got.__setitem__("layer1", o.clone())),
        net.features.register_forward_hook(lambda m, i, o: got.__setitem__("features", o.clone())),
    ]
    for b in (1, 2, 3):
        hooks.append(
            body.layer2[b].register_forward_hook(lambda m, i, o, b=b: got.__setitem__(f"layer2_block{b}", o.clone()))
        )
    try:
        with torch.no_grad():
            z = torch.from_numpy(io["template_input"])
            x = torch.from_numpy(io["search_input"])
            assert _rel(body.stem(z).numpy(), io["template_stem"]) < NET_RTOL
            assert _rel(body.stem(x[1:2]).numpy(), io["search_stem_scale1"]) < NET_RTOL
            net.template(z)
            t = dict(got)
            out = net.track(x)
    finally:
        for h in hooks:
            h.remove()
    assert _rel(t["layer1"].numpy(), io["template_layer1"]) < NET_RTOL
    for b in (1, 2, 3):
        assert _rel(t[f"layer2_block{b}"].numpy(), io[f"template_layer2_block{b}"]) < NET_RTOL, b
    assert _rel(net.zf.numpy(), io["template_layer2"]) < NET_RTOL
    assert _rel(got["features"].numpy(), io["search_layer2"]) < NET_RTOL
    assert _rel(out["response"].numpy(), io["response"]) < NET_RTOL
    ((_, _, maps),) = out["xcorr"]
    assert maps.shape[1] == io["template_layer2"].shape[1]
    assert _rel(maps.sum(1).numpy(), io["response"][1:2, 0]) < NET_RTOL


@pytest.mark.parametrize("fid", list(FC))
def test_fc_crops_exact(fid, frames):
    d = _fixture(fid)
    s = d["steps"]
    tr = _fc_tracker(fid, frames, RecordedNet({}))
    np.testing.assert_array_equal(tr.network.z.numpy().astype(np.uint8), s["init_exemplar_u8"])
    for i in range(40):
        tr.pos, tr.s_x = s["pos_before"][i].copy(), s["s_x_before"][i]
        sides, beta, search_side = tr.pyramid_geometry()
        assert sides == list(s["in_side_scaled"][i]) and search_side == s["search_side"][i]
        assert beta == s["beta"][i]
        g = s["search_region_geom"][i]  # xmin, ymin are stored shifted by the left / top pads
        c = (sides[-1] + 1) / 2
        assert (round(tr.pos[0] - c), round(tr.pos[1] - c)) == (g[0] - g[4], g[2] - g[5])
        assert [round(beta * v) for v in sides] == list(s["scale_crop_geom"][i, :, 8])
    for j, k in enumerate(s["detail_step"]):
        tr.pos, tr.s_x = s["pos_before"][k - 1].copy(), s["s_x_before"][k - 1]
        crops = np.stack([c.transpose(2, 0, 1) for c in tr.crop_scales(frames[k])])
        np.testing.assert_array_equal(crops, s["detail_x_crops_u8"][j], err_msg=f"step {k}")


@pytest.mark.parametrize("fid", list(FC))
def test_fc_decode_teacher_forced(fid, frames):
    s = _fixture(fid)["steps"]
    tr = _fc_tracker(fid, frames, RecordedNet({}))
    detail = {int(k): j for j, k in enumerate(s["detail_step"])}
    for i in range(40):
        tr.pos, tr.size, tr.s_x = s["pos_before"][i].copy(), s["sz_before"][i].copy(), s["s_x_before"][i]
        step = tr.score(s["raw_response"][i])
        assert _rel(step.up_max, s["up_max_per_scale"][i]) < NET_RTOL
        assert _rel(step.up_max_penalized, s["up_max_penalized"][i]) < NET_RTOL
        assert step.best_scale == s["best_scale"][i]
        assert step.chosen_min == pytest.approx(s["chosen_up_min"][i], rel=NET_RTOL)
        assert step.chosen_sum == pytest.approx(s["chosen_norm_sum"][i], rel=NET_RTOL)
        r, c = step.peak_rc
        if (r, c) != tuple(s["final_peak_rc"][i]):
            assert s["final_peak_margin"][i] < 1e-5 * s["final_peak_value"][i], i + 1
            assert max(abs(r - s["final_peak_rc"][i][0]), abs(c - s["final_peak_rc"][i][1])) <= 1
        else:
            np.testing.assert_allclose(step.disp_response, s["disp_instance_final"][i], atol=1e-9)
        assert step.final[r, c] == pytest.approx(s["final_peak_value"][i], rel=1e-5)
        if i + 1 in detail:
            assert _rel(step.chosen_up, s["detail_chosen_up"][detail[i + 1]]) < NET_RTOL
            assert _rel(step.final, s["detail_final_map"][detail[i + 1]]) < NET_RTOL
        tr.update_state(step, frames[i + 1].shape)
        np.testing.assert_allclose(tr.pos, s["pos_after"][i], atol=STATE_TOL)
        np.testing.assert_allclose(tr.size, s["sz_after"][i], atol=STATE_TOL)
        assert tr.s_x == pytest.approx(s["s_x_after"][i], abs=STATE_TOL)


@pytest.mark.parametrize("fid", list(FC))
def test_fc_forty_step_run(fid, frames):
    """Frames 1..40 through the whole loop (network replaced by its recorded responses)."""
    s = _fixture(fid)["steps"]
    rec = RecordedNet({"response": s["raw_response"][:, :, None]})
    tr = _fc_tracker(fid, frames, rec)
    for i in range(40):
        res = tr.track(frames[i + 1])
        np.testing.assert_allclose(tr.pos, s["pos_after"][i], atol=STATE_TOL, err_msg=f"step {i + 1}")
        np.testing.assert_allclose(tr.size, s["sz_after"][i], atol=STATE_TOL)
        assert res.extra["scale"] == s["best_scale"][i]
    for j, k in enumerate(s["detail_step"]):
        np.testing.assert_array_equal(rec.inputs[k - 1], s["detail_x_crops_u8"][j])


def test_fc_real_network_step_and_result(frames):
    s = _fixture("siamdw_siamfcres22")["steps"]
    tr = _fc_tracker("siamdw_siamfcres22", frames)
    res = tr.track(frames[1])
    np.testing.assert_allclose(tr.pos, s["pos_after"][0], atol=STATE_TOL)
    assert res.score_map.shape == (272, 272) and 0.0 <= res.score <= 1.0
    assert res.channels[0].maps.shape == (512, 17, 17)
    x, y, w, h = res.box
    assert (x + w / 2, y + h / 2) == pytest.approx(tuple(s["pos_after"][0]))


@pytest.mark.parametrize("fid", list(FC) + [RPN])
def test_open_loop_with_real_network(fid, frames):
    """The real network in the loop, open loop over frames 1..40: every state within STATE_TOL."""
    s = _fixture(fid)["steps"]
    tr = _rpn_tracker(frames) if fid == RPN else _fc_tracker(fid, frames)
    for i in range(40):
        tr.track(frames[i + 1])
        pos, size = (tr.center, tr.size) if fid == RPN else (tr.pos, tr.size)
        np.testing.assert_allclose(pos, s["pos_after"][i], atol=STATE_TOL, err_msg=f"step {i + 1}")
        np.testing.assert_allclose(size, s["sz_after"][i], atol=STATE_TOL, err_msg=f"step {i + 1}")


# -- SiamRPN+ -------------------------------------------------------------------------------------
def test_rpn_network_outputs_and_intermediates():
    io = _fixture(RPN)["io"]
    net = _net(RPN)
    body, head = net.features.features, net.connect_model
    with torch.no_grad():
        z = torch.from_numpy(io["template_input"])
        x = torch.from_numpy(io["search_input"])
        assert _rel(body.stem(z).numpy(), io["template_stem"]) < NET_RTOL
        assert _rel(body.layer1(body.stem(z)).numpy(), io["template_layer1"]) < NET_RTOL
        zf, xf = net.features(z), net.features(x)
        assert _rel(body.stem(x).numpy(), io["search_stem"]) < NET_RTOL
        assert _rel(zf.numpy(), io["template_layer2"]) < NET_RTOL
        assert _rel(xf.numpy(), io["search_layer2"]) < NET_RTOL
        net.template(z)
        assert _rel(net.cls_kernel.reshape(1, -1, 3, 3).numpy(), io["cls_kernel"]) < NET_RTOL
        assert _rel(net.reg_kernel.reshape(1, -1, 3, 3).numpy(), io["reg_kernel"]) < NET_RTOL
        assert _rel(head.search_cls(xf).numpy(), io["cls_feature"]) < NET_RTOL
        assert _rel(head.search_reg(xf).numpy(), io["loc_feature"]) < NET_RTOL
        reg_corr = torch.nn.functional.conv2d(head.search_reg(xf), net.reg_kernel)
        assert _rel(reg_corr.numpy(), io["reg_corr"]) < NET_RTOL
        out = net.track(x)
    assert _rel(out["cls"].numpy(), io["cls_out"]) < NET_RTOL
    assert _rel(out["loc"].numpy(), io["reg_out"]) < NET_RTOL
    ((_, _, maps),) = out["xcorr"]
    assert _rel(maps.sum(1).numpy(), io["cls_out"].sum(1)) < NET_RTOL


def _rpn_tracker(frames, network=None):
    from trackers.families.siamdw import SiamRPNPlusTracker

    d = _fixture(RPN)
    tr = SiamRPNPlusTracker(network if network is not None else _net(RPN))
    tr.start(frames[0], d["json"]["init"]["target_pos"], d["json"]["init"]["target_sz"])
    return tr


def test_rpn_anchors_window_and_crops(frames):
    from trackers.core import decode as D

    s = _fixture(RPN)["steps"]
    rec = RecordedNet({})
    tr = _rpn_tracker(frames, rec)
    np.testing.assert_array_equal(rec.z.numpy().astype(np.uint8), s["init_exemplar_u8"])
    np.testing.assert_array_equal(tr.decoder.grid(17), s["anchor"].reshape(4, -1).T)
    np.testing.assert_array_equal(D.cosine_window(17, 5), s["window"].reshape(-1))
    for i in range(40):
        tr.center, tr.size = s["pos_before"][i].copy(), s["sz_before"][i].copy()
        patch, scale_z, s_x = tr.crop_search(frames[i + 1])
        assert s_x == s["s_x_rounded"][i] and scale_z == pytest.approx(s["scale_z"][i], rel=1e-12)
        g = s["crop_geom"][i]
        c = (s_x + 1) / 2
        assert (round(tr.center[0] - c), round(tr.center[1] - c)) == (g[0] - g[4], g[2] - g[5])
        if i + 1 in list(s["detail_step"]):
            j = list(s["detail_step"]).index(i + 1)
            np.testing.assert_array_equal(patch.transpose(2, 0, 1), s["detail_x_crop_u8"][j])


def test_rpn_decode_teacher_forced(frames):
    s = _fixture(RPN)["steps"]
    tr = _rpn_tracker(frames, RecordedNet({}))
    detail = {int(k): j for j, k in enumerate(s["detail_step"])}
    for i in range(40):
        tr.center, tr.size = s["pos_before"][i].copy(), s["sz_before"][i].copy()
        st = tr.decode(s["raw_cls"][i][None], s["raw_reg"][i][None], s["scale_z"][i], frames[i + 1].shape)
        assert _rel(st.score, s["score"][i].reshape(-1)) < 1e-6
        assert _rel(st.penalty, s["penalty"][i].reshape(-1)) < 1e-6
        assert _rel(st.pscore, s["pscore"][i].reshape(-1)) < 1e-6
        a, r, c = s["best_arc"][i]
        assert st.best == a * 289 + r * 17 + c, f"step {i + 1}"
        assert st.lr == pytest.approx(s["lr"][i], rel=1e-6)
        np.testing.assert_allclose(st.bbox_delta, s["target"][i], rtol=1e-6, atol=1e-6)
        if i + 1 in detail:
            assert _rel(st.pred_bbox, s["detail_delta_decoded"][detail[i + 1]].reshape(4, -1)) < 1e-6
        np.testing.assert_allclose(st.center, s["pos_after"][i], atol=STATE_TOL)
        np.testing.assert_allclose(st.size, s["sz_after"][i], atol=STATE_TOL)


def test_rpn_forty_step_run(frames):
    s = _fixture(RPN)["steps"]
    rec = RecordedNet({"cls": s["raw_cls"][:, None], "loc": s["raw_reg"][:, None]})
    tr = _rpn_tracker(frames, rec)
    for i in range(40):
        res = tr.track(frames[i + 1])
        np.testing.assert_allclose(tr.center, s["pos_after"][i], atol=STATE_TOL, err_msg=f"step {i + 1}")
        np.testing.assert_allclose(tr.size, s["sz_after"][i], atol=STATE_TOL)
        assert 0.0 <= res.score <= 1.0
    for j, k in enumerate(s["detail_step"]):
        np.testing.assert_array_equal(rec.inputs[k - 1][0], s["detail_x_crop_u8"][j])


def test_rpn_real_network_step(frames):
    s = _fixture(RPN)["steps"]
    tr = _rpn_tracker(frames)
    res = tr.track(frames[1])
    np.testing.assert_allclose(tr.center, s["pos_after"][0], atol=STATE_TOL)
    assert res.score_map.shape == (17, 17)
    assert res.channels[0].maps.shape == (256, 17, 17)


# -- released checkpoint formats ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,fid,fmt",
    [
        ("siamfc-res22", "siamdw_siamfcres22", "module"),
        ("siamfc-incep22", "siamdw_siamfcincep22", "plain"),
        ("siamfc-next22", "siamdw_siamfcnext22", "state_dict"),
        ("siamrpn-res22", RPN, "module"),
    ],
)
def test_released_checkpoint_formats_load(name, fid, fmt, tmp_path):
    """SiamDW's snapshots are torch.save'd state_dicts, plain or under 'state_dict', with the
    'module.' prefix of DataParallel training (its load_pretrain strips it)."""
    from models.checkpoint import CheckpointError
    from trackers.core import registry

    sd = _fixture(fid)["seeded"]
    obj = {
        "plain": sd,
        "module": {"module." + k: v for k, v in sd.items()},
        "state_dict": {"state_dict": {"module." + k: v for k, v in sd.items()}, "epoch": 50},
    }[fmt]
    path = tmp_path / registry.get(name).weights_file
    torch.save(obj, path)
    tr = registry.build(name, weights=str(path))
    for k, v in tr.network.state_dict().items():
        assert torch.equal(v, sd[k]), k
    bad = dict(sd)
    key = [k for k, v in sd.items() if v.ndim == 4][-1]
    bad[key] = bad[key][:, :-1]
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match=key.replace(".", r"\.")):
        registry.build(name, weights=str(tmp_path / "bad.pth"))
    path.unlink()  # the SiamRPN+ file is 130 MB: do not leave it in pytest's kept temp folders
    (tmp_path / "bad.pth").unlink()


# -- CIR networks without fixtures ----------------------------------------------------------------
@pytest.mark.parametrize(
    "ctor,rf,stride,z_out,x_out,channels",
    [
        ("ciresnet16", 77, 8, 7, 23, 512),
        ("ciresnet22", 93, 8, 5, 21, 512),
        ("ciresnet43", 121, 4, 2, 34, 256),
    ],
)
def test_ciresnet_geometry(ctor, rf, stride, z_out, x_out, channels):
    """Receptive field / stride of the paper's CIResNets (RF 77 / 93 for -16 / -22 at stride 8;
    the 43-layer net halves the stride to 4), checked analytically and by the output sizes."""
    from models import cir

    net = getattr(cir, ctor)().eval()
    assert net.geometry() == (rf, stride)
    with torch.no_grad():
        z = net(torch.zeros(1, 3, 127, 127))
        x = net(torch.zeros(1, 3, 255, 255))
    assert z.shape == (1, channels, z_out, z_out) and x.shape == (1, channels, x_out, x_out)
    # one more output cell per `stride` input pixels
    assert (x.shape[-1] - z.shape[-1]) * stride == 255 - 127
    # receptive field: a pixel change reaches exactly the outputs whose window covers it
    with torch.no_grad():
        base = net(torch.zeros(1, 3, 255, 255))
        img = torch.zeros(1, 3, 255, 255)
        img[..., 127, 127] = 100.0
        changed = (net(img) - base).abs().amax(1)[0] > 0
    cols = torch.nonzero(changed.any(0)).flatten()
    span = (cols.max() - cols.min()).item() + 1
    # the outputs reached by one pixel span RF / stride cells (+-1 for alignment)
    assert abs(span - rf / stride) <= 1.5


def test_cir_units_crop_after_addition():
    from models import cir

    unit = cir.CIRBottleneck(256, 64, last_relu=True).eval()
    x = torch.randn(1, 256, 9, 9)
    with torch.no_grad():
        y = unit(x)
    assert y.shape == (1, 256, 7, 7)
    inc = cir.CIRInceptionUnit(64, 64).eval()
    nxt = cir.CIRNeXtUnit(64).eval()
    with torch.no_grad():
        assert inc(torch.randn(1, 64, 9, 9)).shape == (1, 320, 7, 7)
        assert nxt(torch.randn(1, 64, 9, 9)).shape == (1, 256, 7, 7)


@pytest.mark.parametrize("fid", list(FC))
def test_fc_params_are_the_reference_config(fid, frames):
    """Each SiamFC+ tracker runs with its OTB2015 test config (manifest hyper_parameters_used)."""
    hp = _fixture(fid)["manifest"]["hyper_parameters_used"]
    tr = _fc_tracker(fid, frames, RecordedNet({}))
    p = tr.params
    names = {
        "exemplar_size": "exemplar_size",
        "instance_size": "instance_size",
        "context_amount": "context_amount",
        "num_scale": "scale_num",
        "scale_step": "scale_step",
        "scale_lr": "scale_lr",
        "scale_penalty": "scale_penalty",
        "w_influence": "window_influence",
        "score_size": "response_size",
        "response_up": "response_up",
        "total_stride": "total_stride",
    }
    for ref, ours in names.items():
        assert getattr(p, ours) == hp[ref], ref
    np.testing.assert_array_equal(tr.scale_factors(), hp["scales"])
    assert (tr.s_x, tr.min_s_x, tr.max_s_x) == (hp["s_x"], hp["min_s_x"], hp["max_s_x"])


def test_rpn_params_are_the_reference_config():
    from trackers.families.siamdw import SiamRPNPlusParams, SiamRPNPlusTracker

    hp = _fixture(RPN)["manifest"]["hyper_parameters_used"]
    p = SiamRPNPlusParams()
    for k in ("penalty_k", "window_influence", "lr", "exemplar_size", "instance_size", "context_amount"):
        assert getattr(p, k) == hp[k], k
    dec = SiamRPNPlusTracker(torch.nn.Identity(), p).decoder
    assert list(dec.ratios) == hp["ratios"] and list(dec.scales) == hp["scales"]
    assert dec.stride == hp["total_stride"] and dec.anchor_num == hp["anchor_num"]
