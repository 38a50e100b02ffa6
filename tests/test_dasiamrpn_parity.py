"""DaSiamRPN parity with foolwood/DaSiamRPN (fixtures dasiamrpn_big / dasiamrpn_vot, README_classic.md),
plus the distractor-aware / long-term part on a constructed case.

Tolerances (README_classic.md, "Self-tolerance"): network arrays within 1e-5 of the array's max
|value|; choices exact; states to 1e-3 px. Crops are uint8 and compared exactly. The softmax
score differs by 1 ulp between implementations (6e-8); pscore/penalty are compared to 1e-6.
"""

import json

import cv2
import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError
from models.dasiamrpn import DaSiamRPN
from models.seeded import seeded_state_dict_torch, state_dict_sha256
from tests.conftest import shared_path
from trackers.core import registry
from trackers.core.base import TrackingState
from trackers.families.dasiamrpn import DaSiamRPNTracker, default_params, py2_round

NET_REL = 1e-5
STATE_PX = 1e-3
FIXTURES = ["dasiamrpn_big", "dasiamrpn_vot"]


def _variant(fixture):
    return fixture.split("_")[1]


class Fixture:
    def __init__(self, name):
        d = shared_path("fixtures", name)
        self.manifest = json.load(open(f"{d}/manifest.json"))
        self.io = np.load(f"{d}/model_io.npz")
        self.steps = np.load(f"{d}/track_steps.npz")
        self.json = json.load(open(f"{d}/track_steps.json"))
        self.state = seeded_state_dict_torch(self.manifest)
        self.net = DaSiamRPN(_variant(name))
        self.net.load_state_dict(self.state)
        self.net.eval()


_cache = {}


@pytest.fixture(scope="module", params=FIXTURES)
def fx(request):
    if request.param not in _cache:
        _cache[request.param] = Fixture(request.param)
    return _cache[request.param]


@pytest.fixture(scope="module")
def frames():
    cap = cv2.VideoCapture(shared_path("data", "videos", "bag.avi"))
    out = []
    while len(out) < 41:
        ok, f = cap.read()
        if not ok:
            break
        out.append(f)
    assert len(out) == 41
    return out


def _rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def _tracker(fx, **kw):
    return DaSiamRPNTracker(fx.net, default_params(_variant(fx.manifest["id"]), **kw))


def test_seeded_weights(fx):
    m = fx.manifest
    assert state_dict_sha256(fx.state, [k for k, _, _ in m["state_dict"]]) == m["state_dict_sha256"]
    # the sha256 above is the bit-exact proof; the per-tensor sums (exact in the manifest) are
    # checked with float64 accumulation, to 1e-9 relative, so a mismatch names the tensor
    for key, s, sa in m["checksums"]:
        v = fx.state[key].double()
        assert float(v.sum()) == pytest.approx(s, rel=1e-9, abs=1e-12), key
        assert float(v.abs().sum()) == pytest.approx(sa, rel=1e-9, abs=1e-12), key
    # the model's own key order is the manifest's: the released .model files load by name
    assert [k for k, _, _ in m["state_dict"]] == list(fx.net.state_dict())


def test_hyper_parameters(fx):
    p = default_params(_variant(fx.manifest["id"]))
    used = fx.manifest["hyper_parameters_used"]
    for k in (
        "lr",
        "window_influence",
        "penalty_k",
        "instance_size",
        "exemplar_size",
        "context_amount",
        "total_stride",
        "adaptive",
    ):
        assert getattr(p, k) == used[k], k


