"""Hostile binaries (issue 21, item 9, sec-cache's share): a zip-bomb checkpoint, ONNX files for
opencv-nanotrack whose external data points outside their folder, a damaged ONNX, and vot-serve fed
garbage. Each gets one line and no traceback, before anything large is allocated or read."""

import glob
import os
import shutil
import struct
import subprocess
import sys
import zlib

import pytest

from models.checkpoint import CheckpointError, read_state_dict
from tests.conftest import ROOT, shared_path


# -- checkpoints ------------------------------------------------------------------------------------
def _zip(path, entries):
    """A zip written by hand: entries are (name, data as stored, method, crc32, declared size), so a
    test can store precomputed deflate bytes and declare what it likes (no zip64: sizes < 4 GB)."""
    with open(path, "wb") as f:
        central = []
        for name, data, method, crc, size in entries:
            offset = f.tell()
            raw = name.encode()
            f.write(
                struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size, len(raw), 0) + raw
            )
            f.write(data)
            central.append(
                struct.pack(
                    "<4s6H3L5H2L",
                    b"PK\x01\x02",
                    20,
                    20,
                    0,
                    method,
                    0,
                    0x21,
                    crc,
                    len(data),
                    size,
                    len(raw),
                    0,
                    0,
                    0,
                    0,
                    0,
                    offset,
                )
                + raw
            )
        start = f.tell()
        f.write(b"".join(central))
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), f.tell() - start, start, 0))


def _torch_entries(numel):
    """The entries of torch.save({'w': zeros(100000)}) with the tensor's declared size patched to numel."""
    import io
    import zipfile

    import torch

    buf = io.BytesIO()
    torch.save({"w": torch.zeros(100000)}, buf)
    small = b"J" + struct.pack("<i", 100000)
    out = []
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as z:
        for info in z.infolist():
            data = z.read(info)
            if info.filename.endswith("data.pkl"):
                assert data.count(small) == 2  # the storage's numel and the tensor's shape
                data = data.replace(small, b"J" + struct.pack("<i", numel))
            out.append((info.filename, data))
    return out


def _deflated_zeros(n_chunks, chunk=16 * 1024 * 1024):
    """(raw deflate stream, crc32) of n_chunks * chunk zero bytes, made without compressing them all:
    once the window is all zeros, every further chunk compresses to the same bytes."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(chunk)
    first = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    again = c.compress(zeros) + c.flush(zlib.Z_SYNC_FLUSH)
    stream = first + again * (n_chunks - 1) + c.flush()
    crc = 0
    for _ in range(n_chunks):
        crc = zlib.crc32(zeros, crc)
    return stream, crc


@pytest.fixture(scope="module")
def zip_bomb(tmp_path_factory):
    """A ~1.3 MB .pth that unpacks to 1.3 GB: torch.save's own entries, its tensor declared as 325 M
    floats, and those floats' 1.3 GB of zeros deflated (what the issue's probe built)."""
    n_chunks = 78  # 78 x 16 MiB = 1.3 GB
    numel = n_chunks * 16 * 1024 * 1024 // 4
    stream, crc = _deflated_zeros(n_chunks)
    entries = []
    for name, data in _torch_entries(numel):
        if name.endswith("/data/0"):
            entries.append((name, stream, 8, crc, numel * 4))
        else:
            entries.append((name, data, 0, zlib.crc32(data), len(data)))
    path = tmp_path_factory.mktemp("bomb") / "bomb.pth"
    _zip(path, entries)
    assert os.path.getsize(path) < 2 * 1024 * 1024
    return str(path)


_CHILD = """
import sys
from models.checkpoint import CheckpointError, read_state_dict
def status(key):
    return int(next(l for l in open('/proc/self/status') if l.startswith(key)).split()[1]) // 1024
open('/proc/self/clear_refs', 'w').write('5')    # the peak RSS from here on
before = status('VmRSS')
try:
    read_state_dict(sys.argv[1])
    print('LOADED')
except CheckpointError as e:
    print('REFUSED', str(e))
