"""Every SiamScope tracker inside the official VOT toolkit, over the TraX protocol.

- `python main.py vot-setup WORKSPACE [--trackers a,b] [--sequences DIR]` writes a VOT workspace:
  config.yaml, a one-pass stack (stack.yaml: the `unsupervised` experiment, average accuracy),
  trackers.ini with one `siamscope-<name>` entry per tracker (toolkit_id), and sequences/ converted from any
  layout `eval` reads (trackers/tools/datasets.py) into the VOT layout (list.txt, <seq>/sequence,
  color/%08d.jpg, groundtruth.txt). The toolkit then needs no network: the workspace holds its
  sequences and its stack names no dataset to download.
- `python main.py vot-serve TRACKER` is what trackers.ini runs: our TraX server loop on the `trax`
  package's Python server (PyPI vot-trax; the `vot` extra). It takes rectangles or polygons (a
  polygon initialises the tracker with its bounding rectangle) and image paths, and answers each
  frame with the tracker's rectangle and its confidence.

The toolkit itself (PyPI vot-toolkit 0.9.0) is not a dependency: it pulls opencv-python, which
writes the same cv2/ package as our opencv-contrib-python, so it lives in a venv of its own
(tests/test_vot_toolkit.py makes one). Pins and why: attributee==0.1.9 (0.1.10 fails on import on
Python 3.11); only the one-pass (unsupervised) experiment, because 0.9.0's reset-based
(supervised) and multi-start experiments fail with TraX trackers.

The toolkit scores rectangles by rasterising them (coordinates rounded, pixels counted, clipped to
the image), so `vot_overlaps` (continuous IoU of the rounded rectangles clipped to the image) is
the same number, and `toolkit_accuracy` the same average accuracy, computed by us.
"""

from __future__ import annotations

import os
import shutil
import sys

import numpy as np

from ..core.paths import REPO_ROOT
from ..run import metrics as M

TRACKER_PREFIX = "siamscope-"


def toolkit_id(name: str) -> str:
    """The tracker's identifier in trackers.ini: siamscope-<name> (siamscope-default stays as it is)."""
    return name if name.startswith(TRACKER_PREFIX) else TRACKER_PREFIX + name


STACK_YAML = """title: SiamScope one-pass stack (local sequences)
experiments:
  baseline:
    type: unsupervised
    analyses:
      - type: average_accuracy
        name: accuracy
        burnin: 1
"""


# -- the TraX server ------------------------------------------------------------------------------
def _rect_of(region) -> tuple[float, float, float, float]:
    from trax.region import Polygon, Rectangle

    if isinstance(region, Rectangle):
        return tuple(float(v) for v in region.bounds())
    if isinstance(region, Polygon):
        pts = [region.get(i) for i in range(region.size())]
        xs, ys = [p[0] for p in pts], [p[1] for p in pts]
        return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))
    raise VotServeError(f"region of type {getattr(region, 'type', '?')} is not supported (rectangles and polygons are)")


class VotServeError(Exception):
    """What a TraX client sent that cannot be tracked, in one line: the server says it and exits 1."""


def check_region(box) -> tuple[float, float, float, float]:
    """An INITIALIZE region as a rectangle of four finite numbers with a positive width and height."""
    import math

    try:
        vals = tuple(float(v) for v in box)
    except (TypeError, ValueError):
        vals = ()
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals) or vals[2] <= 0 or vals[3] <= 0:
        shown = ",".join(f"{v:g}" for v in vals) if vals else repr(box)[:80]
        raise VotServeError(
            f"initialize region ({shown}) is not a rectangle of finite numbers with a positive width and height"
        )
    return vals


def read_frame(path) -> np.ndarray:
    """The colour image a request names (a path; anything else is refused)."""
    import cv2

    if not isinstance(path, str) or not path or "\0" in path:
        raise VotServeError(f"the request's image is not a file path: {str(path)[:80]!r}")
    frame = cv2.imread(path, cv2.IMREAD_COLOR)
    if frame is None:
        raise VotServeError(f"cannot read image {path!r}")
    return frame