@torch.no_grad()
def test_model_io(fx):
    io, net = fx.io, fx.net
    net.template(torch.from_numpy(io["template_input"]))
    assert _rel(net.r1_kernel, io["r1_kernel"]) < NET_REL
    assert _rel(net.cls1_kernel, io["cls1_kernel"]) < NET_REL
    assert _rel(net.featureExtract(torch.from_numpy(io["template_input"])), io["template_feat"]) < NET_REL
    x = torch.from_numpy(io["search_input"])
    x_f = net.featureExtract(x)
    assert _rel(x_f, io["search_feat"]) < NET_REL
    assert _rel(net.conv_r2(x_f), io["r2_feature"]) < NET_REL
    out = net.track(x)
    assert _rel(out["cls_feature"], io["cls2_feature"]) < NET_REL
    assert _rel(out["cls"], io["cls_corr_out"]) < NET_REL
    assert _rel(out["loc"], io["delta_out"]) < NET_REL
    # channel view: the C depth-wise maps add up to sum over anchors of (fg - bg) logits
    level, branch, maps = out["xcorr"][0]
    fg_bg = (out["cls"][0, 5:] - out["cls"][0, :5]).sum(0)
    assert maps.shape[1] == net.feature_out
    assert _rel(maps[0].sum(0), fg_bg.numpy()) < NET_REL


def test_anchors_window_exemplar(fx, frames):
    ts, init = fx.steps, fx.json["init"]
    trk = _tracker(fx, distractor_aware=False)
    trk.init_state(frames[0], init["target_pos"], init["target_sz"])
    assert trk.instance_size == 271  # adaptive: bag's target is large -> 271
    assert np.array_equal(trk.decoder.grid(19), ts["anchor"])
    assert np.array_equal(trk._window(19), ts["window"])
    assert py2_round(trk.context_size()) == init["s_z"]
    assert np.array_equal(trk.crop_exemplar(frames[0]).transpose(2, 0, 1)[None], ts["init_exemplar_u8"])


def test_search_crops_exact(fx, frames):
    """Every step's crop side; the recorded crops pixel for pixel (Python-2 rounding ties included)."""
    ts = fx.steps
    trk = _tracker(fx, distractor_aware=False)
    trk.init_state(frames[0], fx.json["init"]["target_pos"], fx.json["init"]["target_sz"])
    detail = list(ts["detail_step"])
    for i in range(40):
        trk.center, trk.size = ts["pos_before"][i].copy(), ts["sz_before"][i].copy()
        patch, scale_z, s_x = trk.crop_search(frames[i + 1])
        assert s_x == ts["s_x_rounded"][i]
        assert scale_z == pytest.approx(ts["scale_z"][i], rel=1e-12)
        if i + 1 in detail:
            assert np.array_equal(patch.transpose(2, 0, 1), ts["detail_x_crop_u8"][detail.index(i + 1)]), i + 1


def test_decode_teacher_forced(fx, frames):
    """Each step from the recorded state and raw outputs: scores, penalties, choice, lr, new state."""
    ts = fx.steps
    trk = _tracker(fx, distractor_aware=False)
    trk.init_state(frames[0], fx.json["init"]["target_pos"], fx.json["init"]["target_sz"])
    detail = list(ts["detail_step"])
    for i in range(40):
        trk.center, trk.size = ts["pos_before"][i].copy(), ts["sz_before"][i].copy()
        st = trk.decode(ts["raw_score"][i][None], ts["raw_delta"][i][None], ts["scale_z"][i], frames[0].shape)
        assert st.best == ts["best_id"][i], i
        assert np.abs(st.score - ts["score"][i].reshape(-1)).max() < 1e-6
        assert np.abs(st.penalty - ts["penalty"][i].reshape(-1)).max() < 1e-6
        assert np.abs(st.pscore - ts["pscore"][i].reshape(-1)).max() < 1e-6
        assert st.lr == pytest.approx(ts["lr"][i], abs=1e-6)
        assert np.abs(st.bbox_delta - ts["target"][i]).max() < STATE_PX
        assert np.abs(np.array(st.center) - ts["pos_after"][i]).max() < STATE_PX
        assert np.abs(np.array(st.size) - ts["sz_after"][i]).max() < STATE_PX
        if i + 1 in detail:
            dec = ts["detail_delta_decoded"][detail.index(i + 1)].reshape(4, -1)
            assert _rel(st.pred_bbox, dec) < NET_REL


