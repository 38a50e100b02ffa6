"""The model-zoo manifest and the download path, against a local HTTP server (no internet needed)."""

import functools
import hashlib
import http.server
import os
import re
import threading

import pytest

from tests.conftest import ROOT, shared_path
from trackers.core import registry
from trackers.run import zoo
from trackers.tools.cli import main

PAYLOAD = bytes(range(256)) * 4096 + b"tail"  # ~1 MB: several chunks


def _entry(url, sha=None, size=None, file="sub/ckpt.pth"):
    return zoo.ZooEntry(
        name="test-ckpt",
        tracker="none",
        file=file,
        url=url,
        page="https://example.org/page",
        source="",
        licence="MIT",
        sha256=sha,
        size=size,
    )


def _leftovers(folder):
    return [os.path.join(d, f) for d, _, files in os.walk(folder) for f in files]


@pytest.fixture
def server(tmp_path):
    """127.0.0.1 HTTP server on a free port serving tmp_path/www; yields (base_url, stop)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "ckpt.pth").write_bytes(PAYLOAD)
    (www / "page.html").write_text("<html>confirm download</html>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(www)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop():
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)
            stopped.append(True)

    yield f"http://127.0.0.1:{httpd.server_address[1]}", stop
    stop()


# -- manifest ----------------------------------------------------------------------------------
def test_manifest_is_well_formed():
    entries = zoo.load_manifest()
    assert len(entries) >= 18
    names = [e.name for e in entries]
    assert len(set(names)) == len(names)
    assert len({e.file for e in entries}) == len(entries)
    for e in entries:
        assert e.tracker and e.licence and e.page.startswith("https://"), e
        assert not os.path.isabs(e.file) and ".." not in e.file.split("/"), e
        assert e.url is None or e.url.startswith("https://"), e
        assert e.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", e.sha256), e
        assert e.size is None or e.size > 0
    families = {e.source for e in entries}
    for src in ("STVIR/pysot", "researchmm/SiamDW", "foolwood/DaSiamRPN", "siamfc-pytorch", "SiamTrackers"):
        assert any(src in s for s in families), src


def test_manifest_covers_every_tracker_that_needs_weights():
    files = {e.file for e in zoo.load_manifest()} | {u.file for u in zoo.load_unpublished()}
    resources = os.path.join(ROOT, "resources")
    uncovered = [
        s.name
        for s in registry.all_trackers()
        if s.needs_weights
        and s.weights_file not in files
        and not os.path.isfile(os.path.join(resources, s.weights_file))
    ]  # shipped with the project
    assert not uncovered, f"trackers with no zoo entry: {uncovered}"


def test_nanotrack_checksums_match_the_published_files():
    by_file = {e.file: e for e in zoo.load_manifest()}
    for f in ("nanotrackv1.pth", "nanotrackv2.pth", "nanotrackv3.pth", "nanotrackv2_backbone_sim.onnx"):
        p = shared_path("models", "nanotrack", f)
        with open(p, "rb") as fh:
            data = fh.read()
        assert by_file[f].sha256 == hashlib.sha256(data).hexdigest()
        assert by_file[f].size == len(data)


# -- download ----------------------------------------------------------------------------------
def test_download_with_good_checksum_lands_the_file(tmp_path, server):
    base, _ = server
    dest = tmp_path / "models"
    calls = []
    entry = _entry(f"{base}/ckpt.pth", hashlib.sha256(PAYLOAD).hexdigest(), len(PAYLOAD))
    path = zoo.download(entry, str(dest), progress=lambda done, total: calls.append((done, total)))
    assert path == str(dest / "sub" / "ckpt.pth")
    assert open(path, "rb").read() == PAYLOAD
    assert _leftovers(dest) == [path]  # no temporary file left
    assert calls[0] == (0, len(PAYLOAD)) and calls[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(calls) >= 4 and all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, server):
    base, _ = server
    dest = tmp_path / "models"
    with pytest.raises(zoo.DownloadError, match="checksum mismatch"):
        zoo.download(_entry(f"{base}/ckpt.pth", "0" * 64), str(dest))
    assert _leftovers(dest) == []


def test_download_keeps_a_good_file_when_the_new_one_is_bad(tmp_path, server):
    base, _ = server
    dest = tmp_path / "models"
    (dest / "sub").mkdir(parents=True)
    (dest / "sub" / "ckpt.pth").write_bytes(b"old")
    with pytest.raises(zoo.DownloadError):
        zoo.download(_entry(f"{base}/ckpt.pth", "0" * 64), str(dest))
    assert (dest / "sub" / "ckpt.pth").read_bytes() == b"old"
    assert len(_leftovers(dest)) == 1


def test_cancel_keeps_nothing(tmp_path, server):
    base, _ = server
    dest = tmp_path / "models"
    seen = []
    with pytest.raises(zoo.DownloadCancelled):
        zoo.download(
            _entry(f"{base}/ckpt.pth"), str(dest), progress=lambda d, t: seen.append(d), cancelled=lambda: len(seen) > 2
        )
    assert _leftovers(dest) == []


def test_web_page_instead_of_file_is_refused(tmp_path, server):
    base, _ = server
    dest = tmp_path / "models"
    with pytest.raises(zoo.DownloadError, match="web page"):
        zoo.download(_entry(f"{base}/page.html"), str(dest))
    with pytest.raises(zoo.DownloadError, match="404"):
        zoo.download(_entry(f"{base}/missing.pth"), str(dest))
    assert _leftovers(dest) == []


def test_server_gone_is_a_clear_error(tmp_path, server):
    base, stop = server
    stop()
    dest = tmp_path / "models"
    with pytest.raises(zoo.DownloadError) as err:
        zoo.download(_entry(f"{base}/ckpt.pth"), str(dest), timeout=5)
    msg = str(err.value)
    assert "cannot download test-ckpt" in msg and f"{base}/ckpt.pth" in msg
    assert os.path.join(str(dest), "sub", "ckpt.pth") in msg
    assert not dest.exists()  # not even an empty folder is made for a failed fetch


def test_offline_message_names_url_and_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.delenv("SIAMSCOPE_MODELS", raising=False)
    folder = registry.user_models_dir()
    # .invalid never resolves (RFC 2606): the same failure as a machine with no network, at once
    with pytest.raises(zoo.DownloadError) as err:
        zoo.download(_entry("https://checkpoints.invalid/ckpt.pth"))
    assert "https://checkpoints.invalid/ckpt.pth" in str(err.value) and folder in str(err.value)
    # an entry with no direct link names the page to fetch it from
    siamdw = zoo.find("siamfc-res22")[0]
    with pytest.raises(zoo.DownloadError, match="no direct download") as err:
        zoo.download(siamdw)
    assert siamdw.page in str(err.value) and os.path.join(folder, "CIResNet22.pth") in str(err.value)
    assert main(["download", "siamfc-res22"]) == 2
    err_line = capsys.readouterr().err.strip()
    assert err_line.startswith("error: ") and "CIResNet22.pth" in err_line and len(err_line.splitlines()) == 1
    assert not os.path.exists(os.path.join(folder, "CIResNet22.pth"))


def test_zoo_listing_shows_present_checkpoints(monkeypatch, capsys):
    models = os.path.dirname(os.path.dirname(shared_path("models", "nanotrack", "nanotrackv2.pth")))
    monkeypatch.setenv("SIAMSCOPE_MODELS", models)
    assert main(["zoo"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.startswith("nanotrackv2 "))
    assert line.rstrip().endswith(os.path.join("nanotrack", "nanotrackv2.pth"))
    assert re.search(r"^SiamRPNBIG\s+dasiamrpn-big\s+missing", out, re.M)
    # a present checkpoint is not fetched again
    assert main(["download", "nanotrack-v2"]) == 0
    assert "present at" in capsys.readouterr().out


def test_unknown_name_is_a_usage_error(capsys):
    assert main(["download", "no-such-checkpoint"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


# -- a server that misbehaves: short, long, endless, redirecting -----------------------------------
@pytest.fixture
def odd_server():
    """127.0.0.1 server with the answers a real download can get: /good (PAYLOAD), /short
    (Content-Length 100000, 500 bytes sent), /endless (no length, never ends), /long (announces
    more than PAYLOAD), /moved (302 to /good)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            try:
                if self.path == "/good":
                    self._send(PAYLOAD, len(PAYLOAD))
                elif self.path == "/short":
                    self._send(PAYLOAD[:500], 100000)
                elif self.path == "/long":
                    self._send(PAYLOAD + b"x" * 1000, len(PAYLOAD) + 1000)
                elif self.path == "/moved":
                    self.send_response(302)
                    self.send_header("Location", "/good")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path == "/endless":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    self.close_connection = True
                    block = b"\0" * 65536
                    while True:  # until the client hangs up
                        self.wfile.write(block)
                else:
                    self.send_error(404)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def _send(self, body, length):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(length))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_body_cut_short_is_refused_even_without_a_checksum(tmp_path, odd_server):
    dest = tmp_path / "models"
    with pytest.raises(zoo.DownloadError, match=r"(got 500 bytes|broke off after 500 bytes).*nothing was kept"):
        zoo.download(_entry(f"{odd_server}/short"), str(dest))
    assert _leftovers(dest) == []


