"""The ONNX cache is not trusted blindly (issue 21, items 5-7; trackers/core/engines.py), tried as
an attacker or an unlucky disk would: links planted at the names the cache writes, a folder others
may write to, a graph edited but still valid, a truncated graph, every shape of a bad
auto_engine.json, and a change to a sub-module's source.

Each test has its own cache folder (SIAMSCOPE_CACHE), NanoTrack v2's real checkpoint and bag.avi."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.conftest import ROOT, shared_path
from tests.test_engines import BAG_BOX, BOX_ATOL, assert_close, bag_frames

NAME = "nanotrack-v2"
FRAMES = 5


def weights():
    return shared_path("models", "nanotrack", "nanotrackv2.pth")


def build(engine):
    from trackers.core import registry

    return registry.build(NAME, weights(), engine=engine)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of this test's own (not yet made: the engine makes it)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SIAMSCOPE_CACHE", str(folder))
    return folder


def boxes(tracker, n=FRAMES):
    frames = bag_frames()
    tracker.init(frames[0], BAG_BOX)
    return np.array([tracker.track(f).box for f in frames[1 : n + 1]])


def graph_name(tmp_path, monkeypatch) -> str:
    """The cached graph's file name for NANO (learnt in a scratch cache)."""
    monkeypatch.setenv("SIAMSCOPE_CACHE", str(tmp_path / "scratch"))
    return os.path.basename(build("onnxruntime").onnx_engine.path)


def test_cache_folder_is_made_0700_and_each_graph_has_its_sha256(cache):
    import hashlib

    tracker = build("onnxruntime")
    st = os.stat(cache)
    assert st.st_mode & 0o777 == 0o700 and st.st_uid == os.getuid()
    path = tracker.onnx_engine.path
    with open(path, "rb") as f:
        data = f.read()
    with open(path + ".sha256") as f:
        digest, name = f.read().split()
    assert digest == hashlib.sha256(data).hexdigest() and name == os.path.basename(path)
    assert not [n for n in os.listdir(cache) if n.endswith(".tmp")], "no temporary file is left"


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757])
def test_cache_folder_others_may_write_is_not_used(cache, mode, capfd):
    cache.mkdir()
    os.chmod(cache, mode)
    tracker = build("onnxruntime")
    assert tracker.engine_name == "onnxruntime"  # exported in memory, still runs
    assert os.listdir(cache) == [], "nothing is written into a folder others may write to"
    build("auto")
    assert os.listdir(cache) == [], "no auto decision either"
    err = capfd.readouterr().err
    lines = [line for line in err.splitlines() if str(cache) in line]
    assert len(lines) == 1, err  # said once, one line
    assert f"mode {mode:04o}" in lines[0] and "not used" in lines[0]


def test_cache_folder_of_another_owner_is_not_used(cache, monkeypatch):
    from trackers.core import engines

    if os.getuid() == 0:
        cache.mkdir(mode=0o700)
        os.chown(cache, 65534, 65534)  # root can give it away: now "nobody" owns it
        owner = 65534
    else:
        monkeypatch.setenv("SIAMSCOPE_CACHE", "/")  # root's, never ours
        owner = 0
    assert engines.usable_cache_dir() is None
    assert f"belongs to user id {owner}, not to you" in engines.notices()[-1]
    tracker = build("onnxruntime")
    assert tracker.engine_name == "onnxruntime"
    if owner == 65534:
        assert os.listdir(cache) == []