@pytest.mark.parametrize("steps", [40])
def test_free_run(fx, frames, steps):
    """The whole tracker (distractor_aware off) on bag from the init frame, open loop over all 40
    steps (BIG included: ~10 s on 2 idle cores): every state to 1e-3 px."""
    ts = fx.steps
    n = steps
    trk = _tracker(fx, distractor_aware=False)
    trk.init_state(frames[0], fx.json["init"]["target_pos"], fx.json["init"]["target_sz"])
    for i in range(n):
        r = trk.track(frames[i + 1])
        assert r.extra["best_index"] == ts["best_id"][i], i
        assert np.abs(trk.center - ts["pos_after"][i]).max() < STATE_PX, i
        assert np.abs(trk.size - ts["sz_after"][i]).max() < STATE_PX, i
        assert r.state == TrackingState.TRACKING and r.distractors == []
        assert r.score_map.shape == (19, 19) and r.channels[0].maps.shape[0] == fx.net.feature_out


def test_released_format_loads(tmp_path):
    """A state_dict built from the manifest, saved as the released files are (PyTorch 0.3: legacy
    pickle format, no BN num_batches_tracked), loads through the registry; a damaged one fails
    with a CheckpointError naming the key."""
    m = json.load(open(shared_path("fixtures", "dasiamrpn_vot", "manifest.json")))
    state = seeded_state_dict_torch(m)
    legacy = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "SiamRPNVOT.model"
    torch.save(legacy, path, _use_new_zipfile_serialization=False)
    trk = registry.build("dasiamrpn-vot", weights=str(path))
    assert torch.equal(trk.network.state_dict()["conv_r1.weight"], state["conv_r1.weight"])
    assert trk.params.lr == 0.45 and trk.params.distractor_aware
    del legacy["conv_cls2.bias"]
    torch.save(legacy, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="conv_cls2.bias"):
        registry.build("dasiamrpn-vot", weights=str(path))
    with pytest.raises(CheckpointError, match=r"conv_r1.weight \(10240, 512, 3, 3\) vs model"):
        torch.save(
            {**legacy, "conv_cls2.bias": torch.zeros(256), "conv_r1.weight": torch.zeros(10240, 512, 3, 3)}, path
        )
        registry.build("dasiamrpn-vot", weights=str(path))
    names = {s.name: s for s in registry.all_trackers()}
    assert {"dasiamrpn-big", "dasiamrpn-vot", "dasiamrpn-otb"} <= set(names)
    assert names["dasiamrpn-otb"].weights_file == "SiamRPNOTB.model"


# -- the distractor-aware part on a constructed case ----------------------------------------------


class ScriptedNet(torch.nn.Module):
    """Stands in for the network with chosen outputs, so the distractor logic is tested on its own.

    Each track() call pops a dict {cell (r, c): fg logit} (on the middle anchor, a=2, whose
    64x64 box fits the target's size) and a dict {cell: feature id}: cells with the same id get
    identical (random) feature patches, others orthogonal-ish ones. Regression outputs are zero,
    so every proposal is its anchor box."""

    C = 16

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.cls1_kernel = torch.zeros(10, self.C, 4, 4)
        self.calls = []
        g = torch.Generator().manual_seed(0)
        self.patterns = {i: torch.randn(self.C, 4, 4, generator=g) for i in range(4)}

    def template(self, z):
        pass

    def track(self, x):
        S = (x.shape[-1] - 127) // 8 + 1
        self.calls.append(int(x.shape[-1]))
        logits, feats = self.script.pop(0)
        c = S // 2
        cls = torch.zeros(1, 10, S, S)
        cls[0, 5:] = -6.0  # background everywhere
        for (dr, dc), v in logits.items():
            cls[0, 5 + 2, c + dr, c + dc] = v
        feat = torch.randn(1, self.C, S + 3, S + 3, generator=torch.Generator().manual_seed(len(self.calls))) * 0.1
        for (dr, dc), pid in feats.items():
            feat[0, :, c + dr : c + dr + 4, c + dc : c + dc + 4] = self.patterns[pid]
        return {"cls": cls, "loc": torch.zeros(1, 20, S, S), "cls_feature": feat}


