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
from collections.abc import Iterable, Mapping

import cv2
import numpy as np

from ..core.base import TrackResult
from .results import RunRecord, write_csv, write_otb
from .safe_output import RESULT_EXTS, atomic_write, check_output
from .tracks import Track, colour_of


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


# -- a window run's tracks (File ▸ Export) ------------------------------------------------------------
def is_multi_track(results: Mapping[int, TrackResult | None]) -> bool:
    """True when a window run held several tracks on some frame (its results carry `extra['tracks']`)."""
    return any(r is not None and r.extra.get("tracks") for r in results.values())


def tracks_from_results(results: Mapping[int, TrackResult | None], record: RunRecord) -> list[Track]:
    """The tracks of a window run, rebuilt from its store's per-frame results (trackers/run/run_store.py).

    A frame of several targets carries each one's view in `extra['tracks']` (trackers/run/track_set.py;
    an init there is marked `extra['init']`); a frame of one target (before a second was added, after
    the others were removed or A/B was turned off) is target 1's, whose re-initialisations `record`
    marks. Each track's record carries the run's tracker, parameters and checkpoint when it is the
    run's tracker (B of an A/B pair is another: only its name)."""
    tracks: dict[int, Track] = {}

    def add(tid, name, tracker, colour, style, index, result, init, rename=True):
        t = tracks.get(tid)
        if t is None:
            own = tracker == record.tracker
            rec = RunRecord(
                tracker=tracker,
                params=dict(record.params) if own else {},
                checkpoint=record.checkpoint if own else None,
                checkpoint_sha256=record.checkpoint_sha256 if own else None,
                source=record.source,
                compute=dict(record.compute),
            )
            t = tracks[tid] = Track(tid, name, None, tuple(result.box), index, colour, rec, style=style)
        elif rename:
            t.name = name  # the name it had last (a user may rename a target while it runs)
        if init:
            t.record.add_init(index, result.box)
        else:
            t.record.add(index, result)

    for index in sorted(results):
        r = results[index]
        if r is None:
            continue
        views = r.extra.get("tracks")
        if views:
            for v in views:
                if v.result is not None:
                    init = bool(v.result.extra.get("init"))
                    add(v.id, v.name, v.tracker_name, v.colour, v.style, index, v.result, init)
        else:
            row = record.rows.get(index)
            add(1, "1", record.tracker, colour_of(1), "solid", index, r, row is not None and row.init, rename=False)
    return [tracks[k] for k in sorted(tracks)]


def track_labels(tracks) -> list[str]:
    """What names each track's file: its name (the tracker's in A/B, the target's otherwise, `1`, `2`
    ... unless renamed), with its id in front where two tracks share a name."""
    names = [str(t.name) for t in tracks]
    return [n if names.count(n) == 1 else f"{t.id}-{n}" for t, n in zip(tracks, names)]


def check_tracks_results(path: str, tracks, inputs) -> list[str]:
    """The files `write_tracks_results` will write, each checked before any work: `path` itself for
    JSON (every track in one file), else one file per track (`OUT.<label>.txt` / `.csv`)."""
    if os.path.splitext(path)[1].lower() == ".json":
        check_output(path, RESULT_EXTS, inputs, what="results file")
        return [path]
    return check_track_outputs(path, track_labels(tracks), inputs, what="results file")


def write_tracks_results(path: str, tracks, record: RunRecord, inputs=()) -> list[str]:
    """Every track's per-frame results, by extension: `.json` one file with every track (named, with
    the run's tracker, checkpoint and compute), `.txt` one OTB box file per track, `.csv` one CSV per
    track (the single-track CSV's columns). Returns the files written; OSError before any write for
    a path that must not be written (an input: the source, the checkpoint, the ground truth)."""
    paths = check_tracks_results(path, tracks, inputs)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".json":
        compare = [t.tracker_name for t in tracks] if any(t.style == "dashed" for t in tracks) else None
        extra = dict(
            tracker=record.tracker,
            checkpoint=record.checkpoint,
            checkpoint_sha256=record.checkpoint_sha256,
            compute=record.compute,
            labels=track_labels(tracks),
        )
        if compare:
            extra["compare"] = compare
        write_multi_json(path, tracks, source=record.source, extra=extra)
    elif ext == ".csv":
        for p, t in zip(paths, tracks):
            write_csv(p, t.record)
    else:
        write_track_files(paths, tracks)
    return paths
