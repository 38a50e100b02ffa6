"""The model zoo against a hostile manifest, served by a real HTTP server on 127.0.0.1: `file`
entries that lead out of the models folder (`..`, absolute, through a planted symlink), URLs and
redirects that are not http(s), manifests that are not JSON or have missing / mistyped fields,
and the window's Download button with such an entry. After each, the whole temporary tree is
listed: nothing was written outside the models folder (issue 21 item 1)."""

import hashlib
import http.server
import json
import os
import threading
import time

import pytest

from trackers.run import zoo
from trackers.tools.cli import main

PAYLOAD = b"checkpoint bytes " * 4096
SHA = hashlib.sha256(PAYLOAD).hexdigest()
COMMON = {"tracker": "none", "page": "https://example.org/p", "source": "test", "licence": "MIT"}


def tree(root) -> dict:
    """Every file, link and folder under root (files with size and mtime): compared before and after."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            st = os.lstat(p)
            # a folder counts by its existence (a probe file made and removed changes its mtime)
            out[os.path.relpath(p, root)] = (
                (st.st_mode,)
                if os.path.isdir(p) and not os.path.islink(p)
                else (st.st_mode, st.st_size, st.st_mtime_ns)
            )
    return out


def added(before: dict, after: dict) -> set:
    return {p for p in after if before.get(p) != after[p]}


@pytest.fixture
def hostile_server():
    """/good (PAYLOAD), /to-file (302 -> file:///etc/passwd), /to-data (302 -> data:), /to-ftp,
    /to-good (302 -> /good, another path on the same server)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            redirects = {
                "/to-file": "file:///etc/passwd",
                "/to-data": "data:application/octet-stream,evil",
                "/to-ftp": "ftp://127.0.0.1/x.pth",
                "/to-good": "/good",
            }
            if self.path == "/good":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(PAYLOAD)))
                self.end_headers()
                self.wfile.write(PAYLOAD)
            elif self.path in redirects:
                self.send_response(302)
                self.send_header("Location", redirects[self.path])
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_error(404)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _manifest(tmp_path, entries, name="zoo.json") -> str:
    p = tmp_path / name
    p.write_text(json.dumps({"checkpoints": entries}))
    return str(p)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "file",
    [
        "../../evil.txt",
        "../evil.pth",
        "/ABS/evil.pth",
        "a/../../evil.pth",
        "sub/./x.pth",
        "..\\evil.pth",
        "C:evil.pth",
        "",
        "x\x00.pth",
    ],
)
@pytest.mark.parametrize("flags", [[], ["--force"], ["--all"]])
def test_a_manifest_file_entry_never_leads_out_of_the_models_folder(tmp_path, hostile_server, capsys, file, flags):
    models = tmp_path / "home" / "models"
    models.mkdir(parents=True)
    (tmp_path / "home" / "evil.txt").write_text("the user's notes")
    file = file.replace("/ABS", str(tmp_path / "home"))
    manifest = _manifest(
        tmp_path, [dict(COMMON, name="evil", file=file, url=f"{hostile_server}/good", sha256=SHA, size=len(PAYLOAD))]
    )
    before = tree(tmp_path)
    argv = (
        ["download"]
        + (["evil"] if "--all" not in flags else [])
        + flags
        + ["--manifest", manifest, "--dir", str(models)]
    )
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert "'file'" in err and "evil" in err
    assert added(before, tree(tmp_path)) == set()
    assert (tmp_path / "home" / "evil.txt").read_text() == "the user's notes"


def test_a_built_entry_is_checked_too_the_windows_path(tmp_path, hostile_server):
    """An entry not read from a manifest (the window passes its own) is checked in download()."""
    models = tmp_path / "models"
    before = tree(tmp_path)
    for file in ("../evil.pth", str(tmp_path / "evil.pth")):
        entry = zoo.ZooEntry(
            name="evil",
            tracker="none",
            file=file,
            url=f"{hostile_server}/good",
            page="",
            source="",
            licence="MIT",
            sha256=SHA,
            size=len(PAYLOAD),
        )
        for force in (False, True):
            with pytest.raises(zoo.DownloadError, match="'file'"):
                zoo.download(entry, str(models), force=force)
    assert added(before, tree(tmp_path)) == set()


