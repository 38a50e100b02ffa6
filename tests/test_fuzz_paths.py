"""Property-based fuzzing (hypothesis) of what SiamScope reads from users and files: box strings,
frame ranges, ground-truth lines, model-zoo manifest entries, dataset lists and names. The
property each time: the input is accepted, or refused with the module's own one-line error --
never another exception (a traceback) -- and nothing is written outside the destination.

Derandomized (the same examples every run: CI is not flaky) and bounded: the whole file runs in
well under a minute on the 2-core machine."""

import json
import math
import os
import tempfile

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402

# hypothesis keeps a folder of its own (.hypothesis/): a throw-away one, never in the checkout
set_hypothesis_home_dir(tempfile.mkdtemp(prefix="siamscope-hypothesis-"))

from tests.test_zoo_hostile import tree as _tree  # noqa: E402
from trackers.core.base import BoxError, InvalidRequest, validate_box  # noqa: E402
from trackers.run.frame_range import parse_frame_range  # noqa: E402
from trackers.run.groundtruth import GroundTruthError, read_groundtruth  # noqa: E402
from trackers.run.safe_output import UnsafePathError, safe_relpath  # noqa: E402
from trackers.run.sequences import EvalError  # noqa: E402
from trackers.tools import eval_results  # noqa: E402
from trackers.tools.cli import parse_box  # noqa: E402
from trackers.tools.datasets import load_dataset, read_annotation  # noqa: E402

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FILES = settings(FUZZ, max_examples=40)

#: the characters that make paths and numbers interesting
TRICKY = "./\\:~-_ \t,;eE+-nNaAiIfF0123456789\x00\n\r\u00e9\u202e"
names = st.one_of(
    st.text(alphabet=TRICKY, max_size=12),
    st.sampled_from(
        [
            "..",
            ".",
            "../x",
            "/etc/passwd",
            "a/../../b",
            "C:x",
            "a\\b",
            "",
            " ",
            "seq",
            "a/b",
            "a//b",
            "x" * 300,
            "\udcff",
            "~",
            "~root/x",
            "nul",
            "con",
        ]
    ),
    st.text(max_size=20),
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20))


# -- user input: boxes and frame ranges ----------------------------------------------------------------
@FUZZ
@given(
    st.one_of(
        st.text(alphabet=TRICKY, max_size=40),
        st.lists(numbers, max_size=6).map(lambda v: ",".join(str(x) for x in v)),
        st.text(max_size=30),
    )
)
def test_any_box_string_is_a_box_or_one_usage_error(text):
    try:
        box = parse_box(text)
    except InvalidRequest as e:  # tools.usage.UsageError is one
        assert "\n" not in str(e).strip()
        return
    assert len(box) == 4 and all(isinstance(v, float) for v in box)
    try:
        validate_box(box, (480, 640, 3))
    except BoxError as e:
        assert "\n" not in str(e).strip()
        return
    assert all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0


@FUZZ
@given(
    st.one_of(st.none(), st.integers(-(10**6), 10**6)),
    st.one_of(st.none(), st.text(alphabet="0123456789:-+ _x", max_size=12), st.text(max_size=10)),
)
def test_any_frame_range_is_a_range_or_one_usage_error(start, frames):
    try:
        first, end = parse_frame_range(start, frames)
    except InvalidRequest as e:  # tools.usage.UsageError is one
        assert "\n" not in str(e).strip()
        return
    assert first >= 0 and (end is None or end > first + 1)


# -- names from files: the one rule ---------------------------------------------------------------------
@FUZZ
@given(names)
def test_safe_relpath_accepts_only_names_that_stay_inside(name):
    root = os.path.realpath(tempfile.gettempdir())
    try:
        clean = safe_relpath(name, "field", root)
    except UnsafePathError as e:
        text = str(e)
        assert text.startswith("field ") and "\n" not in text
        return
    target = os.path.realpath(os.path.join(root, clean))
    assert target != root and os.path.commonpath([root, target]) == root
    assert not os.path.isabs(clean) and ".." not in clean.split("/")


@FUZZ
@given(names, names, st.sampled_from(eval_results.FORMATS))
def test_result_paths_stay_inside_the_results_folder(tracker, seq, fmt):
    root = os.path.join(os.path.realpath(tempfile.gettempdir()), "siamscope-fuzz-results")
    try:
        paths = eval_results.paths(root, fmt, tracker, seq)
    except EvalError as e:
        assert "\n" not in str(e)
        return
    for p in paths.values():
        assert os.path.commonpath([root, os.path.realpath(p)]) == root


# -- ground-truth lines ------------------------------------------------------------------------------------
gt_line = st.one_of(
    st.lists(numbers, min_size=0, max_size=9).map(lambda v: ",".join(str(x) for x in v)),
    st.lists(numbers, min_size=4, max_size=4).map(lambda v: "\t".join(str(x) for x in v)),
    st.text(alphabet=TRICKY + "m", max_size=30),
    st.sampled_from(["nan", "NaN,NaN,NaN,NaN", "", "   ", "m1,2,3", "1,2,-3,4", "0,0,0,0", "1e400,1,1,1"]),
)


