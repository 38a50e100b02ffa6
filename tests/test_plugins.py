"""Trackers as plugins: a third-party package adds a tracker through the `siamscope.trackers`
entry-point group (docs/plugins.md), and it shows up where the project's own trackers do: in
`python main.py trackers`, in the window's tracker picker, and in `eval`. A broken plugin costs one
line and nothing else.

The plugin is tests/plugin_example, installed for real (`pip install --no-deps --target`) into a
folder put on the path; the broken one is a test distribution whose module raises on import."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import ROOT, shared_path

EXAMPLE = os.path.join(ROOT, "tests", "plugin_example")
BROKEN_DIST = "siamscope_broken_plugin-0.1.0.dist-info"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> str:
    """A folder holding the example plugin, installed by pip from its pyproject (a copy of its
    source, so no build files land in tests/), and a broken plugin's distribution."""
    work = tmp_path_factory.mktemp("plugin")
    src, site = work / "src", work / "site"
    shutil.copytree(EXAMPLE, src)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--target",
            str(site),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0 and "No module named" in proc.stderr and "setuptools" in proc.stderr:
        pytest.skip("setuptools (the build backend) is not installed")
    assert proc.returncode == 0, proc.stderr
    assert (site / "siamscope_example_plugin").is_dir()
    # the broken plugin: its entry point names a module that fails on import
    (site / "siamscope_broken_plugin.py").write_text("raise RuntimeError('this plugin is broken on purpose')\n")
    dist = site / BROKEN_DIST
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: siamscope-broken-plugin\nVersion: 0.1.0\n")
    (dist / "entry_points.txt").write_text("[siamscope.trackers]\nbroken = siamscope_broken_plugin:TRACKERS\n")
    return str(site)


def _run(args, site, timeout=600):
    env = dict(os.environ, PYTHONPATH=site, SIAMSCOPE_MODELS=os.path.join(ROOT, "..", "shared", "models"))
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "main.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_trackers_lists_the_plugin_and_a_broken_plugin_costs_one_line(plugin_site):
    proc = _run(["trackers"], plugin_site)
    assert proc.returncode == 0, proc.stderr
    names = [line.split()[0] for line in proc.stdout.splitlines() if line.strip()]
    assert "example-match" in names
    assert "nanotrack-v2" in names and "csrt" in names  # the project's own are all still there
    assert names.index("example-match") > names.index("csrt")  # plugins come after the project's trackers
    problems = [line for line in proc.stderr.splitlines() if "broken" in line]
    assert len(problems) == 1, proc.stderr
    assert "siamscope_broken_plugin" in problems[0] and "broken on purpose" in problems[0]


def test_eval_runs_the_plugin(plugin_site):
    seq = shared_path("bench", "bag")
    proc = _run(["eval", seq, "--trackers", "example-match", "--max-frames", "20", "--threads", "1"], plugin_site)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "example-match" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("bag"))
    auc = float(row.split("|")[1].split()[0])
    assert 0.0 < auc <= 1.0, row


def test_the_window_picker_offers_the_plugin(qtbot, tmp_path, plugin_site, monkeypatch):
    """The registry reads the entry points anew with the plugin on the path (its own copy of the
    table, restored after the test), and the window's picker lists and selects it."""
    from tests.app_support import make_window
    from trackers.core import registry

    registry.all_trackers()  # the built-in catalogue read first, so the copies below hold it
    monkeypatch.syspath_prepend(plugin_site)
    importlib.invalidate_caches()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_read", set(registry._read))
    monkeypatch.setattr(registry, "IMPORT_ERRORS", dict(registry.IMPORT_ERRORS))
    monkeypatch.setattr(registry, "_plugins_read", False)
    window = make_window(qtbot, tmp_path)
    combo = window.tracker_bar.tracker_combo
    i = combo.findData("example-match")
    assert i >= 0, [combo.itemData(k) for k in range(combo.count())]
    # the example plugin declares itself experimental: the picker says so after its title
    assert combo.itemText(i) == "Template matching (example plugin)  — experimental"  # no checkpoint to ask for
    assert combo.findData("nanotrack-v2") >= 0
    combo.setCurrentIndex(i)
    assert window.tracker_bar.tracker_name() == "example-match"
    assert any("broken" in k for k in registry.IMPORT_ERRORS)