def test_a_planted_symlink_in_the_models_folder_does_not_lead_a_download_out(tmp_path, hostile_server):
    models = tmp_path / "models"
    outside = tmp_path / "site-packages"
    models.mkdir()
    outside.mkdir()
    os.symlink(outside, models / "sub")  # a sub-folder that is a link outside
    os.symlink(outside / "evil.pth", models / "direct.pth")  # a file name that is a link outside
    before = tree(tmp_path)
    for file in ("sub/evil.pth", "direct.pth"):
        entry = zoo.ZooEntry(
            name="evil",
            tracker="none",
            file=file,
            url=f"{hostile_server}/good",
            page="",
            source="",
            licence="MIT",
            sha256=SHA,
            size=len(PAYLOAD),
        )
        with pytest.raises(zoo.DownloadError, match="leads outside"):
            zoo.download(entry, str(models), force=True)
    assert added(before, tree(tmp_path)) == set() and os.listdir(outside) == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "data:application/octet-stream;base64,ZXZpbA==",
        "ftp://127.0.0.1/x.pth",
        "javascript:alert(1)",
        "//127.0.0.1/x",
        "http://",
    ],
)
def test_only_http_urls_are_accepted(tmp_path, capsys, url):
    models = tmp_path / "models"
    manifest = _manifest(tmp_path, [dict(COMMON, name="odd", file="odd.pth", url=url)])
    before = tree(tmp_path)
    assert main(["download", "odd", "--manifest", manifest, "--dir", str(models)]) == 2
    assert "not an http(s) URL" in _one_line_error(capsys)
    entry = zoo.ZooEntry(name="odd", tracker="none", file="odd.pth", url=url, page="", source="", licence="")
    with pytest.raises(zoo.DownloadError, match="not an http"):
        zoo.download(entry, str(models))
    assert added(before, tree(tmp_path)) == set()


@pytest.mark.parametrize("path", ["/to-file", "/to-data", "/to-ftp"])
def test_a_redirect_off_http_is_not_followed(tmp_path, hostile_server, path):
    models = tmp_path / "models"
    entry = zoo.ZooEntry(
        name="r", tracker="none", file="r.pth", url=hostile_server + path, page="", source="", licence=""
    )
    before = tree(tmp_path)
    with pytest.raises(zoo.DownloadError, match="not an http\\(s\\) URL; not followed"):
        zoo.download(entry, str(models))
    assert added(before, tree(tmp_path)) == set()


def test_a_redirect_to_another_http_path_is_followed(tmp_path, hostile_server):
    models = tmp_path / "models"
    entry = zoo.ZooEntry(
        name="r",
        tracker="none",
        file="r.pth",
        url=hostile_server + "/to-good",
        page="",
        source="",
        licence="",
        sha256=SHA,
        size=len(PAYLOAD),
    )
    path = zoo.download(entry, str(models))
    assert path == str(models / "r.pth") and open(path, "rb").read() == PAYLOAD
    assert sorted(tree(tmp_path)) == ["models", os.path.join("models", "r.pth")]


BROKEN = {
    "not JSON": "{checkpoints: [",
    "binary": b"\xff\xfe\x00garbage",
    "a list": "[1, 2]",
    "null": "null",
    "no checkpoints": "{}",
    "checkpoints not a list": '{"checkpoints": {"a": 1}}',
    "entry not an object": '{"checkpoints": [5]}',
    "missing file": json.dumps({"checkpoints": [dict(COMMON, name="m", url=None)]}),
    "missing url": json.dumps({"checkpoints": [dict(COMMON, name="m", file="m.pth")]}),
    "file a number": json.dumps({"checkpoints": [dict(COMMON, name="m", file=5, url=None)]}),
    "size a string": json.dumps({"checkpoints": [dict(COMMON, name="m", file="m.pth", url=None, size="12")]}),
    "size negative": json.dumps({"checkpoints": [dict(COMMON, name="m", file="m.pth", url=None, size=-1)]}),
    "size a bool": json.dumps({"checkpoints": [dict(COMMON, name="m", file="m.pth", url=None, size=True)]}),
    "sha256 not hex": json.dumps({"checkpoints": [dict(COMMON, name="m", file="m.pth", url=None, sha256="x")]}),
    "url a list": json.dumps({"checkpoints": [dict(COMMON, name="m", file="m.pth", url=["http://a"])]}),
    "unpublished not a list": json.dumps({"checkpoints": [], "unpublished": 3}),
    "unpublished file escapes": json.dumps(
        {"checkpoints": [], "unpublished": [{"tracker": "t", "file": "../../x.pth", "note": ""}]}
    ),
    "deeply nested": "[" * 100000 + "]" * 100000,
}


@pytest.mark.parametrize("what", sorted(BROKEN))
@pytest.mark.parametrize("command", ["zoo", "download"])
def test_a_broken_manifest_is_one_line_not_a_traceback(tmp_path, capsys, what, command):
    manifest = tmp_path / "zoo.json"
    text = BROKEN[what]
    manifest.write_bytes(text if isinstance(text, bytes) else text.encode())
    argv = [command, "--manifest", str(manifest)] + (
        ["--all", "--dir", str(tmp_path / "m")] if command == "download" else []
    )
    before = tree(tmp_path)
    assert main(argv) == 2
    err = _one_line_error(capsys)
    assert "manifest" in err and str(manifest) in err
    assert added(before, tree(tmp_path)) == set()