def _frame_with_two_copies():
    """Real texture (bag frame 0's target) pasted twice: the target at (120..184) and a copy 96 px to
    the right. The scripted network decides what the tracker sees; the frame sets the geometry."""
    cap = cv2.VideoCapture(shared_path("data", "videos", "bag.avi"))
    ok, f0 = cap.read()
    assert ok
    frame = np.full((360, 480, 3), 128, np.uint8)
    patch = f0[150:214, 330:394]
    frame[120:184, 120:184] = patch
    frame[120:184, 216:280] = patch
    return frame


def _run(script, distractor_aware, frames_n):
    net = ScriptedNet(script)
    trk = DaSiamRPNTracker(net, default_params("big", distractor_aware=distractor_aware, adaptive=False))
    frame = _frame_with_two_copies()
    trk.init(frame, (120, 120, 64, 64))
    return trk, net, [trk.track(frame) for _ in range(frames_n)]


# target cell (0, 0); copy 6 cells right (= 48 crop px; 64-px boxes overlap with IoU < 0.2)
A, B = (0, 0), (0, 6)
SCRIPT = [
    ({A: 4.0, B: 4.0}, {A: 0, B: 1}),  # both look like the target: B becomes a distractor
    ({A: -0.4, B: 4.6}, {A: 0, B: 1}),  # the copy now scores higher than the (fading) target
    ({A: -5.0}, {A: 0}),  # nothing: lost
    ({A: -5.0}, {A: 0}),  # still nothing: re-detecting with a larger region
    ({A: 3.0}, {A: 0}),  # found again
    ({A: 3.0}, {A: 0}),
]


def test_distractor_found_and_reranked():
    trk, net, res = _run(SCRIPT, True, 2)
    # frame 1: the copy is reported as a distractor, in frame pixels, where the copy is
    assert len(res[0].distractors) == 1
    x, y, w, h = res[0].distractors[0]
    scale_z = 127 / 128.0  # s_z = sqrt(128 * 128) for a 64x64 box
    assert x + w / 2 == pytest.approx(152 + 48 / scale_z, abs=0.5)
    assert y + h / 2 == pytest.approx(152, abs=0.5)
    assert res[0].box[0] + res[0].box[2] / 2 == pytest.approx(152, abs=0.5)
    # frame 2: without the memory the copy would win (see the control below); with it the
    # remembered distractor's features push the copy down and the tracker stays on the target
    assert abs(res[1].box[0] + res[1].box[2] / 2 - 152) < 1.0
    assert res[1].state == TrackingState.TRACKING


def test_distractor_control_without_memory():
    trk, net, res = _run(SCRIPT, False, 2)
    assert res[0].distractors == [] and res[1].distractors == []
    cx = res[1].box[0] + res[1].box[2] / 2
    assert cx > 190  # jumped to the copy (the centre follows the chosen proposal fully)


def test_long_term_search_grows_and_shrinks():
    trk, net, res = _run(SCRIPT, True, 6)
    states = [r.state for r in res]
    assert states == [
        TrackingState.TRACKING,
        TrackingState.TRACKING,
        TrackingState.LOST,
        TrackingState.REDETECTING,
        TrackingState.TRACKING,
        TrackingState.TRACKING,
    ]
    # the crop grows by search_step per lost frame and returns to 271 once found
    assert net.calls == [271, 271, 271, 335, 399, 271]
    # while lost the state is kept, not moved to a poor candidate
    assert res[2].box == pytest.approx(res[1].box) and res[3].box == pytest.approx(res[1].box)
    assert res[3].score_map.shape == (27, 27)