class TraxSteps:
    """The requests' meaning, apart from the protocol (testable where the trax package is absent):
    initialize(path, region) and frame(path) each return (rectangle, confidence); a frame before
    initialize, a region that is not a finite rectangle, an unreadable image or a box the tracker
    refuses raise VotServeError."""

    def __init__(self, tracker):
        from ..run.session import Track

        self.tracker = tracker
        # the toolkit pushes the frames: the session's per-frame step, numbered here, no source
        self.track = Track(tracker)
        self.index = 0
        self.initialized = False

    def initialize(self, path, region) -> tuple[tuple, float]:
        from ..core.base import BoxError

        box = check_region(region)
        frame = read_frame(path)
        try:
            self.track.init(frame, 0, box)
        except (BoxError, ValueError) as e:
            raise VotServeError(f"cannot start on region {box}: {' '.join(str(e).split())}") from None
        self.index = 0
        self.initialized = True
        return box, 1.0

    def frame(self, path) -> tuple[tuple, float]:
        if not self.initialized:
            raise VotServeError("a frame came before initialize")
        self.index += 1
        step = self.track.step(read_frame(path), self.index, keep_box=False)  # nothing seeks back
        return tuple(float(v) for v in step.box), step.score


def serve(tracker_name: str, weights: str | None = None, device: str = "cpu", threads: int = 1) -> int:
    """The TraX loop: handshake, then INITIALIZE / FRAME requests until QUIT. Anything else (bytes
    that are not TraX, a NaN region, a frame before initialize, an unreadable image) ends the
    session with one line on stderr (stdout is the protocol's) and exit status 1, no traceback."""
    try:
        from trax import Image, Region, TraxStatus
        from trax.server import Server
    except ImportError:
        from .usage import UsageError

        raise UsageError("vot-serve needs the trax package (PyPI vot-trax: pip install -e '.[vot]')") from None

    from ..core import registry
    from .eval_jobs import set_threads

    # TraX talks over this process's stdin/stdout: anything printed must go to stderr
    stdout, sys.stdout = sys.stdout, sys.stderr
    set_threads(threads)
    steps = TraxSteps(registry.build(tracker_name, weights, device))
    try:
        with Server(
            [Region.RECTANGLE, Region.POLYGON],
            [Image.PATH],
            tracker_name=toolkit_id(tracker_name),
            tracker_family="SiamScope",
        ) as server:
            while True:
                try:
                    request = server.wait()
                except Exception as e:  # noqa: BLE001 - trax raises TraxException on bytes that are not TraX
                    raise VotServeError(
                        f"the client sent something that is not a TraX request "
                        f"({' '.join(str(e).split())[:120] or type(e).__name__})"
                    ) from None
                if request.type == TraxStatus.QUIT:
                    break
                if request.type == TraxStatus.INITIALIZE:
                    if not request.objects:
                        raise VotServeError("initialize came with no region")
                    region, _props = request.objects[0]
                    box, confidence = steps.initialize(_image_path(request), _rect_of(region))
                elif request.type == TraxStatus.FRAME:
                    box, confidence = steps.frame(_image_path(request))
                else:
                    raise VotServeError(f"unexpected TraX request {request.type!r}")
                from trax.region import Rectangle

                server.status([(Rectangle.create(*box), {})], {"confidence": confidence})
    except VotServeError as e:
        print(f"error: vot-serve: {e}", file=sys.stderr, flush=True)
        return 1
    except Exception as e:  # noqa: BLE001 - the toolkit reads one line, not a traceback, whatever broke
        print(f"error: vot-serve: {type(e).__name__}: {' '.join(str(e).split())[:200]}", file=sys.stderr, flush=True)
        return 1
    finally:
        sys.stdout = stdout
    return 0


def _image_path(request):
    try:
        return request.image["color"].path()
    except Exception:  # noqa: BLE001 - no colour channel, or not a path image
        raise VotServeError("the request's image is not a colour image path") from None