@FILES
@given(st.lists(gt_line, min_size=0, max_size=8))
def test_any_ground_truth_file_is_boxes_or_one_error_naming_the_file(lines):
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "groundtruth.txt")
        with open(path, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(lines) + "\n")
        try:
            gt = read_groundtruth(path)
        except GroundTruthError as e:
            assert path in str(e) and "\n" not in str(e)
        else:
            assert gt.boxes.shape[1] == 4
            ok = gt.boxes[~(gt.boxes != gt.boxes).any(axis=1)]
            assert (ok[:, 2:] >= 0).all()  # a negative size is never silently "no box"
        try:
            boxes = read_annotation(path)
        except EvalError as e:
            assert path in str(e) and "\n" not in str(e)
        else:
            assert boxes.ndim == 2 and boxes.shape[1] == 4


# -- manifest entries ---------------------------------------------------------------------------------------
entry_values = {
    "name": st.one_of(st.text(max_size=8), numbers, st.none()),
    "tracker": st.one_of(st.just("none"), numbers, st.none()),
    "file": st.one_of(names, numbers, st.none(), st.lists(st.text(max_size=3), max_size=2)),
    "url": st.one_of(
        st.none(),
        st.sampled_from(
            [
                "http://127.0.0.1:9/x.pth",
                "https://127.0.0.1:9/x",
                "file:///etc/passwd",
                "data:,x",
                "ftp://127.0.0.1/x",
                "http://",
                "",
                "127.0.0.1:9/x",
            ]
        ),
        numbers,
    ),
    "page": st.one_of(st.just(""), numbers),
    "source": st.just(""),
    "licence": st.one_of(st.just("MIT"), st.none()),
    "sha256": st.one_of(st.none(), st.text(alphabet="0123456789abcdef", min_size=63, max_size=65), numbers),
    "size": st.one_of(st.none(), st.integers(-5, 10), st.booleans(), st.text(max_size=3)),
    "bundled": st.one_of(st.booleans(), names),
}
#: mostly well-formed entries whose `file` and `url` are hostile (they reach download()), and
#: entries with any field missing or of any type
plain_files = st.from_regex(r"[a-z]{1,5}(/[a-z]{1,5})?\.pth", fullmatch=True)
wellformed = st.fixed_dictionaries(
    {
        "name": st.text(min_size=1, max_size=6),
        "tracker": st.just("none"),
        "file": st.one_of(names, plain_files, plain_files),
        "url": st.sampled_from(
            ["http://127.0.0.1:9/x.pth", "file:///etc/passwd", "data:,x", "http://127.0.0.1:9/../../x"]
        ),
        "page": st.just(""),
        "source": st.just(""),
        "licence": st.just("MIT"),
    },
    optional={"bundled": entry_values["bundled"], "size": entry_values["size"]},
)
entries = st.one_of(wellformed, st.fixed_dictionaries({}, optional=entry_values))


downloads = []


@settings(FILES, max_examples=80)
@given(
    st.one_of(
        st.lists(wellformed, min_size=1, max_size=2).map(lambda es: {"checkpoints": es}),
        st.lists(entries, max_size=3).map(lambda es: {"checkpoints": es}),
        st.sampled_from([[], None, 5, "x", {"checkpoints": None}, {"checkpoints": [None]}]),
    )
)
def test_any_manifest_is_entries_or_one_error_and_never_writes_outside(data):
    from trackers.run import zoo

    with tempfile.TemporaryDirectory() as sandbox:
        manifest = os.path.join(sandbox, "zoo.json")
        with open(manifest, "w") as f:
            json.dump(data, f)
        models = os.path.join(sandbox, "models")
        os.mkdir(models)
        before = _tree(sandbox)
        try:
            loaded = zoo.load_manifest(manifest)
        except zoo.ManifestError as e:
            assert manifest in str(e) and "\n" not in str(e)
            return
        downloads.append(len(loaded))
        for entry in loaded:
            try:
                # the port is closed: the download fails at once, after every check on the path
                zoo.download(entry, models, timeout=2, force=True)
            except zoo.DownloadError as e:
                assert "\n" not in str(e)
        after = _tree(sandbox)
        assert {p for p in after if after[p] != before.get(p)} <= {p for p in after if p.startswith("models")}


def test_the_manifest_fuzz_reached_the_downloader():
    # the property above is only worth something if accepted entries were tried (run after it)
    assert sum(downloads) >= 10, downloads


# -- dataset lists -------------------------------------------------------------------------------------------
@FILES
@given(st.lists(st.one_of(names, st.sampled_from(["a", "b", "a", "a/", "./a"])), max_size=6))
def test_any_list_txt_is_sequences_or_one_error(listed):
    import cv2
    import numpy as np

    with tempfile.TemporaryDirectory() as root:
        for n in ("a", "b"):
            os.makedirs(os.path.join(root, n))
            for i in range(3):
                cv2.imwrite(os.path.join(root, n, f"{i + 1:08d}.jpg"), np.zeros((8, 8, 3), np.uint8))
            with open(os.path.join(root, n, "groundtruth.txt"), "w") as f:
                f.write("1,1,3,3\n" * 3)
        with open(os.path.join(root, "list.txt"), "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write("\n".join(listed) + "\n")
        before = _tree(root)
        try:
            seqs = load_dataset(root)
        except EvalError as e:
            assert "\n" not in str(e)
        else:
            got = [s.name for s in seqs]
            assert got and len(set(got)) == len(got) and set(got) <= {"a", "b"}
        assert _tree(root) == before
