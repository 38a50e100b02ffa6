"""Hostile binaries (issue 21, item 9, sec-cache's share): a zip-bomb checkpoint, ONNX files for
opencv-nanotrack whose external data points outside their folder, a damaged ONNX, and vot-serve fed
garbage. Each gets one line and no traceback, before anything large is allocated or read."""
import glob
import os
import struct
import subprocess
import sys
import zlib

import pytest

from tests.conftest import ROOT, shared_path

from models.checkpoint import CheckpointError, read_state_dict


# -- checkpoints ------------------------------------------------------------------------------------
def _zip(path, entries):
    """A zip written by hand: entries are (name, data as stored, method, crc32, declared size), so a
    test can store precomputed deflate bytes and declare what it likes (no zip64: sizes < 4 GB)."""
    with open(path, "wb") as f:
        central = []
        for name, data, method, crc, size in entries:
            offset = f.tell()
            raw = name.encode()
            f.write(struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data), size,
                                len(raw), 0) + raw)
            f.write(data)
            central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                                       len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw)
        start = f.tell()
        f.write(b"".join(central))
        f.write(struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(central), len(central), f.tell() - start,
                            start, 0))


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
                assert data.count(small) == 2          # the storage's numel and the tensor's shape
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
    n_chunks = 78                                   # 78 x 16 MiB = 1.3 GB
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
    proc = subprocess.run([sys.executable, "-c", _CHILD, path], cwd=ROOT, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=ROOT))
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
    entries = [(n, d, m, c, s + 10 ** 9 if n.endswith("/data/0") else s) for n, d, m, c, s in
               [(n, d, 0, zlib.crc32(d), len(d)) for n, d in _torch_entries(1000)]]
    _zip(path, entries)
    with pytest.raises(CheckpointError, match="stored uncompressed but declares"):
        read_state_dict(path)


def test_checkpoint_whose_entries_total_over_the_limit_is_refused(tmp_path, monkeypatch):
    from models import checkpoint
    import torch
    path = tmp_path / "big.pth"
    torch.save({"w": torch.zeros(300000)}, path)
    monkeypatch.setattr(checkpoint, "MAX_UNCOMPRESSED", 1024 * 1024)   # 1 MB: the 1.2 MB file is "too big"
    with pytest.raises(CheckpointError, match="GB uncompressed"):
        read_state_dict(path)


def test_real_checkpoints_still_load():
    shared_path("models", "nanotrack", "nanotrackv2.pth")
    files = sorted(glob.glob(os.path.join(ROOT, "..", "shared", "models", "nanotrack", "*.pth"))
                   + glob.glob(os.path.join(ROOT, "resources", "*.pth")))
    assert len(files) >= 4
    for f in files:
        state = read_state_dict(f)
        assert state and all(hasattr(v, "shape") for v in state.values()), f