# -- the workspace --------------------------------------------------------------------------------
def _place(src: str, dst: str) -> None:
    """A hard link where the file system allows one (a dataset is not copied twice), else a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _rect_line(box) -> str:
    # VOT writes an unannotated frame as NaNs; a rectangle as x,y,w,h
    return ",".join("nan" if v != v else f"{v:.4f}".rstrip("0").rstrip(".") for v in box)


def write_vot_sequence(seq, folder: str) -> None:
    from ..run.safe_output import atomic_write, inside

    color = os.path.join(folder, "color")
    os.makedirs(color, exist_ok=True)
    ext = os.path.splitext(seq.frames[0])[1].lower() or ".jpg"
    for i, src in enumerate(seq.frames, 1):
        dst = os.path.join(color, f"{i:08d}{ext}")
        if not os.path.lexists(dst):  # a link already there (even a dangling one) is never written through
            _place(src, dst)
    import cv2

    h, w = cv2.imread(seq.frames[0], cv2.IMREAD_COLOR).shape[:2]
    # replaced, never written through an existing file: a hard link there is the dataset's own file
    with atomic_write(inside(folder, "sequence", "sequence file")) as f:
        f.write(
            f"channels.color=color/%08d{ext}\nformat=default\nfps=30\nname={seq.name}\n"
            f"width={w}\nheight={h}\nlength={len(seq.frames)}\n"
        )
    with atomic_write(inside(folder, "groundtruth.txt", "ground-truth file")) as f:
        f.writelines(_rect_line(b) + "\n" for b in seq.gt)


def tracker_entry(name: str, weights: str | None, python: str = sys.executable) -> str:
    cmd = f"{python} {os.path.join(REPO_ROOT, 'main.py')} vot-serve {name}"
    if weights:
        cmd += f" --weights {weights}"
    env = [REPO_ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    lines = [
        f"[{toolkit_id(name)}]",
        f"label = SiamScope {name}",
        "protocol = trax",
        f"command = {cmd}",
        f"env_PYTHONPATH = {os.pathsep.join(env)}",
    ]
    if os.environ.get("SIAMSCOPE_MODELS"):
        lines.append(f"env_SIAMSCOPE_MODELS = {os.environ['SIAMSCOPE_MODELS']}")
    return "\n".join(lines) + "\n"


def _overlaps(a: str, b: str) -> bool:
    """Whether folder a is folder b, inside it, or holds it (links followed)."""
    a, b = os.path.realpath(a), os.path.realpath(b)
    return os.path.commonpath([a, b]) in (a, b)


def check_workspace(workspace: str, read_from: str, sequences) -> None:
    """vot-setup never writes into what it reads: UsageError when the workspace (its files and its
    sequences/ folder) is, holds or lies in the dataset folder or a sequence's frames folder (the
    toolkit's own layout, WS/sequences, is a dataset vot-setup would overwrite), or when a sequence
    name would lead out of WS/sequences."""
    from ..run.safe_output import UnsafePathError, safe_relpath
    from .usage import UsageError

    dataset = read_from if os.path.isdir(read_from) else os.path.dirname(os.path.abspath(read_from))
    inputs = [dataset] + sorted({os.path.dirname(os.path.abspath(s.frames[0])) for s in sequences if s.frames})
    seq_root = os.path.join(workspace, "sequences")
    for folder in inputs:
        # WS/sequences is, holds or lies in it; or the workspace is it or lies in it (WS/*.yaml)
        ws, read = os.path.realpath(workspace), os.path.realpath(folder)
        if _overlaps(seq_root, folder) or os.path.commonpath([ws, read]) == read:
            raise UsageError(
                f"the workspace must not be the sequences folder nor overlap it: vot-setup reads "
                f"{folder!r} and would write into it (workspace {workspace!r}, sequences written to "
                f"{seq_root!r}); give a workspace outside the dataset"
            )
    # every file written, checked before the first is: a link planted in the workspace leads none out
    written = [(workspace, n) for n in ("config.yaml", "stack.yaml", "trackers.ini", "sequences/list.txt")]
    for seq in sequences:
        written += [(seq_root, seq.name)] + [(seq_root, f"{seq.name}/{n}") for n in ("sequence", "groundtruth.txt")]
    try:
        for folder, name in written:
            safe_relpath(
                name,
                "sequence name" if name.count("/") == 0 and folder == seq_root else "workspace file",
                folder if os.path.isdir(folder) else None,
            )
    except UnsafePathError as e:
        raise UsageError(str(e)) from None


def setup_workspace(workspace: str, trackers: dict[str, str | None], sequences) -> list[str]:
    """Write (or refresh) the workspace; returns the toolkit's tracker identifiers."""
    from ..run.safe_output import atomic_write, inside

    os.makedirs(workspace, exist_ok=True)
    # a link planted in a workspace (one made elsewhere, unpacked here) never leads a write out of it
    with atomic_write(inside(workspace, "config.yaml", "workspace file")) as f:
        f.write("registry:\n- ./trackers.ini\nstack: stack.yaml\nsequences: sequences\n")
    with atomic_write(inside(workspace, "stack.yaml", "workspace file")) as f:
        f.write(STACK_YAML)
    with atomic_write(inside(workspace, "trackers.ini", "workspace file")) as f:
        f.write("\n".join(tracker_entry(n, w) for n, w in trackers.items()))
    seq_root = os.path.join(workspace, "sequences")
    os.makedirs(seq_root, exist_ok=True)
    for seq in sequences:
        write_vot_sequence(seq, inside(seq_root, seq.name, "sequence name"))
    with atomic_write(inside(seq_root, "list.txt", "workspace file")) as f:
        f.writelines(s.name + "\n" for s in sequences)
    return [toolkit_id(n) for n in trackers]


