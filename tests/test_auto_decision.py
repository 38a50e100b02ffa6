"""`auto`'s engine decision (trackers/core/engines.py) stands up to load: the median of paired
ratios decides, a decision taken on an oversubscribed machine is measured again once the machine is
quieter, and decisions of the earlier probe or for other session options are not reused.
No timing is asserted: the machine's load is set through `load_per_core`, the timings are what the
probe measured, whatever they are."""

import json

import pytest

from tests.conftest import shared_path

NAME = "nanotrack-v2"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("SIAMSCOPE_CACHE", str(folder))
    return folder


def build(engine="auto"):
    from trackers.core import registry

    return registry.build(NAME, shared_path("models", "nanotrack", "nanotrackv2.pth"), engine=engine)


def stored(cache) -> dict:
    return json.loads((cache / "auto_engine.json").read_text())


def key_of(tracker) -> str:
    from trackers.core import compute, engines

    z, x = tracker.engine_shapes()
    return engines.decision_key(tracker.network, z, x, tracker.engine_track_kwargs(), compute.current())


def test_the_median_of_paired_ratios_decides():
    from trackers.core.engines import AUTO_MARGIN, choose_engine

    # one round spoilt by a burst of load on the torch call does not hand ONNX Runtime the decision
    assert choose_engine([0.9, 0.95, 6.0, 0.97, 1.0]) == "torch"
    # nor one spoilt on the ONNX Runtime call hand it to torch
    assert choose_engine([1.6, 1.7, 0.2, 1.65, 1.5]) == "onnxruntime"
    assert choose_engine([AUTO_MARGIN] * 3) == "torch"  # a tie keeps the eager reference engine
    assert choose_engine([1.0, 1.2]) == "onnxruntime"  # even count: the mean of the middle two


@pytest.fixture
def probes(monkeypatch):
    """How many times `auto` measured the engines (the real probe runs; only counted)."""
    from trackers.core import engines

    count = []
    real = engines.probe

    def counted(*args, **kwargs):
        count.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(engines, "probe", counted)
    return count


def test_a_decision_taken_under_load_is_measured_again_when_the_machine_is_quieter(cache, monkeypatch, probes):
    from trackers.core import engines

    monkeypatch.setattr(engines, "load_per_core", lambda: 3.0)
    first = build()
    key = key_of(first)
    decision = stored(cache)[key]
    assert len(probes) == 1, "measured once, then the decision is reused"
    assert decision["method"] == engines.DECISION_METHOD and decision["load_per_core"] == 3.0
    assert len(decision["ratios"]) == engines.PROBE_RUNS and decision["engine"] == first.engine_name
    # still loaded: the provisional decision is used (no probe on every build of a busy machine)
    assert build().engine_probe.get("cached") and len(probes) == 1
    # quieter now: measured again, and the new decision is no longer provisional
    monkeypatch.setattr(engines, "load_per_core", lambda: 0.4)
    build()
    assert len(probes) == 2 and stored(cache)[key]["load_per_core"] == 0.4
    assert build().engine_probe.get("cached") and len(probes) == 2
    # loaded again: a decision taken on a quiet machine stands
    monkeypatch.setattr(engines, "load_per_core", lambda: 3.0)
    assert build().engine_probe.get("cached") and len(probes) == 2


def test_a_decision_of_the_earlier_probe_is_not_reused(cache, monkeypatch, probes):
    from trackers.core import engines

    monkeypatch.setattr(engines, "load_per_core", lambda: 0.5)
    tracker = build("torch")
    key = key_of(tracker)
    cache.mkdir(mode=0o700, exist_ok=True)
    # what the fastest-call probe cached (no method, no load): 'torch', as it did for SiamMask under load
    old = {"engine": "torch", "torch_ms": 1.0, "onnxruntime_ms": 1.2, "threads": 1}
    (cache / "auto_engine.json").write_text(json.dumps({key: old}))
    del probes[:]
    build()
    assert len(probes) == 1
    assert stored(cache)[key]["method"] == engines.DECISION_METHOD
    assert len(stored(cache)[key]["ratios"]) == engines.PROBE_RUNS


def test_the_decision_key_names_threads_and_session_options(monkeypatch):
    from trackers.core import compute, engines

    tracker = build("torch")
    z, x = tracker.engine_shapes()
    args = (tracker.network, z, x, tracker.engine_track_kwargs())
    one, two = engines.decision_key(*args, compute.decide(1)), engines.decision_key(*args, compute.decide(2))
    assert one != two and "threads=1" in one
    real = compute.ort_session_options

    def without_mem_pattern(policy=None):
        opts = real(policy)
        opts.enable_mem_pattern = False
        return opts

    monkeypatch.setattr(compute, "ort_session_options", without_mem_pattern)
    assert engines.decision_key(*args, compute.decide(1)) != one