def test_an_endless_body_stops_at_the_expected_size(tmp_path, odd_server):
    dest = tmp_path / "models"
    seen = []
    with pytest.raises(zoo.DownloadError, match=f"more than the {len(PAYLOAD)} bytes expected"):
        zoo.download(
            _entry(f"{odd_server}/endless", size=len(PAYLOAD)), str(dest), progress=lambda d, t: seen.append(d)
        )
    assert max(seen) <= len(PAYLOAD)  # not one byte past what the manifest says
    assert _leftovers(dest) == []


def test_a_length_that_disagrees_with_the_manifest_is_refused_before_downloading(tmp_path, odd_server):
    dest = tmp_path / "models"
    with pytest.raises(zoo.DownloadError, match=f"announces {len(PAYLOAD) + 1000} bytes, the manifest {len(PAYLOAD)}"):
        zoo.download(_entry(f"{odd_server}/long", size=len(PAYLOAD)), str(dest))
    assert not dest.exists()


def test_wrong_hash_and_redirect(tmp_path, odd_server):
    dest = tmp_path / "models"
    with pytest.raises(zoo.DownloadError, match="checksum mismatch"):
        zoo.download(_entry(f"{odd_server}/good", "0" * 64, len(PAYLOAD)), str(dest))
    assert _leftovers(dest) == []
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    path = zoo.download(_entry(f"{odd_server}/moved", sha, len(PAYLOAD)), str(dest))
    assert open(path, "rb").read() == PAYLOAD and _leftovers(dest) == [path]


