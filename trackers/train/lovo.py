"""Pseudo-labelled sequences from ../shared/data/videos, for the leave-one-video-out table.

None of these videos has ground truth of its own, so each is labelled by a teacher tracker
(NanoTrack v3, Apache-2.0, ../shared/models/nanotrack) started from a box drawn by hand on the
first frame of every shot the target is in; frames of shots the target is not in are NaN (target
absent), so `eval` scores them with VOT-LT precision / recall / F as well as OTB's figures. NanoTrack
v2, shown in the table as the reference, shares v3's design: the labels favour it a little.

    python main.py train --write-lovo /tmp/lovo      # writes /tmp/lovo/<video>/img + groundtruth.txt
    python main.py eval /tmp/lovo --trackers siamscope-default,effnet-siamfc-floor,csrt,nanotrack-v2

The hand-drawn boxes (frame indices are 0-based decode order) and why a video is left out are in
`LOVO_SEQUENCES` / `LEFT_OUT`.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import cv2
import numpy as np

TEACHER = "nanotrack-v3"
TEACHER_WEIGHTS = os.path.join("models", "nanotrack", "nanotrackv3.pth")   # under ../shared


@dataclasses.dataclass
class Shot:
    first: int          # first frame of the shot the target is in (0-based)
    end: int            # one past its last frame
    box: tuple          # hand-drawn x, y, w, h on `first`


@dataclasses.dataclass
class LovoSequence:
    video: str
    frames: int                 # frames written (from frame 0)
    shots: list[Shot]           # where the target is; every other frame is absent (NaN)
    target: str


LOVO_SEQUENCES = [
    LovoSequence("Megamind.avi", 270, [Shot(1, 98, (205, 150, 145, 170)), Shot(154, 200, (225, 130, 145, 200))],
                 "the woman's face; frame 0 is black, shots 98-153 and 200-269 show the man (target absent)"),
    LovoSequence("bag.avi", 196, [Shot(0, 196, (292.23, 128.36, 145.96, 132.47))], "the plastic bag (VOT 'bag')"),
    LovoSequence("box.mp4", 456, [Shot(0, 456, (298, 15, 290, 228))], "the printed box held in a hand"),
    LovoSequence("cup.mp4", 217, [Shot(0, 217, (307, 124, 107, 259))], "the black tumbler"),
    LovoSequence("vtest.avi", 100, [Shot(0, 100, (640, 240, 46, 82))],
                 "the walker in black on the right, first 100 of 795 frames (the teacher's boxes were checked "
                 "by eye: after about frame 100 they switch between the people crossing by the lamp post)"),
]
LEFT_OUT = {"tree.avi": "no target stays in view (a still tree; a hand crosses for about 15 of its 68 "
                        "decodable frames)"}


def read_frames(path: str, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def pseudo_label(seq: LovoSequence, frames: list[np.ndarray], build_teacher) -> np.ndarray:
    gt = np.full((len(frames), 4), np.nan)
    for shot in seq.shots:
        teacher = build_teacher()
        teacher.init(frames[shot.first], shot.box)
        gt[shot.first] = shot.box
        for i in range(shot.first + 1, min(shot.end, len(frames))):
            gt[i] = teacher.track(frames[i]).box
    return gt


def write_lovo(data_dir: str, shared_dir: str, out_dir: str, only: Optional[list[str]] = None,
               log=print) -> list[str]:
    """Write every LOVO sequence (OTB layout + meta.json) under out_dir; returns the folders."""
    from trackers.core import registry
    weights = os.path.join(shared_dir, TEACHER_WEIGHTS)
    if not os.path.isfile(weights):
        raise FileNotFoundError(f"the teacher's weights {weights} are missing")
    if os.path.abspath(out_dir).startswith(os.path.abspath(data_dir)):
        raise ValueError("out_dir must not lie inside the data folder (outputs never go over inputs)")
    written = []
    for seq in LOVO_SEQUENCES:
        if only and seq.video not in only:
            continue
        frames = read_frames(os.path.join(data_dir, "videos", seq.video), seq.frames)
        gt = pseudo_label(seq, frames, lambda: registry.build(TEACHER, weights))
        name = os.path.splitext(seq.video)[0]
        d = os.path.join(out_dir, name)
        os.makedirs(os.path.join(d, "img"), exist_ok=True)
        for t, f in enumerate(frames):
            cv2.imwrite(os.path.join(d, "img", f"{t + 1:05d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, 95])
        with open(os.path.join(d, "groundtruth.txt"), "w") as fh:
            for b in gt:
                fh.write(",".join("NaN" if not np.isfinite(v) else f"{v:.2f}" for v in b) + "\n")
        with open(os.path.join(d, "meta.json"), "w") as fh:
            json.dump({"source": f"../shared/data/videos/{seq.video}, frames 0-{len(frames) - 1}",
                       "target": seq.target,
                       "annotation": f"pseudo-labels: {TEACHER} ({TEACHER_WEIGHTS}, Apache-2.0) started from the "
                                     "hand-drawn box of each shot; NaN where the target is not in the shot",
                       "shots": [dataclasses.asdict(s) for s in seq.shots]}, fh, indent=1)
        log(f"{d}: {len(frames)} frames, {int(np.isfinite(gt[:, 0]).sum())} with the target")
        written.append(d)
    return written
