"""Benchmark datasets as they ship: OTB, GOT-10k, LaSOT, TrackingNet, VOT and pysot's JSON files.

`load_dataset(path)` finds the sequences under `path` (a dataset root, one split, one class folder,
one sequence, or a pysot JSON annotation file) and returns them in the dataset's own order
(`list.txt` where the dataset has one, else sorted by name). What each layout looks like:

- OTB: <seq>/img/0001.jpg ..., <seq>/groundtruth_rect.txt (fields separated by commas, tabs or
  spaces; Jogging and Skating2 have groundtruth_rect.1.txt / .2.txt, two targets, each scored as
  its own sequence <seq>.1 and <seq>.2 as the OTB toolkit names them; pysot's JSON says
  Jogging-1). <seq>/groundtruth.txt is read the same way.
- GOT-10k: <split>/list.txt, <split>/<seq>/00000001.jpg ..., groundtruth.txt, absence.label
  (1 = absent), cover.label (0 = fully covered). The test split's groundtruth.txt has the first
  frame only: those sequences are run and their results written, but not scored.
- LaSOT: <class>/<class>-N/img/00000001.jpg ..., groundtruth.txt, full_occlusion.txt and
  out_of_view.txt (one line of 0/1 flags each).
- TrackingNet: <chunk>/frames/<seq>/0.jpg ..., <chunk>/anno/<seq>.txt; <chunk> is TRAIN_k or TEST,
  or the dataset root holding the chunks.
- VOT: list.txt, <seq>/sequence (key=value; channels.color gives the image pattern), color/ (or
  the images beside groundtruth.txt in the older releases), groundtruth.txt with rectangles
  (x,y,w,h) or polygons (x1,y1,...,x4,y4). Polygons are scored by their axis-aligned bounding
  rectangle (min/max of the corners), as ../shared/bench/bag's groundtruth.txt was made.
  VOT2020+ masks are refused with a message (no box to score).
- pysot JSON (OTB100.json, VOT2018.json, LaSOT.json, ...): {seq: {img_names, gt_rect, ...}} with
  image paths relative to the folder holding the JSON; an `absent` list there means *visible*
  (1) / absent (0), as pysot's LaSOT evaluation reads it.

Frames a dataset labels absent (GOT-10k absence / cover 0, LaSOT full occlusion or out of view,
pysot `absent` 0) get a NaN ground-truth row, so the OPE metrics leave them out as they leave
out unannotated frames; the labels themselves are kept in `DatasetSequence.absent` for the
long-term precision / recall / F-score (trackers/run/longterm.py).

A dataset is read, never trusted: a sequence name from list.txt, a VOT `sequence` file or a pysot
JSON key, and an image path from a JSON, must be a plain relative name (results are written by
sequence name; trackers/run/safe_output.py's `safe_relpath`), else one EvalError naming the file
and field. list.txt naming a sequence twice or none is an error; so is a box with a negative width
or height (it would otherwise count as "no ground truth" and be left out of the score).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re

import numpy as np

from ..run import groundtruth
from ..run.groundtruth import GroundTruthError, polygon_to_rect
from ..run.safe_output import UnsafePathError, safe_relpath
from ..run.sequences import EvalError, Sequence
from ..run.sources import IMAGE_EXTS, natural_key

LAYOUTS = ("otb", "got10k", "lasot", "trackingnet", "vot", "pysot-json")


@dataclasses.dataclass
class DatasetSequence(Sequence):
    layout: str = "otb"
    absent: np.ndarray | None = None  # (N,) bool where the dataset labels the target absent
    scored: bool = True  # False: ground truth for the first frame only (a test split)


# -- annotation files ----------------------------------------------------------------------------
def _numbers(line: str) -> list[float]:
    return [float(v) for v in re.split(r"[,\s]+", line.strip()) if v != ""]


def read_annotation(path: str) -> np.ndarray:
    """Boxes from a ground-truth file: x,y,w,h rectangles or x1,y1,...,xk,yk polygons per line,
    separated by commas, tabs or spaces; 'nan' / 'NaN' lines stay NaN rows."""
    rows = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if line.lstrip().startswith("m"):
                raise EvalError(
                    f"{path}:{lineno}: a VOT segmentation mask; only rectangles and polygons can be scored as boxes"
                )
            try:
                vals = _numbers(line)
            except ValueError:
                raise EvalError(f"{path}:{lineno}: not numbers: {line.strip()[:60]!r}") from None
            rows.append(_as_rect(vals, f"{path}:{lineno}"))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def _as_rect(vals, where: str) -> tuple:
    if len(vals) == 4:
        if vals[2] < 0 or vals[3] < 0:  # NaN compares False: an absent frame stays absent
            raise EvalError(f"{where}: a box with a negative width or height ({', '.join(f'{v:g}' for v in vals)})")
        return tuple(vals)
    if len(vals) >= 6 and len(vals) % 2 == 0:
        return polygon_to_rect(vals)
    if len(vals) == 1 and vals[0] != vals[0]:  # a lone 'nan' (target absent)
        return (np.nan,) * 4
    raise EvalError(f"{where}: expected x,y,w,h or a polygon, got {len(vals)} numbers")


def read_flags(path: str) -> np.ndarray:
    """The ground-truth reader's 0/1 labels (trackers/run/groundtruth.py), a bad file reported as
    every loader's errors are (EvalError)."""
    try:
        return groundtruth.read_flags(path)
    except GroundTruthError as e:
        raise EvalError(str(e)) from None