def test_download_command_end_to_end_with_a_manifest_override(tmp_path, odd_server, monkeypatch, capsys):
    """`download --manifest` and $SIAMSCOPE_ZOO_MANIFEST against the local server: a verified entry,
    an unverified one (its sha256 recorded, said not verified), a short one that fails; files get
    the permissions any new file gets, not 0600."""
    import json

    sha = hashlib.sha256(PAYLOAD).hexdigest()
    common = {"tracker": "none", "page": "https://example.org/p", "source": "test", "licence": "MIT"}
    manifest = tmp_path / "zoo.json"
    manifest.write_text(
        json.dumps(
            {
                "checkpoints": [
                    dict(
                        common, name="verified", file="a/v.pth", url=f"{odd_server}/good", sha256=sha, size=len(PAYLOAD)
                    ),
                    dict(common, name="unverified", file="u.pth", url=f"{odd_server}/moved", sha256=None, size=None),
                    dict(common, name="cut", file="c.pth", url=f"{odd_server}/short", sha256=None, size=None),
                ]
            }
        )
    )
    dest = tmp_path / "models"
    assert main(["download", "verified", "--manifest", str(manifest), "--dir", str(dest)]) == 0
    assert "(sha256 verified)" in capsys.readouterr().out
    umask = os.umask(0)
    os.umask(umask)
    assert oct(os.stat(dest / "a" / "v.pth").st_mode & 0o777) == oct(0o666 & ~umask)
    monkeypatch.setenv("SIAMSCOPE_ZOO_MANIFEST", str(manifest))
    assert main(["download", "unverified", "--dir", str(dest)]) == 0
    out = capsys.readouterr().out
    assert "NOT verified" in out and sha in out
    assert (dest / "u.pth").read_bytes() == PAYLOAD
    assert (dest / "u.pth.sha256").read_text().split()[0] == sha
    assert main(["download", "cut", "--dir", str(dest)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "c.pth" in err and not (dest / "c.pth").exists()
    # a file that changed since its download is fetched again (its recorded sha256 no longer fits)
    (dest / "u.pth").write_bytes(b"damaged")
    assert zoo.download(zoo.find("unverified")[0], str(dest)) == str(dest / "u.pth")
    assert (dest / "u.pth").read_bytes() == PAYLOAD


def test_every_direct_download_has_a_checksum_and_size():
    """Entries whose bytes can be fetched from a stable URL carry their sha256 and size; the others
    (cloud drives, author pages) cannot be verified here and are recorded at download instead."""
    for e in zoo.load_manifest():
        if e.url and "drive.google.com" not in e.url:
            assert e.sha256 and e.size, e.name
