"""siamfc-pytorch parity (fixture siamfc_alexnet, shared/fixtures/README_classic.md).

Tolerances (README_classic "Self-tolerance"): network arrays within 1e-5 of the array's max |value|
(the reference itself is bit-identical across thread counts for this model; our conv order differs
slightly, measured 4e-6); choices (scale, 272x272 peak) exact, except that a peak may move to a
neighbouring pixel where the recorded `final_peak_margin` is below 1e-5 of the peak value; states
to 1e-3 px. Crops are integer-valued uint8 and must be identical.
"""

import json

import cv2
import numpy as np
import pytest
import torch

from tests.conftest import shared_path

FIXTURE = "siamfc_alexnet"
NET_RTOL = 1e-5  # of the array's max |value|
STATE_TOL = 1e-3  # px


def _rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / max(np.abs(b).max(), 1e-30))


@pytest.fixture(scope="module")
def fx():
    d = {"manifest": json.load(open(shared_path("fixtures", FIXTURE, "manifest.json")))}
    d["io"] = dict(np.load(shared_path("fixtures", FIXTURE, "model_io.npz")))
    d["steps"] = dict(np.load(shared_path("fixtures", FIXTURE, "track_steps.npz")))
    d["json"] = json.load(open(shared_path("fixtures", FIXTURE, "track_steps.json")))
    cap = cv2.VideoCapture(shared_path("data", "videos", "bag.avi"))
    frames = []
    for _ in range(41):
        ok, f = cap.read()
        assert ok
        frames.append(f)
    cap.release()
    d["frames"] = frames
    return d


@pytest.fixture(scope="module")
def seeded(fx):
    from models.seeded import seeded_state_dict_torch

    return seeded_state_dict_torch(fx["manifest"])


@pytest.fixture(scope="module")
def net(seeded):
    from models.siamfc import SiamFCAlexNet

    n = SiamFCAlexNet().eval()
    n.load_state_dict(seeded)
    return n


def _tracker(net, fx):
    from trackers.families.siamfc import SiamFCTracker

    tr = SiamFCTracker(net)
    init = fx["json"]["init"]
    (cy, cx), (h, w) = init["center_yx"], init["target_sz_hw"]
    tr.start(fx["frames"][0], (cx, cy), (w, h))
    return tr


class RecordedNet(torch.nn.Module):
    """Stands in for the network: returns the reference's raw responses step by step and keeps
    the search batches it is fed (so a 40-step run checks crops -> decode -> state alone)."""

    def __init__(self, raw):
        super().__init__()
        self.raw, self.k, self.inputs = raw, 0, []

    def template(self, z):
        self.z = z

    def track(self, x, with_channels=True):
        self.inputs.append(x.numpy().astype(np.uint8))
        out = {"response": torch.from_numpy(self.raw[self.k][:, None].copy())}
        self.k += 1
        return out


def test_seeded_weights_reproduce_manifest(fx, seeded):
    from models.seeded import state_dict_sha256

    m = fx["manifest"]
    assert [k for k, _, _ in m["state_dict"]] == list(seeded)
    assert state_dict_sha256(seeded, [k for k, _, _ in m["state_dict"]]) == m["state_dict_sha256"]
    for key, s, sa in m["checksums"]:
        v = seeded[key].double().numpy()
        # float64 sums of float32 values: equal to the exact sums to ~1e-12 relative
        assert abs(v.sum() - s) <= 1e-9 * max(1.0, abs(sa)), key
        assert abs(np.abs(v).sum() - sa) <= 1e-9 * max(1.0, sa), key


def test_state_dict_keys_and_shapes_match_manifest(fx):
    from models.siamfc import SiamFCAlexNet

    own = {k: list(v.shape) for k, v in SiamFCAlexNet().state_dict().items()}
    assert own == {k: s for k, s, _ in fx["manifest"]["state_dict"]}


def test_network_outputs_and_intermediates(fx, net):
    io = fx["io"]
    feats = {}
    hooks = [
        getattr(net.backbone, f"conv{i}").register_forward_hook(
            lambda m, i, o, name=f"conv{i}": feats.__setitem__(name, o.detach().clone())
        )
        for i in range(1, 6)
    ]
    try:
        with torch.no_grad():
            net.template(torch.from_numpy(io["template_input"]))
            t = dict(feats)
            out = net.track(torch.from_numpy(io["search_input"]))
    finally:
        for h in hooks:
            h.remove()
    for i in range(1, 6):
        assert _rel(t[f"conv{i}"].numpy(), io[f"template_conv{i}"]) < NET_RTOL, f"template conv{i}"
    assert _rel(feats["conv1"][1:2].numpy(), io["search_conv1_scale1"]) < NET_RTOL
    assert _rel(feats["conv2"][1:2].numpy(), io["search_conv2_scale1"]) < NET_RTOL
    assert _rel(feats["conv5"].numpy(), io["search_conv5"]) < NET_RTOL
    assert out["response"].shape == (3, 1, 17, 17)
    assert _rel(out["response"].numpy(), io["response"]) < NET_RTOL
    # the channel view: 256 depth-wise maps of the middle scale that add up to its response
    ((level, branch, maps),) = out["xcorr"]
    assert maps.shape == (1, 256, 17, 17)
    assert _rel(maps.sum(1).numpy(), io["response"][1:2, 0]) < NET_RTOL


