"""Synthetic tracking sequences with exact ground truth, written in OTB layout (img/ + groundtruth.txt)
so `python main.py eval FOLDER` scores trackers on them: a held-out check made from
../shared/data only (the benchmark stays untouched while the training is steered).

Each sequence: consecutive frames of a real training video; a real object patch (see
`pairs.Sampler.patch`) drifts with a smooth random velocity, grows / shrinks, turns a little and
changes lighting; two distractor patches (one cut from the same image, so it looks alike) wander
nearby; an occluder crosses the target half-way. The box is the pasted mask's bounding box.
"""

from __future__ import annotations

import math
import os

import cv2
import numpy as np

from ..run.sequences import write_sequence
from .pairs import TRAIN_VIDEOS, Library, PairConfig, Sampler, _limit_size


def _consecutive_frames(path: str, start: int, n: int) -> list[np.ndarray]:
    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, start)
    frames = []
    while len(frames) < n:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(_limit_size(f, 800))
    cap.release()
    return frames


def make_sequence(sampler: Sampler, video: str, n_frames: int):
    """(frames, gt (N, 4) x, y, w, h)."""
    rng = sampler.rng
    cap = cv2.VideoCapture(video)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    frames = _consecutive_frames(video, int(rng.integers(0, max(1, total - n_frames))), n_frames)
    H, W = frames[0].shape[:2]
    target = sampler.patch()
    src = sampler.lib.images[target.source] if target.source >= 0 else None
    others = [sampler.patch(src, target.source), sampler.patch()]
    side = math.exp(rng.uniform(math.log(0.12), math.log(0.3))) * min(W, H)
    ar = target.rgb.shape[1] / target.rgb.shape[0]
    size = np.array([side * math.sqrt(ar), side / math.sqrt(ar)])
    pos = np.array([rng.uniform(0.3, 0.7) * W, rng.uniform(0.3, 0.7) * H])
    vel = rng.normal(0, 0.02, 2) * side
    dpos = [pos + rng.uniform(-2, 2, 2) * size for _ in others]
    dvel = [rng.normal(0, 0.03, 2) * side for _ in others]
    occ = sampler.patch()
    occ_t = n_frames // 2
    gt = np.full((len(frames), 4), np.nan)
    scale_rate = rng.normal(0, 0.004)
    for t, frame in enumerate(frames):
        vel = 0.9 * vel + rng.normal(0, 0.01, 2) * side
        pos = pos + vel
        size = size * math.exp(scale_rate + rng.normal(0, 0.003))
        size = np.clip(size, 16, 0.6 * min(W, H))
        pos = np.clip(pos, size / 2 + 2, np.array([W, H]) - size / 2 - 2)
        for k, d in enumerate(others):
            dvel[k] = 0.9 * dvel[k] + rng.normal(0, 0.015, 2) * side
            dpos[k] = np.clip(dpos[k] + dvel[k], 0, [W, H])
            rgb, a = sampler._transform(d, size * 0.9, 0.0)
            sampler._paste(frame, rgb, a, *dpos[k])
        rgb, a = sampler._transform(target, size, 5 * math.sin(t / 15))
        gain = 1 + 0.2 * math.sin(t / 20)
        box = sampler._paste(frame, np.clip(rgb * gain, 0, 255).astype(np.uint8), a, *pos)
        if abs(t - occ_t) < n_frames // 8:
            ox = pos[0] + (t - occ_t) / (n_frames // 8) * size[0]
            o = cv2.resize(occ.rgb, (max(4, int(size[0] * 0.5)), max(4, int(size[1] * 1.2))))
            sampler._paste(frame, o, np.ones(o.shape[:2], np.float32), ox, pos[1])
        if box is not None:
            gt[t] = box
    return frames, gt


def write_sequences(data_dir: str, out_dir: str, count: int = 6, n_frames: int = 120, seed: int = 1000) -> list[str]:
    """Write `count` sequences to out_dir/synth_XX/ (OTB layout). Seed differs from training's."""
    lib = Library(data_dir, frames_per_video=4)
    sampler = Sampler(lib, PairConfig(), seed=seed)
    written = []
    for i in range(count):
        video = os.path.join(data_dir, "videos", TRAIN_VIDEOS[i % len(TRAIN_VIDEOS)])
        frames, gt = make_sequence(sampler, video, n_frames)
        seq = os.path.join(out_dir, f"synth_{i:02d}")
        write_sequence(seq, frames, gt, jpeg_quality=92)
        written.append(seq)
    return written