def test_a_missing_manifest_is_one_line(tmp_path, capsys):
    assert main(["zoo", "--manifest", str(tmp_path / "nope.json")]) == 2
    assert "cannot read the model-zoo manifest" in _one_line_error(capsys)


def test_unknown_fields_are_ignored_and_bundled_is_additive(tmp_path):
    manifest = _manifest(
        tmp_path, [dict(COMMON, name="b", file="siamattn_effnet.pth", url=None, bundled=True, future_field={"x": 1})]
    )
    (entry,) = zoo.load_manifest(manifest)
    assert entry.bundled is True
    assert entry.installed() == zoo.shipped("siamattn_effnet.pth") is not None


def test_the_listing_shows_the_shipped_siamattn_checkpoint_as_present(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    monkeypatch.delenv("SIAMSCOPE_MODELS", raising=False)
    assert main(["zoo"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("siamattn_effnet.pth"))
    assert "not published" not in line and "shipped with SiamScope" in line
    assert os.path.join("resources", "siamattn_effnet.pth") in line


def test_a_stale_part_of_ours_goes_with_the_next_download(tmp_path, hostile_server):
    models = tmp_path / "models"
    models.mkdir()
    stale = models / ".r.pth.abcd1234.part"  # a killed download's, untouched for an hour
    stale.write_bytes(b"x" * 1000)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    fresh = models / ".r.pth.zzzz9999.part"  # another download of it, running now
    fresh.write_bytes(b"y")
    foreign = models / ".r.pth.notours.part"  # not mkstemp's pattern: not ours
    foreign.write_bytes(b"z")
    os.utime(foreign, (old, old))
    elsewhere = tmp_path / "keep.txt"
    elsewhere.write_text("keep")
    os.symlink(elsewhere, models / ".r.pth.link0000.part")  # a link with our pattern: left alone
    os.utime(models / ".r.pth.link0000.part", (old, old), follow_symlinks=False)
    entry = zoo.ZooEntry(
        name="r",
        tracker="none",
        file="r.pth",
        url=hostile_server + "/good",
        page="",
        source="",
        licence="",
        sha256=SHA,
        size=len(PAYLOAD),
    )
    zoo.download(entry, str(models))
    assert not stale.exists() and fresh.exists() and foreign.exists() and elsewhere.read_text() == "keep"
    assert os.path.islink(models / ".r.pth.link0000.part")


def test_the_window_download_button_refuses_an_entry_that_leads_out(qtbot, tmp_path, hostile_server):
    pytest.importorskip("pytestqt")
    from PySide6.QtCore import Qt

    from tests.app_support import make_window

    window = make_window(qtbot, tmp_path / "app")
    models = tmp_path / "models"
    entry = zoo.ZooEntry(
        name="evil",
        tracker="none",
        file="../evil.pth",
        url=hostile_server + "/good",
        page="",
        source="",
        licence="MIT",
        sha256=SHA,
        size=len(PAYLOAD),
    )
    dialog = window.open_model_zoo([entry], str(models))
    qtbot.addWidget(dialog)
    before = tree(tmp_path)
    qtbot.mouseClick(dialog.download_button, Qt.LeftButton)
    qtbot.waitUntil(
        lambda: dialog.job is not None and dialog.job.isFinished() and dialog.download_button.isEnabled(), timeout=30000
    )
    assert "'file'" in dialog.message.text() and "'../evil.pth'" in dialog.message.text()
    assert {p for p in added(before, tree(tmp_path)) if not p.startswith("app")} == set()
    assert not (tmp_path / "evil.pth").exists()


def test_the_window_shows_a_broken_manifest_as_one_line(qtbot, tmp_path, monkeypatch):
    pytest.importorskip("pytestqt")
    from tests.app_support import make_window

    manifest = tmp_path / "zoo.json"
    manifest.write_text('{"checkpoints": [{"name": "x"}]}')
    monkeypatch.setenv("SIAMSCOPE_ZOO_MANIFEST", str(manifest))
    window = make_window(qtbot, tmp_path / "app")
    dialog = window.open_model_zoo(None, str(tmp_path / "models"))
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 0 and "field 'tracker' is missing" in dialog.message.text()


def test_a_link_planted_as_the_sha256_record_is_not_written_through(tmp_path, hostile_server):
    models, outside = tmp_path / "models", tmp_path / "outside.txt"
    models.mkdir()
    outside.write_text("keep")
    os.symlink(outside, models / "r.pth.sha256")
    entry = zoo.ZooEntry(
        name="r", tracker="none", file="r.pth", url=hostile_server + "/good", page="", source="", licence=""
    )  # no sha256: one is recorded
    before = tree(tmp_path)
    with pytest.raises(zoo.DownloadError, match="sha256 record.*leads outside"):
        zoo.download(entry, str(models))
    assert outside.read_text() == "keep" and added(before, tree(tmp_path)) == set()
