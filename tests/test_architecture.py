"""The one loop stays one (issue 23): every run (the GUI worker, `track`, eval, bench, the GPU bench,
calibration, the LOVO labels and table, the channel ranking, the TraX server) drives
trackers/run/session.py, and only its per-frame step, `Track.step`, calls a tracker's `track()`.

Read from the source with `ast`, so a call split over lines or written through another name for the
tracker (`teacher.track(...)`, `rec.track(...)`) is found as well as `tracker.track(`.
"""

import ast
import os
import re
import subprocess

import pytest

from tests.conftest import ROOT

PACKAGES = ("trackers", "app", "models")
#: the one documented per-frame step: (file, function)
PER_FRAME_STEP = ("trackers/run/session.py", "step")
#: `bench --reference` times the reference code's own tracker (pysot's / NanoTrack's, not a
#: SiamScope Tracker: the session cannot drive it) in its own loop, beside ours through Track.step
REFERENCE_CODE_LOOP = ("trackers/tools/bench_reference.py", "child_main")
#: the int8 engine's calibration (core/quantize.py) tracks a few frames of ../shared videos with the
#: fp32 engine only to record the network's inputs: no run, no result kept, and it sits in core,
#: below the session (trackers/run), which it cannot import; the one other documented loop
CALIBRATION_LOOP = ("trackers/core/quantize.py", "record_feeds")
#: `.track(` calls that are not a Tracker's: a network's per-frame forward pass (the torch module,
#: its ONNX Runtime twin, the engine that picks between them) and an override calling its base
NETWORK_RECEIVERS = {"net", "network", "engine", "self.net", "self.network", "self.engine", "super()"}


def _python_files(root: str):
    for package in PACKAGES:
        for folder, _dirs, files in os.walk(os.path.join(root, package)):
            for name in files:
                if name.endswith(".py"):
                    yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def _track_calls(root: str, path: str):
    """(line, receiver source, enclosing function name) of every `<x>.track(...)` call in a file."""
    with open(os.path.join(root, path), encoding="utf-8") as f:
        source = f.read()
    tree = ast.parse(source, path)
    calls = []

    def visit(node, function):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            function = node.name
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "track":
            calls.append((node.lineno, ast.get_source_segment(source, node.func.value), function))
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, None)
    return calls


def _tracker_track_calls(root: str = ROOT):
    found = []
    for path in _python_files(root):
        for line, receiver, function in _track_calls(root, path):
            if receiver in NETWORK_RECEIVERS:
                continue
            if path.startswith("models/") and receiver == "self":  # a network module's own forward
                continue
            found.append((path, line, receiver, function))
    return found


def test_only_the_sessions_per_frame_step_calls_a_trackers_track():
    calls = _tracker_track_calls()
    ours = [
        c
        for c in calls
        if not ((c[0], c[3]) == REFERENCE_CODE_LOOP and c[2] == "reference")
        and not ((c[0], c[3]) == CALIBRATION_LOOP and c[2] == "tracker")
    ]
    outside = [c for c in ours if (c[0], c[3]) != PER_FRAME_STEP]
    assert not outside, (
        "tracker.track() called outside the session's per-frame step (Track.step in "
        f"trackers/run/session.py); drive TrackingSession / Track instead: {outside}"
    )
    assert [(c[0], c[2], c[3]) for c in ours] == [(PER_FRAME_STEP[0], "self.tracker", "step")]


def test_git_grep_finds_tracker_track_only_in_the_session():
    """The issue's own check, as a reader would run it: code lines with `tracker.track(` (prose naming
    the method, "time inside tracker.track()" or in backquotes, aside)."""
    if not os.path.exists(os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout (an installed copy): the ast check above covers it")
    out = subprocess.run(
        ["git", "grep", "-n", r"tracker\.track(", "--", *PACKAGES], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode in (0, 1), out.stderr
    prose = re.compile(r"tracker\.track\(\)|`[^`]*tracker\.track\(")  # the method named in a comment or docstring
    code = [
        ln
        for ln in out.stdout.splitlines()
        if "def track(" not in ln and not prose.search(ln) and not ln.startswith(CALIBRATION_LOOP[0] + ":")
    ]
    assert len(code) == 1 and code[0].startswith(PER_FRAME_STEP[0] + ":"), code


def test_the_check_catches_a_loop_of_its_own(tmp_path):
    """A tracker loop outside the session is found under any name (the check can fail)."""
    rogue = tmp_path / "trackers" / "train"
    rogue.mkdir(parents=True)
    (rogue / "labels.py").write_text(
        "def label(teacher, frames):\n    return [teacher.track(f) for f in frames]\n"
        "def forward(net, x):\n    return net.track(x)\n"
    )
    assert _tracker_track_calls(str(tmp_path)) == [("trackers/train/labels.py", 2, "teacher", "label")]