def _images(folder: str) -> list[str]:
    try:
        names = [f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS)]
    except OSError:
        return []
    return [os.path.join(folder, f) for f in sorted(names, key=natural_key)]


def sequence_name(name, where: str) -> str:
    """A sequence name read from a file: results are written by it, so it must be a plain relative
    name (trackers/run/safe_output.py's rule); else one EvalError naming the file and field."""
    try:
        return safe_relpath(name, f"{where}: sequence name")
    except UnsafePathError as e:
        raise EvalError(str(e)) from None


def _read_list(path: str) -> list[str]:
    """The names in a list.txt, each checked; a name given twice or an empty list is an error."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise EvalError(f"cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    names, seen = [], {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        name = sequence_name(line.strip(), f"{path}, line {number}")
        if name in seen:
            raise EvalError(
                f"{path}: sequence {name!r} is listed twice (lines {seen[name]} and {number}); "
                "each sequence would be run and scored twice"
            )
        seen[name] = number
        names.append(name)
    if not names:
        raise EvalError(f"{path} lists no sequences")
    return names


# -- one sequence ---------------------------------------------------------------------------------
def make_sequence(
    name: str,
    frames: list[str],
    gt: np.ndarray,
    layout: str,
    absent: np.ndarray | None = None,
    max_frames: int | None = None,
) -> DatasetSequence:
    """Check frames against ground truth, blank the frames labelled absent, truncate."""
    if not frames:
        raise EvalError(f"sequence {name!r}: no images")
    scored = True
    if len(gt) == 1 and len(frames) > 1:
        # GOT-10k / TrackingNet test splits give the first box only: run, write, don't score
        gt = np.vstack([gt, np.full((len(frames) - 1, 4), np.nan)])
        scored = False
    if len(frames) != len(gt):
        hint = (
            " (OTB sequences whose annotation starts later than img/, such as David or BlurCar1, are read "
            "with pysot's OTB100.json, which lists each one's frames)"
            if layout == "otb"
            else ""
        )
        raise EvalError(f"sequence {name!r}: {len(frames)} images but {len(gt)} ground-truth lines{hint}")
    if absent is not None:
        if len(absent) != len(frames):
            raise EvalError(f"sequence {name!r}: {len(absent)} absence labels for {len(frames)} frames")
        absent = np.asarray(absent, dtype=bool)
        gt = gt.copy()
        gt[absent] = np.nan
    if max_frames:
        frames, gt = frames[:max_frames], gt[:max_frames]
        absent = absent[:max_frames] if absent is not None else None
    from ..run import metrics as M

    if not M.valid_frames(gt).any():
        raise EvalError(f"sequence {name!r} has no frame with a ground-truth box")
    return DatasetSequence(name, frames, gt, layout=layout, absent=absent, scored=scored)


def _otb_gt_files(path: str) -> list[str]:
    names = sorted(f for f in os.listdir(path) if re.fullmatch(r"groundtruth_rect(\.\d+)?\.txt", f))
    if not names and os.path.isfile(os.path.join(path, "groundtruth.txt")):
        names = ["groundtruth.txt"]
    return [os.path.join(path, n) for n in names]


def _kind(path: str) -> str | None:
    """Which layout the folder `path` is one sequence of, or None."""
    if not os.path.isdir(path):
        return None
    has = lambda f: os.path.exists(os.path.join(path, f))  # noqa: E731
    if has("sequence") or (has("color") and has("groundtruth.txt")):
        return "vot"
    if has("img") and (has("full_occlusion.txt") or has("out_of_view.txt")) and has("groundtruth.txt"):
        return "lasot"
    if has("img") and _otb_gt_files(path):
        return "otb"
    if has("groundtruth.txt") and _images(path):
        # GOT-10k (and the VOT releases before the `sequence` file): images beside groundtruth.txt
        return "got10k"
    return None


def _load_otb(path: str, max_frames) -> list[DatasetSequence]:
    frames = _images(os.path.join(path, "img"))
    base = os.path.basename(os.path.normpath(path))
    files = _otb_gt_files(path)
    out = []
    for gt_file in files:
        m = re.fullmatch(r"groundtruth_rect\.(\d+)\.txt", os.path.basename(gt_file))
        name = f"{base}.{m.group(1)}" if m and len(files) > 1 else base  # the OTB toolkit's Jogging.1
        out.append(make_sequence(name, frames, read_annotation(gt_file), "otb", max_frames=max_frames))
    return out


def _load_got10k(path: str, max_frames) -> DatasetSequence:
    name = os.path.basename(os.path.normpath(path))
    gt = read_annotation(os.path.join(path, "groundtruth.txt"))
    frames = _images(path)
    absent = None
    for label, absent_when in (("absence.label", 1), ("cover.label", 0)):  # cover 0: fully covered
        p = os.path.join(path, label)
        if os.path.isfile(p):
            flags = read_flags(p)
            if len(flags) != len(frames):
                raise EvalError(f"sequence {name!r}: {len(flags)} labels in {label} for {len(frames)} frames")
            absent = (flags == absent_when) if absent is None else (absent | (flags == absent_when))
    return make_sequence(name, frames, gt, "got10k", absent, max_frames)


def _load_lasot(path: str, max_frames) -> DatasetSequence:
    gt = read_annotation(os.path.join(path, "groundtruth.txt"))
    frames = _images(os.path.join(path, "img"))
    absent = np.zeros(len(frames), dtype=bool)
    for label in ("full_occlusion.txt", "out_of_view.txt"):
        p = os.path.join(path, label)
        if os.path.isfile(p):
            flags = read_flags(p)
            if len(flags) != len(frames):
                raise EvalError(
                    f"sequence {os.path.basename(path)!r}: {len(flags)} flags in {label} for {len(frames)} frames"
                )
            absent |= flags == 1
    return make_sequence(os.path.basename(os.path.normpath(path)), frames, gt, "lasot", absent, max_frames)


def _read_vot_sequence_file(path: str) -> dict:
    meta = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.partition("=")
            if sep:
                meta[key.strip()] = value.strip()
    return meta


def _load_vot(path: str, max_frames) -> DatasetSequence:
    name = os.path.basename(os.path.normpath(path))
    frames = []
    meta_file = os.path.join(path, "sequence")
    if os.path.isfile(meta_file):
        meta = _read_vot_sequence_file(meta_file)
        name = sequence_name(meta.get("name", name), f"{meta_file}: name")
        pattern = meta.get("channels.color") or meta.get("channel.color")
        if pattern:
            # "color/%08d.jpg": numbered from 1 until the first missing file
            i = 1
            while os.path.isfile(os.path.join(path, pattern % i)):
                frames.append(os.path.join(path, pattern % i))
                i += 1
    if not frames:
        frames = _images(os.path.join(path, "color")) or _images(path)
    gt = read_annotation(os.path.join(path, "groundtruth.txt"))
    return make_sequence(name, frames, gt, "vot", max_frames=max_frames)


_LOADERS = {"got10k": _load_got10k, "lasot": _load_lasot, "vot": _load_vot}


def _load_dir(path: str, kind: str, max_frames) -> list[DatasetSequence]:
    if kind == "otb":
        return _load_otb(path, max_frames)
    return [_LOADERS[kind](path, max_frames)]


def _trackingnet_chunks(path: str) -> list[str]:
    def is_chunk(p):
        return os.path.isdir(os.path.join(p, "frames")) and os.path.isdir(os.path.join(p, "anno"))

    if is_chunk(path):
        return [path]
    try:
        subs = sorted(os.path.join(path, d) for d in os.listdir(path))
    except OSError:
        return []
    return [p for p in subs if is_chunk(p)]


def _load_trackingnet(chunks: list[str], max_frames) -> list[DatasetSequence]:
    out = []
    for chunk in chunks:
        anno = os.path.join(chunk, "anno")
        for f in sorted(os.listdir(anno), key=natural_key):
            if not f.endswith(".txt"):
                continue
            name = sequence_name(f[:-4], anno)
            frames = _images(os.path.join(chunk, "frames", name))
            out.append(
                make_sequence(
                    name, frames, read_annotation(os.path.join(anno, f)), "trackingnet", max_frames=max_frames
                )
            )
    return out


def load_pysot_json(path: str, max_frames: int | None = None) -> list[DatasetSequence]:
    """pysot's annotation file: {seq: {"img_names": [...], "gt_rect": [[...], ...], "absent": [...]}}
    with image paths relative to the JSON's folder."""
    root = os.path.dirname(os.path.abspath(path))
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise EvalError(f"cannot read pysot annotation file {path!r}: {e}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise EvalError(f"{path!r} is not a pysot annotation file ({{sequence: {{img_names, gt_rect}}}})")
    out = []
    for name in sorted(data):
        entry = data[name]
        sequence_name(name, f"{path!r}")
        where = f"{path!r}: sequence {name!r}"
        if "img_names" not in entry or "gt_rect" not in entry:
            raise EvalError(f"{where} lacks img_names or gt_rect")
        frames = [
            os.path.join(root, _image_name(p, f"{where}: img_names[{i}]"))
            for i, p in enumerate(_json_list(entry["img_names"], f"{where}: img_names"))
        ]
        missing = next((p for p in frames if not os.path.isfile(p)), None)
        if missing:
            raise EvalError(
                f"{where}: image {missing!r} does not exist (image paths are read relative to the JSON's folder)"
            )
        rects = [
            _json_rect(r, f"{where}: gt_rect[{i}]")
            for i, r in enumerate(_json_list(entry["gt_rect"], f"{where}: gt_rect"))
        ]
        gt = np.asarray(rects, dtype=np.float64).reshape(-1, 4)
        absent = None
        if entry.get("absent"):
            flags = _json_list(entry["absent"], f"{where}: absent")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flags):
                raise EvalError(f"{where}: absent must be a list of 0/1 numbers")
            absent = np.asarray(flags, dtype=np.float64) == 0  # pysot: 1 = visible
        out.append(make_sequence(name, frames, gt, "pysot-json", absent, max_frames))
    return out


