"""The product is what a user installs (issue 22): the wheel holds everything the app reads at run
time, installs into a fresh venv, and runs from a folder outside the checkout with no model folder,
no ../shared and no network, on NanoTrack v2's checkpoint bundled in the package."""

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import tomllib

from tests.conftest import ROOT, shared_path

#: what the wheel is built from: the files pyproject.toml packages (copied, so the build's
#: build/ and *.egg-info never land in the checkout)
SOURCE_ITEMS = ("pyproject.toml", "README.md", "NOTICE", "main.py", "app", "trackers", "models", "resources")
#: NanoTrack v2's published checkpoint (resources/model_zoo.json, SiamTrackers)
NANOTRACK_V2_SHA256 = "938a320c560fd8c8d6a148a76a072bca29c529ce16591c9a2157859ee0ecc5e1"
BAG_BOX = "292,128,146,132"


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _pyproject() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    found = set()
    for top in ("app", "trackers", "models"):
        for folder, dirs, files in os.walk(os.path.join(ROOT, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if any(f.endswith(".py") for f in files):
                found.add(os.path.relpath(folder, ROOT).replace(os.sep, "."))
    missing = found - listed
    assert not missing, (
        f"add {sorted(missing)} to [tool.setuptools] packages in pyproject.toml (else the wheel lacks them)"
    )
    assert _pyproject()["tool"]["setuptools"]["package-dir"]["siamscope_resources"] == "resources"


def test_bundled_nanotrack_is_the_published_file_with_its_licence():
    from trackers.core import registry
    from trackers.core.paths import resource_path

    bundled = resource_path("nanotrackv2.pth")
    assert _sha256(bundled) == NANOTRACK_V2_SHA256
    with open(resource_path("model_zoo.json")) as f:
        entry = next(e for e in json.load(f)["checkpoints"] if e["name"] == "nanotrackv2")
    assert entry["bundled"] is True and entry["sha256"] == NANOTRACK_V2_SHA256
    assert registry.shipped_file("nanotrackv2.pth") == bundled
    with open(resource_path("nanotrack_LICENSE")) as f:
        assert "Apache License" in f.read()
    with open(os.path.join(ROOT, "NOTICE")) as f:
        notice = f.read()
    assert "nanotrackv2.pth" in notice and "SiamTrackers" in notice and NANOTRACK_V2_SHA256 in notice


def test_bundled_nanotrack_equals_the_shared_copy():
    from trackers.core.paths import resource_path

    assert _sha256(resource_path("nanotrackv2.pth")) == _sha256(shared_path("models", "nanotrack", "nanotrackv2.pth"))


def test_usage_line_names_the_command_typed():
    from trackers.tools.program import program_name

    assert program_name("/home/u/.venv/bin/siamscope") == "siamscope"
    assert program_name("/work/x/main.py") == "python main.py"
    assert program_name("main.py") == "python main.py"


def test_trackers_table_columns_line_up(capsys):
    from trackers.tools.cli import main

    assert main(["trackers"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    # an experimental tracker's "  [experimental: ...]" tail comes after the columns
    rows = [re.sub(r"  \[experimental[^\]]*\]$", "", line) for line in rows]
    # the third column (checkpoint path or note) starts at the same place on every row
    starts = {len(line) - len(line.split("  ")[-1].lstrip()) for line in rows}
    assert len(starts) == 1, rows


def _locked_backend_installed() -> bool:
    """The build backend pyproject.toml pins (setuptools==X) is the one installed here."""
    if importlib.util.find_spec("setuptools") is None:
        return False
    from importlib.metadata import version

    (pin,) = _pyproject()["build-system"]["requires"]
    return pin == f"setuptools=={version('setuptools')}"


def _build_wheel(tmp_path) -> str:
    src = tmp_path / "src"
    src.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "lovo_folds", "gallery")
    for item in SOURCE_ITEMS:
        path = os.path.join(ROOT, item)
        if os.path.isdir(path):
            shutil.copytree(path, src / item, ignore=ignore)
        else:
            shutil.copy2(path, src / item)
    out = tmp_path / "dist"
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(src), "-w", str(out)]
    if _locked_backend_installed():
        cmd.insert(5, "--no-build-isolation")  # no fetch; else pip fetches the locked backend
    subprocess.run(cmd, check=True, timeout=300)
    (wheel,) = out.glob("*.whl")
    return str(wheel)


@pytest.mark.slow
def test_wheel_installs_in_a_fresh_venv_and_tracks_from_another_folder(tmp_path):
    video = shared_path("data", "videos", "bag.avi")
    wheel = _build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in (
        "default_tracker.pth",
        "default_tracker.json",
        "model_zoo.json",
        "nanotrackv2.pth",
        "nanotrack_LICENSE",
        "siamattn_effnet.pth",
        "siamattn_effnet.json",
    ):
        assert f"siamscope_resources/{f}" in names
    assert not any(n.startswith("resources/") for n in names)  # no top-level `resources` package
    assert "siamscope-0.1.0.dist-info/licenses/NOTICE" in names or any(n.endswith("/NOTICE") for n in names)

    # torch, Qt, ... come from this machine (--system-site-packages); the wheel alone from the file
    venv = tmp_path / "venv"
    # --without-pip: no ensurepip needed (Debian's python3 lacks it without python3-venv); this
    # machine's pip installs into the venv (--python, pip >= 22.3)
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True, timeout=120
    )
    py = str(venv / "bin" / "python")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            py,
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--ignore-installed",
            wheel,
        ],
        check=True,
        timeout=300,
    )
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("SIAMSCOPE_MODELS", "SIAMSCOPE_SHARED", "PYTHONPATH")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")  # an empty user models folder
    # any attempt at the network fails at once (nothing listens on port 9)
    env.update(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9", no_proxy="")

    def run(*args, exe=str(venv / "bin" / "siamscope")):
        return subprocess.run([exe, *args], cwd=work, env=env, capture_output=True, text=True, timeout=300)

    site = run(
        "-c",
        "import main, trackers, app, models, siamscope_resources as r;"
        "print(main.__file__, trackers.__file__, app.__file__, models.__file__, r.__file__)",
        exe=py,
    )
    assert site.returncode == 0, site.stderr
    venv_site = os.path.realpath(str(venv / "lib"))
    for f in site.stdout.split():
        assert os.path.realpath(f).startswith(venv_site), f"{f} is not the venv's (the checkout shadows it)"

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("SiamScope "), version.stderr

    track = run("track", video, "--box", BAG_BOX, "--frames", "0:10", "--out", "bag.txt")
    assert track.returncode == 0, track.stderr
    assert "with siamscope-default" in track.stdout
    with open(work / "bag.txt") as f:
        lines = f.read().splitlines()
    assert len(lines) == 10
    assert [float(v) for v in lines[0].split(",")] == [float(v) for v in BAG_BOX.split(",")]
    for line in lines[1:]:
        x, y, w, h = (float(v) for v in line.split(","))
        assert w > 0 and h > 0 and abs(x - 292) < 80 and abs(y - 128) < 80  # still on the bag
    assert not (tmp_path / "xdg").exists() or not any((tmp_path / "xdg").rglob("*.pth"))  # nothing downloaded

    zoo = run("zoo")
    assert zoo.returncode == 0, zoo.stderr
    line = next(l for l in zoo.stdout.splitlines() if l.startswith("nanotrackv2 "))
    assert line.rstrip().endswith("(shipped with SiamScope)") and os.path.realpath(line.split()[2]).startswith(
        venv_site
    )

    bench = os.path.dirname(os.path.dirname(video))  # ../shared/data -> its bench beside it
    bench = os.path.join(os.path.dirname(bench), "bench")
    if os.path.isdir(os.path.join(bench, "bag")):
        scored = run("eval", bench, "--trackers", "nanotrack-v2", "--max-frames", "3")
        assert scored.returncode == 0, scored.stderr
        assert re.search(r"^overall\s+\d+ \|\s+[01]\.\d{3}", scored.stdout, re.M), scored.stdout

    # outside a checkout there is no ../shared/bench to default to: one line says what to give
    no_folder = run("eval")
    assert no_folder.returncode == 2 and "siamscope eval DIR" in no_folder.stderr
    assert len(no_folder.stderr.strip().splitlines()) == 1
    no_data = run("train", "--write-synthetic", "synth")
    assert no_data.returncode == 2 and "siamscope train --data DIR" in no_data.stderr
    assert not (work / "synth").exists()
