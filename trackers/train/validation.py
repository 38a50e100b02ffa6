"""The validation set the default tracker is chosen on (issue 22.4): hand-labelled targets in the six
videos of ../shared/data/videos and synthetic sequences with exact ground truth built from the
photographs in ../shared/data/images. Written in OTB layout, so `python main.py eval OUT
--protocol sre` scores trackers on it. Nothing here is training data: the trainer never reads it,
and the labels live in tests/data/validation/ (not in the package, not in resources/).

    python -m trackers.train.validation OUT [--shared ../shared] [--only NAME,...] [--check DIR]

Labels (tests/data/validation/<video>-<target>.json):

    {"video": "bag.avi", "target": "bag", "how": "...",
     "keyframes": [[frame, x, y, w, h], [frame, null], ...],   # null: absent from that frame
     "clips": [[first, last], ...]}                              # each clip is one sequence

Between two present keyframes the box is interpolated linearly; a null keyframe marks the target
absent (out of view, covered, another shot) from that frame up to the next present keyframe, so
the last present frame before it carries a keyframe of its own. The keyframes were drawn by hand on
frames with a coordinate grid and checked on overlays (docs/validation.md says how each was made).

Synthetic sequences (exact ground truth: the box is where the patch was pasted): a photograph as
background seen through a slowly panning window, a patch cut from another photograph as target,
one sequence per difficulty: scale x4, shot cuts, absence then re-appearance elsewhere at 3x and at
1/3 the size, look-alikes, motion blur, low light.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import cv2
import numpy as np

LABELS_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests", "data", "validation"
)
DEFAULT_SHARED = os.path.join("..", "shared")


# -- labels ------------------------------------------------------------------------------------------
def load_labels(folder: str = LABELS_DIR) -> list[dict]:
    out = []
    for name in sorted(os.listdir(folder)):
        if name.endswith(".json"):
            with open(os.path.join(folder, name)) as f:
                lab = json.load(f)
            lab["name"] = name[:-5]
            out.append(lab)
    return out


def interpolate(keyframes, n_frames: int) -> np.ndarray:
    """(n_frames, 4) boxes from [[frame, x, y, w, h] | [frame, None]] keyframes: linear between
    present keyframes, NaN from a null keyframe to the next present one and outside the first /
    last keyframe."""
    gt = np.full((n_frames, 4), np.nan)
    kf = sorted((int(k[0]), None if k[1] is None else np.asarray(k[1:5], float)) for k in keyframes)
    for (f0, b0), (f1, b1) in zip(kf, kf[1:]):
        if b0 is None or f0 >= n_frames:
            continue
        if b1 is None:
            gt[f0] = b0
            continue
        for f in range(f0, min(f1, n_frames)):
            t = (f - f0) / (f1 - f0)
            gt[f] = (1 - t) * b0 + t * b1
    last_f, last_b = kf[-1]
    if last_b is not None and last_f < n_frames:
        gt[last_f] = last_b
    return gt


def read_video(path: str, last: int) -> list[np.ndarray]:
    """Frames 0..last of a video (as far as it decodes)."""
    cap = cv2.VideoCapture(path)
    frames = []
    while len(frames) <= last:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    cap.release()
    return frames


def write_labelled(label: dict, shared: str, out: str) -> list[str]:
    """Each clip of one labelled target as OUT/<video>-<target>-<first>/ (img/ + groundtruth.txt)."""
    from trackers.run.sequences import write_sequence

    last = max(c[1] for c in label["clips"])
    frames = read_video(os.path.join(shared, "data", "videos", label["video"]), last)
    gt = interpolate(label["keyframes"], len(frames))
    names = []
    for first, end in label["clips"]:
        end = min(end, len(frames) - 1)
        name = f"{label['name']}-{first:03d}"
        write_sequence(os.path.join(out, name), frames[first : end + 1], gt[first : end + 1])
        names.append(name)
    return names


# -- synthetic ---------------------------------------------------------------------------------------
W, H = 480, 360


def _image(shared: str, name: str) -> np.ndarray:
    img = cv2.imread(os.path.join(shared, "data", "images", name), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{name} not in {os.path.join(shared, 'data', 'images')}")
    return img


def _background(img: np.ndarray, t: int, n: int) -> np.ndarray:
    """A W x H window panning slowly across `img` (scaled so it is 1.3x the window)."""
    s = max(1.3 * W / img.shape[1], 1.3 * H / img.shape[0])
    big = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
    u = t / max(1, n - 1)
    x = int(round((big.shape[1] - W) * (0.5 + 0.5 * np.sin(2 * np.pi * u) * 0.8)))
    y = int(round((big.shape[0] - H) * u))
    return big[y : y + H, x : x + W].copy()


def _paste(frame: np.ndarray, patch: np.ndarray, box) -> tuple:
    """Paste `patch` resized to `box` (x, y, w, h, rounded to pixels); returns the box pasted,
    clipped to the frame (the exact ground truth)."""
    x, y, w, h = (int(round(v)) for v in box)
    w, h = max(2, w), max(2, h)
    p = cv2.resize(patch, (w, h), interpolation=cv2.INTER_AREA if w < patch.shape[1] else cv2.INTER_LINEAR)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(frame.shape[1], x + w), min(frame.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return (np.nan,) * 4
    frame[y0:y1, x0:x1] = p[y0 - y : y1 - y, x0 - x : x1 - x]
    return (float(x0), float(y0), float(x1 - x0), float(y1 - y0))


# (source image, crop x, y, w, h): the targets, cut from the OpenCV sample photographs
TARGETS = {
    "butterfly": ("butterfly.jpg", 150, 70, 200, 200),
    "fish": ("HappyFish.jpg", 40, 30, 180, 130),
    "orange": ("orange.jpg", 60, 60, 390, 390),
    "baboon": ("baboon.jpg", 100, 20, 310, 300),
    "squirrel": ("squirrel_cls.jpg", 120, 60, 300, 330),
}


def _target(shared: str, key: str) -> np.ndarray:
    name, x, y, w, h = TARGETS[key]
    return _image(shared, name)[y : y + h, x : x + w].copy()


def _path(t: int, n: int, x0, y0, x1, y1, wobble=20.0) -> tuple:
    u = t / max(1, n - 1)
    return (x0 + (x1 - x0) * u + wobble * np.sin(u * 5.0), y0 + (y1 - y0) * u + wobble * np.cos(u * 4.0))


def synth_scale(shared: str, n: int = 90):
    """The target grows from 40 to 160 px (x4) and back to 60 px while it drifts."""
    bg, patch = _image(shared, "home.jpg"), _target(shared, "butterfly")
    frames, gt = [], []
    for t in range(n):
        u = t / (n - 1)
        side = 40 * 4 ** min(1.0, u / 0.6) if u <= 0.6 else 160 - 100 * (u - 0.6) / 0.4
        cx, cy = _path(t, n, 150, 140, 330, 200)
        f = _background(bg, t, n)
        gt.append(_paste(f, patch, (cx - side / 2, cy - side / 2, side, side)))
        frames.append(f)
    return frames, np.asarray(gt)


def synth_shotcut(shared: str, n: int = 90):
    """Three shots on three backgrounds; at each cut the target jumps elsewhere and changes size
    (60 px, then 150 px at the other side, then 50 px)."""
    bgs = [_image(shared, "building.jpg"), _image(shared, "starry_night.jpg"), _image(shared, "board.jpg")]
    patch = _target(shared, "fish")
    frames, gt = [], []
    shots = [(0, 30, (100, 120), 60), (30, 60, (330, 200), 150), (60, n, (200, 260), 50)]
    for t in range(n):
        k = next(i for i, (a, b, _, _) in enumerate(shots) if a <= t < b)
        a, b, (cx, cy), side = shots[k]
        cx, cy = cx + 1.5 * (t - a), cy + 10 * np.sin((t - a) / 8)
        f = _background(bgs[k], t - a, b - a)
        gt.append(_paste(f, patch, (cx - side / 2, cy - side * 0.36, side, side * 0.72)))
        frames.append(f)
    return frames, np.asarray(gt)


REAPPEAR = (40, 60)  # synthetic re-appearance: absent from frame 40, back at 60


def _reappear(shared: str, n: int, ratio: float, bg_name: str, key: str):
    """Present 0-39 at 70 px on the left, absent 40-59 (background only), back at 60 on the right
    at `ratio` times the size."""
    bg, patch = _image(shared, bg_name), _target(shared, key)
    frames, gt = [], []
    for t in range(n):
        f = _background(bg, t, n)
        if t < REAPPEAR[0]:
            cx, cy = _path(t, REAPPEAR[0], 90, 120, 150, 170, 10)
            side = 70
        elif t < REAPPEAR[1]:
            frames.append(f)
            gt.append((np.nan,) * 4)
            continue
        else:
            cx, cy = _path(t - REAPPEAR[1], n - REAPPEAR[1], 370, 230, 320, 190, 10)
            side = 70 * ratio
        gt.append(_paste(f, patch, (cx - side / 2, cy - side / 2, side, side)))
        frames.append(f)
    return frames, np.asarray(gt)


def synth_reappear_big(shared: str, n: int = 90):
    return _reappear(shared, n, 3.0, "leuvenA.jpg", "orange")


def synth_reappear_small(shared: str, n: int = 90):
    return _reappear(shared, n, 1 / 3, "graf1.png", "baboon")


def synth_lookalike(shared: str, n: int = 90):
    """The target and two copies of the same patch (slightly recoloured) that cross its path."""
    bg, patch = _image(shared, "stuff.jpg"), _target(shared, "squirrel")
    twins = [np.clip(patch.astype(np.int16) + d, 0, 255).astype(np.uint8) for d in (12, -12)]
    frames, gt = [], []
    for t in range(n):
        f = _background(bg, t, n)
        u = t / (n - 1)
        for k, tw in enumerate(twins):  # the look-alikes first: the target passes over them
            dx = 380 - 300 * u if k == 0 else 120 + 260 * u
            _paste(f, tw, (dx - 35, 90 + 150 * k + 25 * np.sin(6 * u + k) - 38, 70, 77))
        cx, cy = 100 + 280 * u, 180 + 60 * np.sin(3 * u)
        gt.append(_paste(f, patch, (cx - 35, cy - 38, 70, 77)))
        frames.append(f)
    return frames, np.asarray(gt)


def synth_blur(shared: str, n: int = 90):
    """Fast motion (up to ~25 px a frame, back and forth) with the motion blur a camera gives it:
    the pasted target is smeared along its velocity."""
    bg, patch = _image(shared, "aero1.jpg"), _target(shared, "butterfly")
    frames, gt = [], []
    prev = None
    for t in range(n):
        f = _background(bg, t, n)
        cx, cy = 240 + 170 * np.sin(t / 9.0), 180 + 90 * np.sin(t / 13.0)
        box = (cx - 40, cy - 40, 80, 80)
        layer = np.zeros_like(f)
        mask = np.zeros(f.shape[:2], np.float32)
        b = _paste(layer, patch, box)
        mask[int(b[1]) : int(b[1] + b[3]), int(b[0]) : int(b[0] + b[2])] = 1
        layer = layer.astype(np.float32)
        if prev is not None:
            vx, vy = cx - prev[0], cy - prev[1]
            k = max(1, int(round(np.hypot(vx, vy))))
            kern = np.zeros((2 * k + 1, 2 * k + 1), np.float32)
            cv2.line(
                kern,
                (k - int(round(vx / 2)), k - int(round(vy / 2))),
                (k + int(round(vx / 2)), k + int(round(vy / 2))),
                1.0,
                1,
            )
            kern /= kern.sum()
            layer = cv2.filter2D(layer, -1, kern)
            mask = cv2.filter2D(mask, -1, kern)
        m = mask[..., None]
        f = f * (1 - m) + layer.astype(np.float32)  # the blurred layer is premultiplied by its mask
        frames.append(np.clip(f, 0, 255).astype(np.uint8))
        gt.append(b)
        prev = (cx, cy)
    return frames, np.asarray(gt)


def synth_lowlight(shared: str, n: int = 90):
    """The light fades to ~8% and comes back partly, with sensor noise: a dark, grainy target."""
    bg, patch = _image(shared, "fruits.jpg"), _target(shared, "fish")
    rng = np.random.default_rng(7)
    frames, gt = [], []
    for t in range(n):
        f = _background(bg, t, n)
        cx, cy = _path(t, n, 120, 250, 360, 120, 25)
        gt.append(_paste(f, patch, (cx - 50, cy - 36, 100, 72)))
        u = t / (n - 1)
        light = 1.0 - 0.92 * min(1.0, u / 0.5) if u < 0.75 else 0.08 + 0.3 * (u - 0.75) / 0.25
        g = f.astype(np.float32) * light + rng.normal(0, 4.0, f.shape)
        frames.append(np.clip(g, 0, 255).astype(np.uint8))
    return frames, np.asarray(gt)


SYNTHETIC = {
    "synth-scale4x": synth_scale,
    "synth-shotcut": synth_shotcut,
    "synth-reappear-3x": synth_reappear_big,
    "synth-reappear-third": synth_reappear_small,
    "synth-lookalike": synth_lookalike,
    "synth-blur": synth_blur,
    "synth-lowlight": synth_lowlight,
}


def write_synthetic(name: str, shared: str, out: str) -> str:
    from trackers.run.sequences import write_sequence

    frames, gt = SYNTHETIC[name](shared)
    write_sequence(os.path.join(out, name), frames, gt)
    return name


# -- checking by eye ---------------------------------------------------------------------------------
def contact_sheet(folder: str, out_png: str, every: int = 10, cols: int = 5, width: int = 240) -> None:
    """Every `every`-th frame of a written sequence with its ground-truth box drawn (green; 'absent'
    where NaN), tiled into one PNG, to look at."""
    from trackers.run.sequences import load_sequence

    seq = load_sequence(folder)
    tiles = []
    for i in range(0, len(seq.frames), every):
        img = cv2.imread(seq.frames[i])
        b = seq.gt[i]
        if np.isfinite(b).all():
            cv2.rectangle(img, (int(b[0]), int(b[1])), (int(b[0] + b[2]), int(b[1] + b[3])), (0, 255, 0), 2)
        else:
            cv2.putText(img, "absent", (10, 60), cv2.FONT_HERSHEY_SIMPLEX, 1.5, (0, 0, 255), 3)
        s = width / img.shape[1]
        img = cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        cv2.putText(img, f"#{i}", (4, img.shape[0] - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 255), 1)
        tiles.append(img)
    h = max(t.shape[0] for t in tiles)
    tiles = [cv2.copyMakeBorder(t, 0, h - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in tiles]
    tiles += [np.zeros_like(tiles[0])] * (-len(tiles) % cols)
    rows = [np.hstack(tiles[r : r + cols]) for r in range(0, len(tiles), cols)]
    cv2.imwrite(out_png, np.vstack(rows))


def write_validation(
    out: str, shared: str = DEFAULT_SHARED, only: list[str] | None = None, labels_dir: str = LABELS_DIR, log=print
) -> list[str]:
    if os.path.exists(out) and os.listdir(out):
        raise SystemExit(f"{out!r} exists and is not empty: give a new folder")
    names = []
    for lab in load_labels(labels_dir):
        if only and lab["name"] not in only:
            continue
        names += write_labelled(lab, shared, out)
        log(f"{lab['name']}: {len(lab['clips'])} clip(s)")
    for name in SYNTHETIC:
        if only and name not in only:
            continue
        names.append(write_synthetic(name, shared, out))
        log(f"{name}: written")
    return names


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m trackers.train.validation", description=__doc__.split("\n")[0])
    p.add_argument("out", help="a new folder for the sequences (OTB layout)")
    p.add_argument("--shared", default=DEFAULT_SHARED, help="the shared data folder (default ../shared)")
    p.add_argument("--only", help="comma-separated label / synthetic names")
    p.add_argument("--check", metavar="DIR", help="also write a contact sheet per sequence there, to look at")
    a = p.parse_args(argv)
    names = write_validation(a.out, a.shared, a.only.split(",") if a.only else None)
    if a.check:
        os.makedirs(a.check, exist_ok=True)
        for n in names:
            contact_sheet(os.path.join(a.out, n), os.path.join(a.check, f"{n}.png"))
    print(f"{len(names)} sequences written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