def test_links_planted_at_the_cache_names_are_never_followed(tmp_path, monkeypatch):
    """The old predictable temporary names (<graph>.<pid>.tmp, auto_engine.json.<pid>.tmp) and the
    graph's and sidecar's own names are links to a file of the user's: the file is untouched, the
    link at the graph's name is moved aside (the link, not its target), and the graph that runs is
    a plain file exported anew."""
    name = graph_name(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("SIAMSCOPE_CACHE", str(cache))
    victims = {}
    for i, planted in enumerate(
        [f"{name}.{os.getpid()}.tmp", f"auto_engine.json.{os.getpid()}.tmp", name, name + ".sha256", "auto_engine.json"]
    ):
        victim = tmp_path / f"notes-{i}.txt"
        victim.write_text(f"the user's notes {i}\n")
        os.symlink(victim, cache / planted)
        victims[planted] = victim
    tracker = build("auto")
    build("onnxruntime")
    for i, (planted, victim) in enumerate(victims.items()):
        assert victim.read_text() == f"the user's notes {i}\n", planted
    # the temporary names nobody uses any more are still the links they were
    assert os.path.islink(cache / f"{name}.{os.getpid()}.tmp")
    assert os.path.islink(cache / f"auto_engine.json.{os.getpid()}.tmp")
    graph = cache / name
    assert graph.is_file() and not graph.is_symlink() and not (cache / "auto_engine.json").is_symlink()
    aside = [n for n in os.listdir(cache) if n.startswith(name + ".bad-")]
    assert len(aside) == 1 and os.path.islink(cache / aside[0]), "the planted link itself was moved aside"
    assert tracker.engine_probe["engine"] in ("torch", "onnxruntime")


def test_a_folder_or_a_fifo_at_a_cache_name_is_moved_aside_without_hanging(tmp_path, monkeypatch):
    """Not a file where a file should be: a folder at the graph's name, a FIFO (which a plain
    open() would wait on for ever) at auto_engine.json and at the graph's sidecar."""
    name = graph_name(tmp_path, monkeypatch)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    monkeypatch.setenv("SIAMSCOPE_CACHE", str(cache))
    (cache / name).mkdir()
    os.mkfifo(cache / "auto_engine.json")
    tracker = build("auto")
    assert tracker.engine_probe["engine"] == tracker.engine_name
    assert (cache / name).is_file() and (cache / "auto_engine.json").is_file()
    assert len([n for n in os.listdir(cache) if ".bad-" in n]) == 2
    os.unlink(cache / (name + ".sha256"))
    os.mkfifo(cache / (name + ".sha256"))
    assert build("onnxruntime").engine_name == "onnxruntime"
    assert (cache / (name + ".sha256")).is_file()


def _zero_largest_initializer(path):
    import onnx

    model = onnx.load(path)
    init = max(model.graph.initializer, key=lambda t: np.prod(t.dims))
    arr = onnx.numpy_helper.to_array(init)
    init.CopyFrom(onnx.numpy_helper.from_array(np.zeros_like(arr), init.name))
    onnx.save(model, path)
    onnx.checker.check_model(path)  # still a valid graph
    return init.name


def test_edited_but_valid_graph_is_detected_by_sha256_and_rebuilt(cache, capfd):
    ref = build("torch")
    want = boxes(ref)
    first = build("onnxruntime")
    path = first.onnx_engine.path
    _zero_largest_initializer(path)
    # the edit matters: the edited graph, run as it is, gives other outputs than torch's
    import onnxruntime as ort

    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = {
        i.name: np.random.default_rng(0).random([d if isinstance(d, int) else 1 for d in i.shape], dtype=np.float32)
        * 255
        for i in sess.get_inputs()
    }
    clean = ort.InferenceSession(_export_bytes(ref), providers=["CPUExecutionProvider"])
    assert not np.allclose(sess.run(None, x)[0], clean.run(None, x)[0])

    again = build("onnxruntime")
    err = capfd.readouterr().err
    assert "does not match its sha256" in err and "moved aside" in err
    assert [n for n in os.listdir(cache) if ".bad-" in n]
    got = boxes(again)
    np.testing.assert_allclose(got, want, atol=BOX_ATOL, rtol=0)


def _export_bytes(tracker):
    """The graph as exported, in memory (no cache)."""
    from trackers.core import engines

    z, xs = tracker.engine_shapes()
    captured = {}
    real = engines.make_session

    def spy(model, *a, **k):
        captured["model"] = model
        return real(model, *a, **k)

    engines.make_session = spy
    try:
        engines.OnnxEngine(tracker.network, z, xs, use_cache=False)
    finally:
        engines.make_session = real
    return captured["model"]


def test_truncated_graph_rebuilds_with_engine_onnxruntime(cache, capfd):
    path = build("onnxruntime").onnx_engine.path
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)
    ref = boxes(build("torch"))
    tracker = build("onnxruntime")  # was: "ONNX export failed (INVALID_PROTOBUF...)"
    assert tracker.engine_name == "onnxruntime"
    assert os.path.getsize(path) == size
    assert "moved aside" in capfd.readouterr().err
    np.testing.assert_allclose(boxes(tracker), ref, atol=BOX_ATOL, rtol=0)
    # and auto, which fell back to torch silently, runs the rebuilt graph's decision again
    with open(path, "r+b") as f:
        f.truncate(100)
    auto = build("auto")
    assert os.path.getsize(path) == size and auto.engine_probe is not None


def _decision_key(tracker):
    from trackers.core import compute, engines

    z, x = tracker.engine_shapes()
    return engines.decision_key(tracker.network, z, x, tracker.engine_track_kwargs(), compute.current())


BAD_DECISIONS = {
    "list": b"[1,2]",
    "null": b"null",
    "string_entry": None,  # {"<the real key>": "torch"}: filled in with the key
    "other_key": b'{"k": "torch"}',
    "garbage": bytes(range(256)) * 4,
    "deep": b"[" * 100000 + b"]" * 100000,
    "half_json": b'{"a": {"engine": "torch", "torch_ms": 1',
    "wrong_types": None,  # {"<key>": {"engine": "torch", "torch_ms": "fast", ...}}
}