def test_exemplar_crop_exact(fx, net):
    tr = _tracker(net, fx)
    z = tr.crop(tr._input(fx["frames"][0]), tr.z_sz, 127)
    np.testing.assert_array_equal(z.transpose(2, 0, 1)[None], fx["steps"]["init_exemplar_u8"])
    assert tr.z_sz == pytest.approx(fx["json"]["init"]["z_sz"], abs=1e-4)
    assert tr.x_sz == pytest.approx(fx["json"]["init"]["x_sz"], abs=1e-4)


def test_search_crops_exact_at_detail_steps(fx, net):
    s = fx["steps"]
    tr = _tracker(net, fx)
    for j, k in enumerate(s["detail_step"]):
        i = k - 1
        tr.center = s["center_before_yx"][i].astype(np.float32)
        tr.x_sz = s["x_sz_before"][i]
        img = tr._input(fx["frames"][k])
        for si, f in enumerate(tr.scale_factors()):
            ymin, xmin, size, npad = tr.crop_geometry(tr.x_sz * f, img.shape)
            assert [ymin, xmin, ymin + size, xmin + size, npad, size] == list(s["crop_geom"][i, si]), (k, si)
        crops = np.stack([c.transpose(2, 0, 1) for c in tr.crop_scales(img)])
        np.testing.assert_array_equal(crops, s["detail_x_crops_u8"][j], err_msg=f"step {k}")


def _check_step(step, s, i, upscale_detail=None):
    assert _rel(step.up_max, s["up_max_per_scale"][i]) < NET_RTOL
    assert _rel(step.up_max_penalized, s["up_max_penalized"][i]) < NET_RTOL
    assert step.best_scale == s["scale_id"][i]
    assert step.chosen_min == pytest.approx(s["chosen_min"][i], rel=NET_RTOL, abs=NET_RTOL)
    assert step.chosen_sum == pytest.approx(s["chosen_sum_after_min"][i], rel=NET_RTOL)
    r, c = step.peak_rc
    if (r, c) != tuple(s["final_peak_rc"][i]):
        # a one-pixel move is acceptable only where the reference's own margin is tiny
        assert s["final_peak_margin"][i] < 1e-5 * s["final_peak_value"][i], i + 1
        assert max(abs(r - s["final_peak_rc"][i][0]), abs(c - s["final_peak_rc"][i][1])) <= 1
    assert step.final[r, c] == pytest.approx(s["final_peak_value"][i], rel=1e-5)


def test_decode_teacher_forced_every_step(fx, net):
    """Each step from the recorded state and raw responses: scale, peak, displacement, state."""
    s = fx["steps"]
    tr = _tracker(net, fx)
    detail = {int(k): j for j, k in enumerate(s["detail_step"])}
    for i in range(40):
        tr.center = s["center_before_yx"][i].astype(np.float32)
        tr.target_sz = s["target_sz_before_hw"][i].astype(np.float32)
        tr.x_sz, tr.z_sz = s["x_sz_before"][i], s["z_sz_before"][i]
        step = tr.score(s["raw_response"][i])
        _check_step(step, s, i)
        if i + 1 in detail:
            j = detail[i + 1]
            assert _rel(step.chosen_up, s["detail_chosen_up"][j]) < NET_RTOL
            assert _rel(step.final, s["detail_final_map"][j]) < NET_RTOL
        np.testing.assert_allclose(step.disp_response[::-1], s["disp_in_response"][i], atol=1e-9)
        tr.update_state(step, fx["frames"][i + 1].shape)
        np.testing.assert_allclose(tr.center, s["center_after_yx"][i], atol=STATE_TOL)
        np.testing.assert_allclose(tr.target_sz, s["target_sz_after_hw"][i], atol=STATE_TOL)
        assert tr.x_sz == pytest.approx(s["x_sz_after"][i], abs=STATE_TOL)
        # the returned box: the reference's 1-indexed ltwh minus 1 (ours is 0-indexed)
        np.testing.assert_allclose(
            np.array(tr.box()) + [1, 1, 0, 0], s["box_out_ltwh_1indexed"][i][[0, 1, 2, 3]], atol=STATE_TOL
        )