# -- the toolkit's numbers, computed by us --------------------------------------------------------
def read_vot_trajectory(path: str) -> list:
    """A VOT result file, text (one line per frame) or the toolkit's binary .bin (0.9: a '<hI'
    header, then per frame a type byte: 0 special code '<I', 1 rectangle '<ffff', 2 polygon).
    Returns one entry per frame: an (x,y,w,h) tuple, or the special code as an int (1 init,
    2 failure, 0 unknown)."""
    import struct

    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".bin"):
        version, n = struct.unpack_from("<hI", data, 0)
        off, out = struct.calcsize("<hI"), []
        for _ in range(n):
            kind = data[off]
            off += 1
            if kind == 0:
                out.append(struct.unpack_from("<I", data, off)[0])
                off += 4
            elif kind == 1:
                out.append(tuple(float(v) for v in struct.unpack_from("<ffff", data, off)))
                off += 16
            elif kind == 2:
                k = struct.unpack_from("<H", data, off)[0]
                vals = struct.unpack_from(f"<{2 * k}f", data, off + 2)
                out.append(_poly_rect(vals))
                off += 2 + 8 * k
            else:
                raise ValueError(f"{path}: region type {kind} (a mask) is not a rectangle")
        return out
    out = []
    for line in data.decode().splitlines():
        line = line.strip()
        if line:
            vals = [float(v) for v in line.replace("\t", ",").split(",") if v]
            out.append(int(vals[0]) if len(vals) == 1 else tuple(vals) if len(vals) == 4 else _poly_rect(vals))
    return out


def _poly_rect(vals):
    xs, ys = vals[0::2], vals[1::2]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def vot_overlaps(pred, gt, size) -> np.ndarray:
    """IoU as the VOT toolkit measures rectangles: each of x, y, w, h rounded (numpy's round),
    the rectangles clipped to the image (width, height), continuous IoU of what is left. Equals
    the toolkit's pixel count (a rounded rectangle covers exactly round(w) x round(h) pixels)."""
    w, h = size

    def clip(b):
        b = np.round(np.asarray(b, dtype=np.float64))
        x0, y0 = np.clip(b[:, 0], 0, w), np.clip(b[:, 1], 0, h)
        x1, y1 = np.clip(b[:, 0] + b[:, 2], 0, w), np.clip(b[:, 1] + b[:, 3], 0, h)
        return np.stack([x0, y0, x1 - x0, y1 - y0], axis=1)

    return M.iou(clip(pred), clip(gt))


