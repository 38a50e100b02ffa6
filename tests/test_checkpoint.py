"""models/checkpoint.py: wrappings unwrap, unsafe pickles are refused without running them, and
every bad file becomes one CheckpointError naming the file, the detected format and the keys."""

import os
import pickle
import shutil

import numpy as np
import pytest
import torch

from models.checkpoint import CheckpointError, load_checkpoint, read_state_dict, unwrap_state_dict
from models.nanotrack import NanoTrack
from tests.conftest import shared_path
from trackers.core import registry
from trackers.families.nanotrack import load_nanotrack


def weights(version):
    return shared_path("models", "nanotrack", f"nanotrack{version}.pth")


@pytest.fixture(scope="module")
def v2_state():
    return read_state_dict(weights("v2"))


def test_real_checkpoint_with_numpy_epoch_loads(v2_state):
    # nanotrackv2.pth is {'epoch': numpy scalar, 'state_dict': {...}}: allowed, unwrapped
    raw = torch.load(weights("v2"), map_location="cpu", weights_only=False)
    assert isinstance(raw, dict) and "state_dict" in raw and "epoch" in raw
    assert set(v2_state) == set(raw["state_dict"])
    net = NanoTrack("v2")
    load_checkpoint(net, weights("v2"), fmt="nanotrack-v2")
    for k, v in net.state_dict().items():
        assert torch.equal(v, v2_state[k]), k


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "model", "module_prefix", "nested_module"])
def test_wrappings_load(tmp_path, v2_state, wrap):
    sd = dict(v2_state)
    prefixed = {"module." + k: v for k, v in sd.items()}
    obj = {
        "plain": sd,
        "state_dict": {"state_dict": sd, "epoch": 3},
        "model": {"model": sd, "optimizer_name": "sgd"},
        "module_prefix": prefixed,
        "nested_module": {"state_dict": prefixed, "epoch": np.int64(7)},
    }[wrap]
    path = tmp_path / f"{wrap}.pth"
    torch.save(obj, path)
    net = NanoTrack("v2")
    load_checkpoint(net, path, fmt="nanotrack-v2")
    for k, v in net.state_dict().items():
        assert torch.equal(v, sd[k]), k


class _RunsCode:
    """Unpickling this calls os.system: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["torch_zip", "legacy_pickle"])
def test_code_executing_pickle_is_refused_and_not_run(tmp_path, v2_state, container):
    marker = tmp_path / "pwned"
    payload = {"state_dict": dict(list(v2_state.items())[:3]), "hook": _RunsCode(marker)}
    path = tmp_path / "evil.pth"
    if container == "torch_zip":
        torch.save(payload, path)
    else:
        with open(path, "wb") as f:
            pickle.dump(payload, f, protocol=2)
    with pytest.raises(CheckpointError) as e:
        read_state_dict(path)
    msg = str(e.value)
    assert str(path) in msg
    assert "refused" in msg and "arbitrary code" in msg
    assert not marker.exists(), "the pickled code ran"
    # the same through the tracker builder
    with pytest.raises(CheckpointError):
        registry.build("nanotrack-v2", str(path))
    assert not marker.exists()


def test_truncated_file(tmp_path):
    path = tmp_path / "truncated.pth"
    with open(weights("v2"), "rb") as f:
        data = f.read()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as e:
        read_state_dict(path)
    assert str(path) in str(e.value) and "damaged" in str(e.value)


def test_text_file_and_empty_file(tmp_path):
    for name, content in (("notes.pth", b"these are not weights\n"), ("empty.pth", b"")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(CheckpointError) as e:
            read_state_dict(path)
        assert str(path) in str(e.value) and "damaged" in str(e.value)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        read_state_dict(tmp_path / "nope.pth")
    with pytest.raises(CheckpointError, match="is a folder"):
        read_state_dict(tmp_path)


def test_file_without_tensors(tmp_path):
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "arch": "nanotrack"}, path)
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        read_state_dict(path)


def test_wrong_model_names_format_and_keys(tmp_path):
    """V3 weights into the V2 network: the message names the file, the detected format and the
    missing / unexpected / shape-mismatched keys."""
    v3 = weights("v3")
    with pytest.raises(CheckpointError) as e:
        load_nanotrack("v2", v3)
    msg = str(e.value)
    assert v3 in msg
    assert "nanotrack-v3" in msg and "expected nanotrack-v2" in msg
    assert "missing keys" in msg and "ban_head.cls_pw_tower.0.weight" in msg
    # V3's extra backbone block is first among the unexpected keys
    assert "unexpected keys" in msg and "backbone.features.9.conv.0.weight" in msg
    # same names, other widths: V3's neck / projections are 96 channels wide, V2's 64 / 48
    assert "shape-mismatched keys" in msg and "neck.downsample.0.weight (96, 96, 1, 1) vs model (64, 64, 1, 1)" in msg
    # and a checkpoint that is no NanoTrack at all
    other = tmp_path / "other.pth"
    torch.save({"conv1.weight": torch.zeros(3, 3, 3, 3), "fc.bias": torch.zeros(10)}, other)
    with pytest.raises(CheckpointError) as e:
        load_nanotrack("v2", str(other))
    assert "not a NanoTrack checkpoint" in str(e.value) and "conv1.weight" in str(e.value)


def test_partial_checkpoint_lists_missing(tmp_path, v2_state):
    sd = {k: v for k, v in v2_state.items() if not k.startswith("ban_head.cls_pred")}
    path = tmp_path / "partial.pth"
    torch.save(sd, path)
    with pytest.raises(CheckpointError) as e:
        load_nanotrack("v2", str(path))
    msg = str(e.value)
    assert "missing keys (2)" in msg and "ban_head.cls_pred.0.weight" in msg and "unexpected" not in msg


def test_unwrap_in_memory():
    t = torch.ones(2)
    assert unwrap_state_dict({"model": {"module.a": t}}) == {"a": t}
    with pytest.raises(CheckpointError):
        unwrap_state_dict([t])


def test_copy_of_real_file_under_other_name_loads(tmp_path):
    path = tmp_path / "renamed.bin"
    shutil.copy(weights("v3"), path)
    net = load_nanotrack("v3", str(path))
    assert net.version == "v3"


def test_files_that_are_not_checkpoints_are_named_for_what_they_are(tmp_path):
    """ONNX files, random bytes and a device are not 'code that needs running': each is said to be
    what it is (and /dev/zero is not read for ever)."""
    onnx = shared_path("models", "nanotrack", "nanotrackv2_head_sim.onnx")
    with pytest.raises(CheckpointError, match="is an ONNX model"):
        read_state_dict(onnx)
    noise = tmp_path / "noise.pth"
    noise.write_bytes(bytes(np.random.default_rng(0).integers(1, 120, 4096, dtype=np.uint8)))
    with pytest.raises(CheckpointError, match="not a PyTorch checkpoint") as err:
        read_state_dict(noise)
    assert "arbitrary code" not in str(err.value)
    if os.path.exists("/dev/zero"):
        with pytest.raises(CheckpointError, match="device"):
            read_state_dict("/dev/zero")