print('GROWTH_MB', status('VmHWM') - before, 'PEAK_MB', status('VmHWM'))
"""


def _load_in_child(path):
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=ROOT),
    )
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    growth = int(lines[-1].split()[1])
    return lines[0], growth


def test_zip_bomb_checkpoint_is_refused_before_it_is_read(zip_bomb):
    """Refused with one line, in a process whose resident memory grows by under 200 MB on the way
    (the process itself starts at ~220 MB with torch imported; the probe measured 1.3 GB)."""
    verdict, growth = _load_in_child(zip_bomb)
    assert verdict.startswith("REFUSED") and "zip bomb" in verdict and "over 100:1" in verdict, verdict
    assert "\n" not in verdict
    assert growth < 200, f"resident memory grew by {growth} MB while refusing"


def test_checkpoint_declaring_gigabytes_in_a_small_file_is_refused(tmp_path):
    """A 7.7 MB file asked torch for 8 GB: here a 4 GB declaration over 1 KB of deflate data."""
    entries = []
    for name, data in _torch_entries(1000):
        if name.endswith("/data/0"):
            stream = zlib.compress(bytes(4000))[2:-4]
            entries.append((name, stream, 8, zlib.crc32(bytes(4000)), 0xFFFFFF00))
        else:
            entries.append((name, data, 0, zlib.crc32(data), len(data)))
    path = tmp_path / "liar.pth"
    _zip(path, entries)
    with pytest.raises(CheckpointError, match="refused before loading.*over 100:1"):
        read_state_dict(path)
    # a stored (uncompressed) entry that declares more than it holds
    entries = [
        (n, d, m, c, s + 10**9 if n.endswith("/data/0") else s)
        for n, d, m, c, s in [(n, d, 0, zlib.crc32(d), len(d)) for n, d in _torch_entries(1000)]
    ]
    _zip(path, entries)
    with pytest.raises(CheckpointError, match="stored uncompressed but declares"):
        read_state_dict(path)


def test_checkpoint_whose_entries_total_over_the_limit_is_refused(tmp_path, monkeypatch):
    import torch

    from models import checkpoint

    path = tmp_path / "big.pth"
    torch.save({"w": torch.zeros(300000)}, path)
    monkeypatch.setattr(checkpoint, "MAX_UNCOMPRESSED", 1024 * 1024)  # 1 MB: the 1.2 MB file is "too big"
    with pytest.raises(CheckpointError, match="GB uncompressed"):
        read_state_dict(path)


def test_real_checkpoints_still_load():
    shared_path("models", "nanotrack", "nanotrackv2.pth")
    files = sorted(
        glob.glob(os.path.join(ROOT, "..", "shared", "models", "nanotrack", "*.pth"))
        + glob.glob(os.path.join(ROOT, "resources", "*.pth"))
    )
    assert len(files) >= 4
    for f in files:
        state = read_state_dict(f)
        assert state and all(hasattr(v, "shape") for v in state.values()), f


# -- vot-serve --------------------------------------------------------------------------------------
@pytest.fixture
def steps():
    from trackers.core import registry
    from trackers.tools.vot_client import TraxSteps

    return TraxSteps(registry.build("csrt"))


def _bench_frames(n=2):
    folder = os.path.join(shared_path("bench"))
    seq = sorted(d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))[0]
    imgs = sorted(glob.glob(os.path.join(folder, seq, "**", "*.jpg"), recursive=True))
    assert len(imgs) >= n
    return imgs[:n]


@pytest.mark.parametrize(
    "region",
    [
        (float("nan"), 10, 20, 20),
        (10, 10, float("inf"), 20),
        (10, 10, 0, 20),
        (10, 10, -5, 20),
        (1, 2, 3),
        "garbage",
        None,
    ],
)
def test_vot_serve_refuses_a_region_that_is_not_a_finite_rectangle(steps, region):
    from trackers.tools.vot_client import VotServeError

    path = _bench_frames(1)[0]
    with pytest.raises(VotServeError, match="is not a rectangle of finite numbers"):
        steps.initialize(path, region)
    assert not steps.initialized


def test_vot_serve_refuses_a_frame_before_initialize_and_bad_images(steps, tmp_path):
    from trackers.tools.vot_client import VotServeError

    first, second = _bench_frames(2)
    with pytest.raises(VotServeError, match="a frame came before initialize"):
        steps.frame(second)
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(os.urandom(4096))
    for path in (str(junk), str(tmp_path / "absent.jpg"), os.urandom(16), 5, "a\0b"):
        with pytest.raises(VotServeError, match="cannot read image|not a file path"):
            steps.initialize(path, (10, 10, 40, 40))
    box, conf = steps.initialize(first, (10, 10, 40, 40))
    assert box == (10.0, 10.0, 40.0, 40.0) and conf == 1.0
    box, conf = steps.frame(second)
    assert len(box) == 4 and all(v == v for v in box)


def _serve(stdin: bytes):
    return subprocess.run(
        [sys.executable, "main.py", "vot-serve", "csrt"], cwd=ROOT, input=stdin, capture_output=True, timeout=120
    )


def test_vot_serve_fed_random_bytes_exits_with_one_line():
    """The real server (where the trax package is installed) or the real command without it: one line
    on stderr, a non-zero exit, no traceback."""
    proc = _serve(os.urandom(4096) + b"\n@@TRAX:frame garbage\n")
    err = proc.stderr.decode(errors="replace")
    assert proc.returncode != 0 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    try:
        import trax  # noqa: F401
    except ImportError:
        assert "needs the trax package" in lines[0]
    else:
        assert "vot-serve" in lines[0]


# -- opencv-nanotrack's ONNX pair -------------------------------------------------------------------
def _nano_pair(tmp_path, edit_head=None, head_bytes=None):
    """A folder holding the real NanoTrack v2 backbone and a head that is edited (edit_head(model)
    before saving) or replaced by head_bytes."""
    import onnx

    from trackers.families.opencv_trackers import NANO_BACKBONE, NANO_HEAD

    src = shared_path("models", "nanotrack")
    folder = tmp_path / "models" / "nano"
    folder.mkdir(parents=True)
    shutil.copyfile(os.path.join(src, NANO_BACKBONE), folder / NANO_BACKBONE)
    if head_bytes is not None:
        (folder / NANO_HEAD).write_bytes(head_bytes)
    else:
        model = onnx.load(os.path.join(src, NANO_HEAD))
        edit_head(model)
        onnx.save(model, str(folder / NANO_HEAD))
    return str(folder)


def _external(location):
    def edit(model):
        import onnx

        tensor = max(model.graph.initializer, key=lambda t: len(t.raw_data))
        tensor.ClearField("raw_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        del tensor.external_data[:]
        entry = tensor.external_data.add()
        entry.key, entry.value = "location", location

    return edit


@pytest.mark.parametrize("where", ["climbs", "absolute", "link"])
def test_opencv_nanotrack_refuses_external_data_outside_its_folder(tmp_path, where):
    from trackers.core import registry

    secret = tmp_path / "secret.bin"
    secret.write_bytes(os.urandom(1 << 20))  # what OpenCV read: the user's file, as weights
    location = {"climbs": "../../secret.bin", "absolute": str(secret), "link": "weights.bin"}[where]
    folder = _nano_pair(tmp_path, _external(location))
    if where == "link":
        os.symlink(secret, os.path.join(folder, "weights.bin"))
    with pytest.raises(CheckpointError, match="outside the model's folder") as e:
        registry.build("opencv-nanotrack", folder)
    assert "\n" not in str(e.value) and location in str(e.value)


def test_opencv_nanotrack_external_data_inside_its_folder_is_allowed(tmp_path):
    """The rule is 'inside the folder', not 'no external data': a model saved with its weights in a
    file beside it still loads (OpenCV's DNN reads them)."""
    import onnx

    from trackers.families.opencv_trackers import NANO_HEAD, check_onnx_file

    folder = _nano_pair(tmp_path, lambda m: None)
    model = onnx.load(os.path.join(folder, NANO_HEAD))
    onnx.save(model, os.path.join(folder, NANO_HEAD), save_as_external_data=True, location="head.bin", size_threshold=0)
    check_onnx_file(os.path.join(folder, NANO_HEAD))


@pytest.mark.parametrize("damage", ["truncated", "random", "empty_graph"])
def test_opencv_nanotrack_damaged_onnx_is_one_line(tmp_path, damage):
    from trackers.core import registry
    from trackers.families.opencv_trackers import NANO_HEAD

    real = open(os.path.join(shared_path("models", "nanotrack"), NANO_HEAD), "rb").read()
    data = {"truncated": real[: len(real) // 2], "random": os.urandom(50000), "empty_graph": b""}[damage]
    if damage == "empty_graph":
        folder = _nano_pair(tmp_path, lambda m: m.graph.ClearField("node"))
    else:
        folder = _nano_pair(tmp_path, head_bytes=data)
    with pytest.raises(CheckpointError, match="damaged or not an ONNX model|cannot load") as e:
        registry.build("opencv-nanotrack", folder)
    assert "\n" not in str(e.value)


def test_opencv_nanotrack_real_pair_still_tracks():
    import cv2

    from trackers.core import registry

    tracker = registry.build("opencv-nanotrack", shared_path("models", "nanotrack"))
    frames = _bench_frames(2)
    tracker.init(cv2.imread(frames[0]), (10, 10, 40, 40))
    assert len(tracker.track(cv2.imread(frames[1])).box) == 4