def toolkit_accuracy(trajectories: dict[str, list], sequences, sizes: dict[str, tuple]) -> float:
    """The one-pass stack's `average_accuracy` (burnin 1, weighted by sequence length): per sequence
    the mean overlap over the frames after initialisation, then the frame-weighted mean."""
    total, frames = 0.0, 0
    for seq in sequences:
        traj = trajectories[seq.name]
        keep = [i for i, r in enumerate(traj) if not isinstance(r, int) and M.valid_frames(seq.gt[i : i + 1])[0]]
        pred = np.array([traj[i] for i in keep], dtype=np.float64).reshape(-1, 4)
        acc = float(np.mean(vot_overlaps(pred, seq.gt[keep], sizes[seq.name]))) if keep else 0.0
        total += acc * len(seq.frames)
        frames += len(seq.frames)
    return total / frames


# -- commands -------------------------------------------------------------------------------------
def cmd_vot_setup(args) -> int:
    from ..core import registry
    from .datasets import load_dataset
    from .evaluate import EvalError, parse_weights, require_dataset_folder
    from .usage import UsageError

    require_dataset_folder(args.sequences, "vot-setup WORKSPACE --sequences DIR")
    names = [n.strip() for n in args.trackers.split(",") if n.strip()]
    weights = parse_weights(args.weights)
    trackers = {}
    for n in names:
        spec = registry.get(n)
        registry.build(n, weights.get(n), "cpu")  # a missing checkpoint is said now, not by the toolkit
        trackers[n] = weights.get(n) or (registry.find_weights(spec) if spec.needs_weights else None)
    try:
        sequences = load_dataset(args.sequences, args.max_frames)
    except EvalError as e:
        raise UsageError(str(e)) from None
    check_workspace(args.workspace, args.sequences, sequences)
    ids = setup_workspace(args.workspace, trackers, sequences)
    print(f"VOT workspace {args.workspace}: {len(sequences)} sequences, trackers {', '.join(ids)}")
    print(
        f"run: vot evaluate --workspace {args.workspace} {' '.join(ids)} && "
        f"vot analysis --workspace {args.workspace} {' '.join(ids)}"
    )
    return 0


def cmd_vot_serve(args) -> int:
    return serve(args.tracker, args.weights, args.device, args.threads)


def add_parser(subparsers) -> None:
    from .evaluate import DEFAULT_FOLDER

    p = subparsers.add_parser(
        "vot-setup",
        help="write a VOT toolkit workspace (one-pass stack, trackers.ini, sequences converted from a local dataset)",
    )
    p.add_argument("workspace", help="the workspace folder (created; refreshed when it exists)")
    p.add_argument("--trackers", default="siamscope-default", help="comma-separated tracker names")
    p.add_argument("--weights", action="append", metavar="NAME=PATH", help="checkpoint for one tracker (repeatable)")
    p.add_argument(
        "--sequences",
        default=DEFAULT_FOLDER,
        help=f"a dataset `eval` reads, converted to VOT's layout (default {DEFAULT_FOLDER})",
    )
    p.add_argument("--max-frames", type=int, help="only the first N frames of each sequence")
    p.set_defaults(func=cmd_vot_setup)
    s = subparsers.add_parser("vot-serve", help="a tracker as a TraX server (what the VOT toolkit runs)")
    s.add_argument("tracker")
    s.add_argument("--weights")
    s.add_argument("--device", default="cpu")
    s.add_argument("--threads", type=int, default=1)
    s.set_defaults(func=cmd_vot_serve)
