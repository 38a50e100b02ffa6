"""The layering rule, enforced: app/ (Qt) above trackers/ (headless) above models/ (torch), no Qt or
pyqtgraph below app/, inside trackers/ tools above train above families and run above core, no import
cycles between the modules of a package. The contracts live in
pyproject.toml ([tool.importlinter]) and are checked here by import-linter, which reads every
import statement, those inside functions included."""

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

importlinter = pytest.importorskip("importlinter", reason="import-linter is in the test extra (pyproject.toml)")

PYPROJECT = os.path.join(ROOT, "pyproject.toml")


def lint(config: str, cwd: str):
    """lint-imports on `config`, with `cwd` first on the path; (exit code, report)."""
    code = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={config!r}, no_cache=True, no_logo=True))"
    )
    env = dict(os.environ, PYTHONPATH=cwd)
    proc = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def test_the_project_keeps_its_layers():
    rc, report = lint(PYPROJECT, ROOT)
    assert rc == 0, report
    assert "5 kept, 0 broken" in report, report


def test_the_contracts_catch_qt_below_app_a_layer_inversion_a_family_in_core_and_a_cycle(tmp_path):
    """The same contracts on a small tree that breaks each of them: all five are reported."""
    files = {
        "app/__init__.py": "",
        "app/window.py": "import trackers.tools.cli\n",
        "trackers/__init__.py": "",
        "trackers/core/__init__.py": "",
        # the shared core reaching up into the run machinery
        "trackers/core/base.py": "from trackers.run import session\n",
        # the registry naming a family (it only holds the mechanism; the catalogue is in families/)
        "trackers/core/registry.py": "def load():\n    from trackers.families import nanotrack\n",
        "trackers/families/nanotrack.py": "",
        "trackers/run/__init__.py": "",
        "trackers/run/session.py": "",
        "trackers/families/__init__.py": "",
        "trackers/train/__init__.py": "",
        "trackers/tools/__init__.py": "",
        "trackers/tools/cli.py": "from . import evaluate\n",
        # the cycle cli.py once hid behind __import__: evaluate imports cli back
        "trackers/tools/evaluate.py": "def cmd():\n    from .cli import evaluate\n",
        "trackers/view.py": "import PySide6.QtWidgets\n",
        "models/__init__.py": "",
        "models/net.py": "from trackers.tools import evaluate\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    contracts = open(PYPROJECT).read().split("[tool.importlinter]", 1)[1]
    (tmp_path / "pyproject.toml").write_text("[tool.importlinter]" + contracts)
    rc, report = lint(str(tmp_path / "pyproject.toml"), str(tmp_path))
    assert rc != 0
    assert "0 kept, 5 broken" in report, report
    assert "trackers.view -> PySide6" in report and "models.net -> trackers.tools.evaluate" in report
    assert "trackers.core.base -> trackers.run.session" in report, report
    # the new contract names the family import itself (not only the layers contract)
    own = report.split("Broken contracts", 1)[1].split("core imports no family", 1)[1].split("no Qt or", 1)[0]
    assert "trackers.core.registry -> trackers.families.nanotrack" in own, report
    assert "cycles are allowed in trackers.tools" in report and ".evaluate -> .cli" in report, report


def _python_sources():
    for top in ("app", "trackers", "models"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if f.endswith(".py"):
                    yield os.path.join(dirpath, f)
    yield os.path.join(ROOT, "main.py")


def test_no_project_module_is_imported_by_name():
    """An import by string is one import-linter cannot see (the registry once imported every family
    that way). The one left is numpy's, in models/checkpoint.py: the numpy globals a pickled
    checkpoint may name."""
    import re

    found = []
    for path in _python_sources():
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            if re.search(r"\bimport_module\(|__import__\(", line):
                found.append(f"{os.path.relpath(path, ROOT)}:{n}: {line.strip()}")
    assert [f for f in found if not f.startswith(os.path.join("models", "checkpoint.py"))] == [], found


def test_every_onnx_runtime_session_is_made_by_the_engine():
    """One engine (trackers/core/engines.py) makes every ONNX Runtime session, with the compute
    policy's options; models/device.py holds the CUDA variant it calls."""
    allowed = {os.path.join("trackers", "core", "engines.py"), os.path.join("models", "device.py")}
    found = [
        os.path.relpath(p, ROOT) for p in _python_sources() if "InferenceSession(" in open(p, encoding="utf-8").read()
    ]
    assert set(found) <= allowed, found
