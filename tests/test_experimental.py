"""Issue 22.6: a tracker trained and shipped here that has not beaten the training-free floor on the
SRE validation table is labelled experimental, with its figure, in `trackers`, in `zoo` and in the
window's tracker picker (TrackerSpec.experimental and .note)."""

from types import SimpleNamespace

from trackers.core import registry
from trackers.tools.cli import main

TRAINED_HERE = ("siamscope-effnet", "siamattn")


def test_trained_trackers_carry_their_figure_and_the_default_does_not():
    for name in TRAINED_HERE:
        spec = registry.get(name)
        assert spec.experimental and "effnet-siamfc-floor" in spec.note and "SRE" in spec.note, spec.note
        assert registry.experimental_label(registry.get(name)).startswith("experimental: ")
    for name in ("siamscope-default", "nanotrack-v2", "effnet-siamfc-floor", "csrt"):
        assert not registry.get(name).experimental and registry.experimental_label(registry.get(name)) == ""


def test_trackers_and_zoo_commands_show_it(capsys):
    assert main(["trackers"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    for name in TRAINED_HERE:
        assert f"[experimental: {registry.get(name).note}]" in lines[name], lines[name]
    assert "experimental" not in lines["siamscope-default"]
    assert main(["zoo"]) == 0
    zoo = [line for line in capsys.readouterr().out.splitlines() if " siamattn " in f" {line} "]
    assert zoo and all("[experimental: " in line for line in zoo), zoo


def test_picker_marks_it():
    from app.tracker_bar import TrackerBar

    bar = SimpleNamespace(prefs=SimpleNamespace(known_weights=lambda spec: "somewhere.pth"))
    effnet = TrackerBar._tracker_label(bar, registry.get("siamscope-effnet"))
    assert effnet == registry.get("siamscope-effnet").title + "  — experimental"
    assert TrackerBar._tracker_label(bar, registry.get("siamscope-default")) == registry.get("siamscope-default").title
