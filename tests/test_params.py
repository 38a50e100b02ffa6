"""Variants and their parameters, done once: the registry entry makes each variant's defaults (what
its builder uses, what "Reset to defaults" goes back to), and each field carries its meaning,
whether it may change mid-run, and its range (the panel's tooltip and editor)."""

import dataclasses

import pytest
from PySide6.QtWidgets import QDoubleSpinBox, QLabel

from tests.app_support import make_window
from tests.conftest import shared_path
from trackers.core import registry
from trackers.core.base import param_info


def test_every_variant_has_its_own_defaults_and_every_field_a_meaning():
    for spec in registry.all_trackers():
        params = spec.make_params()
        assert type(params) is spec.params_type, spec.name
        for f in dataclasses.fields(params):
            info = param_info(spec.params_type, f.name)
            assert info.help, f"{spec.name}: {f.name} has no meaning for the tooltip"
            if info.range is not None and info.live:
                lo, hi = info.range
                assert lo <= getattr(params, f.name) <= hi, (spec.name, f.name)
    # variants sharing one dataclass get their own values (these were the dataclass's before)
    assert registry.get("dasiamrpn-vot").make_params().lr == pytest.approx(0.45)
    assert registry.get("dasiamrpn-otb").make_params().penalty_k == pytest.approx(0.22)
    assert registry.get("nanotrack-v1").make_params().lr == pytest.approx(0.390)
    assert registry.get("nanotrack-v3").make_params().penalty_k == pytest.approx(0.138)
    # structural sizes are marked so; the score grid size NanoTrack never read is gone
    assert not param_info(registry.get("nanotrack-v2").params_type, "point_stride").live
    assert not param_info(registry.get("siamrpnpp-r50").params_type, "exemplar_size").live
    assert "score_size" not in {f.name for f in dataclasses.fields(registry.get("nanotrack-v2").params_type)}


@pytest.mark.parametrize("version", ["v1", "v3"])
def test_builders_use_the_registry_defaults(version):
    tracker = registry.build(f"nanotrack-{version}", shared_path("models", "nanotrack", f"nanotrack{version}.pth"))
    assert tracker.params == registry.get(f"nanotrack-{version}").make_params()


def test_panel_tooltips_structural_fields_and_reset_to_the_variants_defaults(qtbot, tmp_path):
    weights = shared_path("models", "nanotrack", "nanotrackv3.pth")
    window = make_window(qtbot, tmp_path)
    window.select_tracker("nanotrack-v3", weights)
    qtbot.waitUntil(
        lambda: window.tracker_info is not None and window.tracker_info.name == "nanotrack-v3", timeout=30000
    )
    editors = window.params.editors
    assert "scale/aspect change penalty" in editors["penalty_k"].toolTip()
    assert "default 0.138" in editors["penalty_k"].toolTip()
    assert isinstance(editors["penalty_k"], QDoubleSpinBox) and editors["penalty_k"].maximum() == 1.0
    for structural in ("exemplar_size", "point_stride"):
        assert isinstance(editors[structural], QLabel) and not editors[structural].isEnabled()
        assert "structural" in editors[structural].toolTip()
    window.params.set_value("penalty_k", 0.3)
    window.params.set_value("lr", 0.5)
    qtbot.waitUntil(lambda: window.worker.tracker.params.penalty_k == pytest.approx(0.3), timeout=10000)
    window.params.reset_to_defaults()
    # v3's own values come back (the dataclass's own defaults are v2's: 0.15 / 0.385)
    assert editors["penalty_k"].value() == pytest.approx(0.138) and editors["lr"].value() == pytest.approx(0.348)
    qtbot.waitUntil(
        lambda: (
            window.worker.tracker.params.penalty_k == pytest.approx(0.138)
            and window.worker.tracker.params.lr == pytest.approx(0.348)
        ),
        timeout=10000,
    )
