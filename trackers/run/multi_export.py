"""What a run with several tracks writes: MOTChallenge CSV, one OTB text file per track, JSON with
each track's states and re-initialisations, and the frames annotated with every box, id and colour.

Every file goes through trackers/run/safe_output.py (checked before work, written to a temporary
file and renamed). MOTChallenge lines are `frame,id,x,y,w,h,conf,-1,-1,-1` with frames 1-based, as
that format says (the JSON and the OTB files keep the run's 0-based frame indices).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

import cv2
import numpy as np

from ..core.base import TrackResult
from .results import write_otb
from .safe_output import RESULT_EXTS, atomic_write, check_output


def write_mot(path: str, tracks) -> None:
    """One line per track and frame, by frame then id; the init frames' confidence is 1."""
    rows = []
    for t in tracks:
        for i, row in t.record.rows.items():
            rows.append((i + 1, t.id, *row.box, row.score))
    rows.sort(key=lambda r: (r[0], r[1]))
    with atomic_write(path) as f:
        for frame, tid, x, y, w, h, conf in rows:
            f.write(f"{frame},{tid},{x:.2f},{y:.2f},{w:.2f},{h:.2f},{conf:.4f},-1,-1,-1\n")


def read_mot(path: str) -> dict[int, dict[int, tuple]]:
    """A MOTChallenge file -> id -> {frame (1-based): (x, y, w, h, conf)}."""
    out: dict[int, dict[int, tuple]] = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            vals = line.split(",")
            if len(vals) < 7:
                raise ValueError(f"{path}:{n}: a MOTChallenge line has at least 7 fields, got {len(vals)}")
            frame, tid = int(float(vals[0])), int(float(vals[1]))
            out.setdefault(tid, {})[frame] = tuple(float(v) for v in vals[2:7])
    return out


def track_file_name(base: str, label: str) -> str:
    """`result.txt` + label `2` -> `result.2.txt` (OTB's groundtruth_rect.2.txt convention). The label
    comes from a track name: anything but letters, digits, '-', '_' and '.' becomes '_', so it never
    leads the write out of the folder."""
    stem, ext = os.path.splitext(base)
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", str(label)).strip(".") or "track"
    return f"{stem}.{safe}{ext}"


def check_track_outputs(base: str, labels: Iterable[str], inputs, what: str = "--out") -> list[str]:
    """The per-track file names of `base`, each checked before any work (safe_output.check_output)."""
    paths = [track_file_name(base, label) for label in labels]
    if len(set(paths)) != len(paths):
        raise ValueError(f"{what}: two tracks would write the same file; give them distinct names")
    for p in paths:
        check_output(p, RESULT_EXTS, inputs, what=what)
    return paths


def write_track_files(paths: list[str], tracks) -> None:
    """One OTB text file per track: its boxes from its start (the first line is its init box)."""
    for path, t in zip(paths, tracks):
        write_otb(path, list(t.boxes.values()))


def write_multi_json(path: str, tracks, source: str = "", extra: dict | None = None) -> None:
    data = dict(source=source, format="siamscope-tracks-1", **(extra or {}))
    data["tracks"] = [
        dict(
            id=t.id,
            name=t.name,
            tracker=t.tracker_name,
            colour_bgr=list(t.colour),
            start=t.start,
            params=t.record.params,
            reinitialisations=t.reinitialisations,
            frames=[
                dict(
                    frame=r.frame, box=[round(v, 4) for v in r.box], score=round(r.score, 6), state=r.state, init=r.init
                )
                for r in t.record.rows.values()
            ],
        )
        for t in tracks
    ]
    with atomic_write(path) as f:
        json.dump(data, f, indent=1)


def _dashed_rect(img: np.ndarray, p0, p1, colour, thickness: int, dash: int = 8) -> None:
    (x0, y0), (x1, y1) = p0, p1
    for a, b in (((x0, y0), (x1, y0)), ((x1, y0), (x1, y1)), ((x1, y1), (x0, y1)), ((x0, y1), (x0, y0))):
        length = int(max(abs(b[0] - a[0]), abs(b[1] - a[1])))
        for s in range(0, length, 2 * dash):
            e = min(s + dash, length)
            pa = (int(a[0] + (b[0] - a[0]) * s / max(length, 1)), int(a[1] + (b[1] - a[1]) * s / max(length, 1)))
            pb = (int(a[0] + (b[0] - a[0]) * e / max(length, 1)), int(a[1] + (b[1] - a[1]) * e / max(length, 1)))
            cv2.line(img, pa, pb, colour, thickness, cv2.LINE_AA)


def draw_tracks(
    frame: np.ndarray, tracks, results: dict[int, TrackResult], frame_index: int | None = None, thickness: int = 2
) -> np.ndarray:
    """A copy of `frame` with each track's box in its colour (dashed for an A/B pair's B), labelled
    with its id and name, its score, and LOST where the tracker says so."""
    out = frame.copy()
    for t in tracks:
        r = results.get(t.id)
        if r is None:
            continue
        x, y, w, h = r.box
        p0, p1 = (int(round(x)), int(round(y))), (int(round(x + w)), int(round(y + h)))
        if t.style == "dashed":
            _dashed_rect(out, p0, p1, t.colour, thickness)
        else:
            cv2.rectangle(out, p0, p1, t.colour, thickness)
        label = f"{t.id} {t.name}" if t.name != str(t.id) else f"{t.id}"
        label += f" {r.score:.2f}" + ("" if r.state.value == "tracking" else f" {r.state.value.upper()}")
        ty = p0[1] - 6 if p0[1] > 18 else p1[1] + 16
        cv2.putText(out, label, (p0[0], ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, label, (p0[0], ty), cv2.FONT_HERSHEY_SIMPLEX, 0.5, t.colour, 1, cv2.LINE_AA)
    if frame_index is not None:
        cv2.putText(out, f"#{frame_index}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, f"#{frame_index}", (8, 22), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1, cv2.LINE_AA)
    return out
