"""Benchmark sequences as folders on disk: FOLDER/<seq>/img/*.jpg with FOLDER/<seq>/groundtruth.txt,
one 'x,y,w,h' line per frame, NaN where the target is absent. The frames are listed and read as the
app reads them (ImageFolderSource), so `eval`, training's calibration and the app play the same
frames in the same order. The dataset layouts `eval` also reads are trackers/tools/datasets.py's.
`write_sequence` writes one
(training's synthetic and leave-one-video-out sequences)."""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from . import metrics as M
from .results import read_boxes
from .sources import FrameSource, ImageFolderSource, SourceError


class EvalError(Exception):
    """A sequence or dataset that cannot be read or scored (named for `eval`, which reports it)."""


@dataclasses.dataclass
class Sequence:
    name: str
    frames: list[str]  # image paths, in the order the app plays them (natural sort)
    gt: np.ndarray  # (N, 4) x,y,w,h, NaN rows where the target is absent

    def source(self) -> FrameSource:
        """The frames as the app reads them (ImageFolderSource), in this sequence's order."""
        return ImageFolderSource(self.name, files=self.frames)


def _is_sequence(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "img")) and os.path.isfile(os.path.join(path, "groundtruth.txt"))


def load_sequence(path: str, max_frames: int | None = None) -> Sequence:
    try:
        frames = ImageFolderSource(path).files  # the app's frame order, so eval and the app agree
    except SourceError as e:
        raise EvalError(str(e)) from None
    gt = read_boxes(os.path.join(path, "groundtruth.txt"))
    name = os.path.basename(os.path.normpath(path))
    if len(frames) != len(gt):
        raise EvalError(f"sequence {name!r}: {len(frames)} images in img/ but {len(gt)} ground-truth lines")
    if max_frames:
        frames, gt = frames[:max_frames], gt[:max_frames]
    if not M.valid_frames(gt).any():
        raise EvalError(f"sequence {name!r} has no frame with a ground-truth box")
    return Sequence(name, frames, gt)


def find_sequences(folder: str, max_frames: int | None = None) -> list[Sequence]:
    """The sequences in `folder` (or `folder` itself when it is one sequence), sorted by name."""
    if not os.path.isdir(folder):
        raise EvalError(f"benchmark folder {folder!r} does not exist")
    if _is_sequence(folder):
        return [load_sequence(folder, max_frames)]
    paths = sorted(os.path.join(folder, d) for d in os.listdir(folder) if _is_sequence(os.path.join(folder, d)))
    if not paths:
        raise EvalError(f"no sequences in {folder!r} (expected <seq>/img/*.jpg and <seq>/groundtruth.txt)")
    return [load_sequence(p, max_frames) for p in paths]


def write_sequence(folder: str, frames, gt, jpeg_quality: int = 95) -> None:
    """`frames` as folder/img/00001.jpg... and `gt` ((N, 4) x, y, w, h) as folder/groundtruth.txt,
    NaN where the target is absent: the layout `load_sequence` reads."""
    import cv2

    os.makedirs(os.path.join(folder, "img"), exist_ok=True)
    for t, f in enumerate(frames):
        cv2.imwrite(os.path.join(folder, "img", f"{t + 1:05d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
    with open(os.path.join(folder, "groundtruth.txt"), "w") as fh:
        for b in gt:
            fh.write(",".join("NaN" if not np.isfinite(v) else f"{v:.2f}" for v in b) + "\n")