def _json_list(value, where: str) -> list:
    if not isinstance(value, list):
        raise EvalError(f"{where} is {type(value).__name__}, expected a list")
    return value


def _image_name(value, where: str) -> str:
    try:
        return safe_relpath(value, where)
    except UnsafePathError as e:
        raise EvalError(str(e)) from None


def _json_rect(r, where: str) -> tuple:
    """One gt_rect row of a pysot JSON: [] or null (no box), [x, y, w, h] or a polygon, numbers only."""
    if r is None or r == []:
        return (np.nan,) * 4
    if not isinstance(r, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r):
        shown = json.dumps(r)[:60] if not isinstance(r, float) else repr(r)
        raise EvalError(f"{where} is {shown}, expected a list of numbers [x, y, w, h] or a polygon")
    return _as_rect([float(v) for v in r], where)


# -- a dataset ------------------------------------------------------------------------------------
def load_dataset(path: str, max_frames: int | None = None) -> list[DatasetSequence]:
    """Every sequence under `path` (see the module docstring for the layouts read)."""
    if os.path.isfile(path) and path.lower().endswith(".json"):
        return load_pysot_json(path, max_frames)
    if not os.path.isdir(path):
        raise EvalError(f"benchmark folder {path!r} does not exist")
    kind = _kind(path)
    if kind:
        return _load_dir(path, kind, max_frames)
    chunks = _trackingnet_chunks(path)
    if chunks:
        return _load_trackingnet(chunks, max_frames)
    listed = os.path.join(path, "list.txt")
    if os.path.exists(listed):
        # GOT-10k and VOT: list.txt gives the sequences and their order
        names = _read_list(listed)
        bad = [n for n in names if not _kind(os.path.join(path, n))]
        if bad:
            raise EvalError(f"{listed} names {len(bad)} sequence(s) not found as folders, e.g. {bad[0]!r}")
        return [s for n in names for s in _load_dir(os.path.join(path, n), _kind(os.path.join(path, n)), max_frames)]
    out = []
    for d in sorted(os.listdir(path), key=natural_key):
        sub = os.path.join(path, d)
        kind = _kind(sub)
        if kind:
            out += _load_dir(sub, kind, max_frames)
        elif os.path.isdir(sub):
            # LaSOT: <class>/<class>-N
            for dd in sorted(os.listdir(sub), key=natural_key):
                kind = _kind(os.path.join(sub, dd))
                if kind:
                    out += _load_dir(os.path.join(sub, dd), kind, max_frames)
    if not out:
        raise EvalError(
            f"no sequences in {path!r} (expected an OTB, GOT-10k, LaSOT, TrackingNet or VOT layout, "
            f"or a pysot JSON annotation file)"
        )
    names = [s.name for s in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup:
        raise EvalError(f"two sequences are named {dup!r} under {path!r}: results are written by sequence name")
    return out