@pytest.mark.parametrize("shape", list(BAD_DECISIONS))
def test_auto_engine_json_of_any_shape_is_read_safely(cache, shape, capfd):
    tracker = build("torch")
    key = _decision_key(tracker)
    shutil.rmtree(cache)  # (NanoTracker measures `auto` as it is made, even for torch)
    cache.mkdir(mode=0o700)
    data = BAD_DECISIONS[shape]
    if shape == "string_entry":
        data = json.dumps({key: "torch"}).encode()
    elif shape == "wrong_types":
        data = json.dumps({key: {"engine": "torch", "torch_ms": "fast", "onnxruntime_ms": None}}).encode()
    (cache / "auto_engine.json").write_bytes(data)
    auto = build("auto")  # was: 'list' object has no attribute 'get'
    assert auto.engine_probe["engine"] == auto.engine_name
    stored = json.loads((cache / "auto_engine.json").read_text())
    assert isinstance(stored, dict) and stored[key]["engine"] == auto.engine_name, "the decision is stored again"
    assert stored[key]["torch_ms"] > 0 and stored[key]["onnxruntime_ms"] > 0, "measured, not taken from the file"
    aside = [n for n in os.listdir(cache) if n.startswith("auto_engine.json.bad-")]
    err = capfd.readouterr().err
    if shape in ("string_entry", "other_key", "wrong_types"):  # an object: its bad entries are left out
        assert not aside and "Traceback" not in err
        assert "k" not in stored
    else:
        assert len(aside) == 1 and (cache / aside[0]).read_bytes() == data
        assert len([line for line in err.splitlines() if "auto_engine.json" in line]) == 1, err
    assert build("auto").engine_probe.get("cached")


def test_bad_auto_engine_json_does_not_stop_track(tmp_path):
    """The CLI as the issue's probe ran it: `track` with `[1,2]` in the decision file."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    (cache / "auto_engine.json").write_text("[1,2]")
    out = tmp_path / "boxes.txt"
    env = dict(os.environ, SIAMSCOPE_CACHE=str(cache))
    proc = subprocess.run(
        [
            sys.executable,
            "main.py",
            "track",
            shared_path("data", "videos", "bag.avi"),
            "--tracker",
            NAME,
            "--weights",
            weights(),
            "--box",
            ",".join(map(str, BAG_BOX)),
            "--frames",
            "0:3",
            "--out",
            str(out),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "auto_engine.json" in proc.stderr and "moved aside" in proc.stderr
    assert len(out.read_text().splitlines()) == 3


def test_key_covers_every_source_module_the_network_uses():
    from models import pysot
    from trackers.core import engines

    files = {os.path.relpath(f, ROOT) for f in engines.source_files(pysot.siamrpn_alex_dwxcorr())}
    assert {
        "models/heads.py",
        "models/necks.py",
        "models/backbones.py",
        "models/pysot.py",
        "trackers/core/engines.py",
    } <= files
    assert "models/siammask.py" not in files


_KEY = """
import torch
torch.manual_seed(0)
from models import pysot
from trackers.core import engines
print(engines.model_key(pysot.siamrpn_alex_dwxcorr(), (1, 3, 127, 127), (1, 3, 255, 255), {}))
"""


def test_editing_models_heads_changes_the_key(tmp_path):
    """The issue's probe: a change in models/heads.py (not the file of the network's class) kept the
    stale graph. In a copy of the code: editing heads.py changes the key, editing a module the
    network does not use does not."""
    for part in ("models", "trackers"):
        shutil.copytree(os.path.join(ROOT, part), tmp_path / part, ignore=shutil.ignore_patterns("__pycache__"))

    def key():
        proc = subprocess.run(
            [sys.executable, "-c", _KEY],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(tmp_path)),
        )
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    before = key()
    with open(tmp_path / "models" / "heads.py", "a") as f:
        f.write("\n# a changed head\n")
    after = key()
    assert after != before
    with open(tmp_path / "models" / "siammask.py", "a") as f:
        f.write("\n# not this network's code\n")
    assert key() == after


def test_rebuilt_graph_matches_torch_outputs(cache):
    """After a rebuild the engine's network outputs are torch's (tolerances as tests/test_engines.py)."""
    path = build("onnxruntime").onnx_engine.path
    with open(path, "r+b") as f:
        f.truncate(10)
    ref, ort_ = build("torch"), build("onnxruntime")
    frames = bag_frames()
    ref.init(frames[0], BAG_BOX)
    ort_.init(frames[0], BAG_BOX)
    x = torch.rand(ort_.onnx_engine.x_shape, generator=torch.Generator().manual_seed(3)) * 255
    with torch.no_grad():
        want = ref.network.track(x)
    got = ort_.onnx_engine.track(x.clone())
    for k in ("cls", "loc"):
        assert_close(want[k], got[k], k)


def test_the_window_is_told_what_the_cache_did(cache, qtbot):
    """In the app the line is a warning after the tracker loads (the last message: not hidden by the
    next one), and the tracker loads (it did not: `'list' object has no attribute 'get'`)."""
    from app.worker import TrackingWorker
    from app.worker_protocol import Configure, Message, TrackerInfo

    cache.mkdir(mode=0o700)
    (cache / "auto_engine.json").write_text("null")
    worker = TrackingWorker()
    got = []
    worker.on(Message, got.append)
    worker.on(TrackerInfo, got.append)
    worker._cmd_configure(Configure(NAME, weights(), "cpu", "auto"))
    worker.deliver()
    assert isinstance(got[0], TrackerInfo), got
    assert isinstance(got[-1], Message) and got[-1].level == "warning"
    assert "auto_engine.json" in got[-1].text and "moved aside" in got[-1].text