def test_forty_step_run_matches(fx, net):
    """The whole loop over frames 1..40 (network replaced by its recorded outputs): crops fed at
    the detail steps are the reference's, and the free-running state never leaves 1e-3 px."""
    from trackers.families.siamfc import SiamFCTracker

    s = fx["steps"]
    rec = RecordedNet(s["raw_response"])
    tr = SiamFCTracker(rec)
    init = fx["json"]["init"]
    (cy, cx), (h, w) = init["center_yx"], init["target_sz_hw"]
    tr.start(fx["frames"][0], (cx, cy), (w, h))
    np.testing.assert_array_equal(rec.z.numpy().astype(np.uint8), s["init_exemplar_u8"])
    for i in range(40):
        res = tr.track(fx["frames"][i + 1])
        np.testing.assert_allclose(tr.center, s["center_after_yx"][i], atol=STATE_TOL, err_msg=f"step {i + 1}")
        np.testing.assert_allclose(tr.target_sz, s["target_sz_after_hw"][i], atol=STATE_TOL)
        assert res.extra["scale"] == s["scale_id"][i]
    for j, k in enumerate(s["detail_step"]):
        np.testing.assert_array_equal(rec.inputs[k - 1], s["detail_x_crops_u8"][j])


def test_real_network_first_steps_and_result(fx, net):
    """Network in the loop, open loop over all 40 frames: the same states as the reference; the
    result carries a 272x272 map, its frame placement, 256 channel maps and a [0, 1] confidence."""
    s = fx["steps"]
    tr = _tracker(net, fx)
    for i in range(40):
        res = tr.track(fx["frames"][i + 1])
        np.testing.assert_allclose(tr.center, s["center_after_yx"][i], atol=STATE_TOL, err_msg=f"step {i + 1}")
        np.testing.assert_allclose(tr.target_sz, s["target_sz_after_hw"][i], atol=STATE_TOL)
    assert res.score_map.shape == (272, 272) and res.score_map.dtype == np.float32
    assert 0.0 <= res.score <= 1.0
    assert len(res.channels) == 1 and res.channels[0].maps.shape == (256, 17, 17)
    r = res.search_region
    x0, y0, x1, y1 = r.score_extent
    # the map's peak pixel lands on the new centre
    pr, pc = res.extra["peak_rc"]
    cx = x0 + (pc + 0.5) * (x1 - x0) / 272
    cy = y0 + (pr + 0.5) * (y1 - y0) / 272
    assert (cx, cy) == pytest.approx(tr.center_xy(), abs=1e-4)  # float32 state
    assert set(res.timings) == {"crop", "network", "decode"}


def test_released_checkpoint_format_loads(fx, seeded, tmp_path):
    """siamfc-pytorch saves `net.state_dict()` with torch.save (siamfc_alexnet_e50.pth)."""
    from models.checkpoint import CheckpointError
    from trackers.core import registry

    path = tmp_path / "siamfc_alexnet_e50.pth"
    torch.save(seeded, path)
    tr = registry.build("siamfc", weights=str(path))
    for k, v in tr.network.state_dict().items():
        assert torch.equal(v, seeded[k]), k
    bad = {k: v for k, v in seeded.items() if not k.startswith("backbone.conv5")}
    torch.save(bad, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="backbone.conv5.0.weight"):
        registry.build("siamfc", weights=str(tmp_path / "bad.pth"))


def test_params_are_the_reference_defaults(fx):
    """SiamFCParams defaults = TrackerSiamFC.parse_args defaults as the reference ran them."""
    from trackers.families.siamfc import SiamFCParams, SiamFCTracker

    hp = fx["manifest"]["hyper_parameters_used"]
    p = SiamFCParams()
    names = {
        "exemplar_sz": "exemplar_size",
        "instance_sz": "instance_size",
        "context": "context_amount",
        "scale_num": "scale_num",
        "scale_step": "scale_step",
        "scale_lr": "scale_lr",
        "scale_penalty": "scale_penalty",
        "window_influence": "window_influence",
        "response_sz": "response_size",
        "response_up": "response_up",
        "total_stride": "total_stride",
    }
    for ref, ours in names.items():
        assert getattr(p, ours) == hp[ref], ref
    tr = SiamFCTracker(torch.nn.Identity(), p)
    np.testing.assert_array_equal(tr.scale_factors(), fx["manifest"]["derived"]["scale_factors"])
    assert tr.upscale_size() == fx["manifest"]["derived"]["upscale_sz"]
