"""Training pairs (template crop, search crop, target box in the search crop) with exact ground truth.

The only annotated tracking data here is the benchmark, which is for evaluation, so every pair is
made with a ground truth known by construction, from ../shared/data:

* composite pairs: a real object patch (a region of a still image or of another video's frame,
  cut out with a soft elliptical / rounded / rectangular mask so the network cannot simply look
  for a pasted rectangle) is pasted over two frames of a real video a few frames apart, moved,
  rescaled, stretched, rotated and re-lit between the two; other patches act as distractors
  (some cut from the same image, so they look alike: DaSiamRPN's semantic distractors) and
  occluders cover part of it. The box is the bounding box of the pasted mask: exact.
* still pairs: template and search cut from the same image or frame around one textured box,
  each with its own shift, scale, blur and colour (the static-image pairs of DaSiamRPN).
* negative pairs (DaSiamRPN): the search crop does not contain the template object; half of them
  show a look-alike cut from the same source image instead.

Then the SiamRPN++ sampling (design notes 001/002): the exemplar is cut around the target with the
tracker's context rule and a small jitter; the search crop is centred away from the target by a
uniform shift (the spatial-aware sampling: the target is not always in the centre, which keeps
the head from learning a centre bias) with scale jitter; blur and colour jitter on both.

bag.avi and cup.mp4 are the benchmark sequences (../shared/bench) as videos: they are left out.
"""

from __future__ import annotations

import dataclasses
import math
import os

import cv2
import numpy as np

from trackers.core.crop import get_subwindow

#: videos of ../shared/data/videos used for training; bag.avi / cup.mp4 are the benchmark's sequences
TRAIN_VIDEOS = ("Megamind.avi", "box.mp4", "tree.avi", "vtest.avi")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


@dataclasses.dataclass
class PairConfig:
    """Sampling hyper-parameters (crop pixels unless noted); defaults after pysot's SiamRPN++ config
    (TRAIN.DATASET.TEMPLATE/SEARCH SHIFT, SCALE, BLUR, COLOR, NEG)."""

    exemplar_size: int = 127
    instance_size: int = 255
    context_amount: float = 0.5
    template_shift: float = 4.0
    template_scale: float = 0.05
    search_shift: float = 64.0  # spatial-aware sampling range, each axis
    search_scale: float = 0.18
    blur: float = 0.2  # probability of blurring a crop
    gray: float = 0.05
    negative: float = 0.2  # fraction of negative pairs
    still: float = 0.25  # fraction of still-image pairs among the positives
    frame_gap: int = 30  # largest frame gap between template and search background (frames)
    max_distractors: int = 3
    occlusion: float = 0.3  # probability of an occluder over the target in the search frame


@dataclasses.dataclass
class Pair:
    template: np.ndarray  # (127, 127, 3) uint8 BGR
    search: np.ndarray  # (255, 255, 3) uint8 BGR
    box: np.ndarray  # (4,) cx, cy, w, h in search-crop pixels relative to its centre
    positive: bool


class Library:
    """Frames and images read once from the data folder."""

    def __init__(self, data_dir: str, frames_per_video: int = 120, videos=TRAIN_VIDEOS):
        self.videos: list[list[np.ndarray]] = []
        self.video_names: list[str] = []
        for name in videos:
            path = os.path.join(data_dir, "videos", name)
            if os.path.isfile(path):
                frames = read_frames(path, frames_per_video)
                if len(frames) >= 2:
                    self.videos.append(frames)
                    self.video_names.append(name)
        self.images: list[np.ndarray] = []
        self.image_names: list[str] = []
        img_dir = os.path.join(data_dir, "images")
        for name in sorted(os.listdir(img_dir)) if os.path.isdir(img_dir) else []:
            if name.lower().endswith(IMAGE_EXTS):
                img = cv2.imread(os.path.join(img_dir, name), cv2.IMREAD_COLOR)
                if img is not None and min(img.shape[:2]) >= 64:
                    self.images.append(_limit_size(img, 800))
                    self.image_names.append(name)
        if not self.videos or not self.images:
            raise FileNotFoundError(f"training data needs videos ({', '.join(videos)}) and images in {data_dir}")

    def describe(self) -> dict:
        return {"videos": {n: len(f) for n, f in zip(self.video_names, self.videos)}, "images": list(self.image_names)}


def read_frames(path: str, count: int) -> list[np.ndarray]:
    """Up to `count` frames, consecutive in steps that spread them over the whole video."""
    cap = cv2.VideoCapture(path)
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or 0
    step = max(1, total // count) if total else 1
    frames, i = [], 0
    while len(frames) < count:
        ok, frame = cap.read()
        if not ok:
            break
        if i % step == 0:
            frames.append(_limit_size(frame, 800))
        i += 1
    cap.release()
    return frames


def _limit_size(img: np.ndarray, side: int) -> np.ndarray:
    s = side / max(img.shape[:2])
    return cv2.resize(img, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else img


# -- object patches -----------------------------------------------------------------------------
def textured_box(rng: np.random.Generator, img: np.ndarray, min_frac=0.08, max_frac=0.5, tries=6):
    """A random box (x, y, w, h) of the image, the most textured of a few draws (an empty patch of
    sky or wall is no trackable object)."""
    H, W = img.shape[:2]
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    best, best_e = None, -1.0
    for _ in range(tries):
        area = rng.uniform(min_frac, max_frac) ** 2 * W * H
        aspect = math.exp(rng.uniform(-1.0, 1.0))
        w = int(np.clip(math.sqrt(area * aspect), 12, W - 2))
        h = int(np.clip(math.sqrt(area / aspect), 12, H - 2))
        x = int(rng.integers(0, W - w + 1))
        y = int(rng.integers(0, H - h + 1))
        e = float(cv2.meanStdDev(gray[y : y + h, x : x + w])[1][0, 0])
        if e > best_e:
            best, best_e = (x, y, w, h), e
    return best


def object_mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """float32 (h, w) alpha: ellipse, rounded rectangle or rectangle, with a soft edge."""
    kind = rng.integers(3)
    m = np.zeros((h, w), np.uint8)
    if kind == 0:
        cv2.ellipse(m, (w // 2, h // 2), (max(1, w // 2 - 1), max(1, h // 2 - 1)), 0, 0, 360, 255, -1)
    elif kind == 1:
        r = int(min(w, h) * rng.uniform(0.15, 0.4))
        cv2.rectangle(m, (r, 0), (w - 1 - r, h - 1), 255, -1)
        cv2.rectangle(m, (0, r), (w - 1, h - 1 - r), 255, -1)
        for cx, cy in ((r, r), (w - 1 - r, r), (r, h - 1 - r), (w - 1 - r, h - 1 - r)):
            cv2.circle(m, (cx, cy), r, 255, -1)
    else:
        m[:] = 255
    a = m.astype(np.float32) / 255.0
    return cv2.GaussianBlur(a, (0, 0), 1.0)


@dataclasses.dataclass
class Patch:
    rgb: np.ndarray  # (h, w, 3) uint8
    alpha: np.ndarray  # (h, w) float32
    source: int  # index of the source image (for look-alike distractors), -1 for video frames


class Sampler:
    """Makes `Pair`s from a Library, reproducibly from one seed."""

    def __init__(self, library: Library, config: PairConfig = PairConfig(), seed: int = 0):
        self.lib = library
        self.cfg = config
        self.rng = np.random.default_rng(seed)

    # -- sources ----------------------------------------------------------------------------
    def _source_image(self):
        """(image, index): a still image (index >= 0) or a video frame (-1)."""
        if self.rng.random() < 0.7:
            i = int(self.rng.integers(len(self.lib.images)))
            return self.lib.images[i], i
        frames = self.lib.videos[int(self.rng.integers(len(self.lib.videos)))]
        return frames[int(self.rng.integers(len(frames)))], -1

    def patch(self, image: np.ndarray | None = None, source: int = -1) -> Patch:
        if image is None:
            image, source = self._source_image()
        x, y, w, h = textured_box(self.rng, image)
        return Patch(image[y : y + h, x : x + w].copy(), object_mask(self.rng, h, w), source)

    def _background_pair(self):
        """Two frames of one training video, up to frame_gap frames apart (real background change)."""
        frames = self.lib.videos[int(self.rng.integers(len(self.lib.videos)))]
        i = int(self.rng.integers(len(frames)))
        j = int(np.clip(i + self.rng.integers(-self.cfg.frame_gap, self.cfg.frame_gap + 1) // 3, 0, len(frames) - 1))
        return frames[i].copy(), frames[j].copy()

    # -- geometry ---------------------------------------------------------------------------
    def _transform(self, patch: Patch, size_wh, angle: float) -> tuple[np.ndarray, np.ndarray]:
        """Patch resized to size_wh and rotated by angle (degrees) on an enlarged canvas."""
        w, h = max(4, int(round(size_wh[0]))), max(4, int(round(size_wh[1])))
        rgb = cv2.resize(patch.rgb, (w, h), interpolation=cv2.INTER_LINEAR)
        alpha = cv2.resize(patch.alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        if abs(angle) > 0.5:
            side = int(math.ceil(math.hypot(w, h))) + 2
            M = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
            M[0, 2] += (side - w) / 2
            M[1, 2] += (side - h) / 2
            rgb = cv2.warpAffine(rgb, M, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            alpha = cv2.warpAffine(alpha, M, (side, side), flags=cv2.INTER_LINEAR)
        return rgb, alpha

    @staticmethod
    def _paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, cx: float, cy: float):
        """Alpha-blend centred at (cx, cy); returns the exact box (x, y, w, h) of the visible mask."""
        H, W = frame.shape[:2]
        h, w = alpha.shape
        x0, y0 = int(round(cx - w / 2)), int(round(cy - h / 2))
        fx0, fy0, fx1, fy1 = max(x0, 0), max(y0, 0), min(x0 + w, W), min(y0 + h, H)
        if fx1 <= fx0 or fy1 <= fy0:
            return None
        a = alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0, None]
        src = rgb[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0].astype(np.float32)
        dst = frame[fy0:fy1, fx0:fx1].astype(np.float32)
        frame[fy0:fy1, fx0:fx1] = (a * src + (1 - a) * dst + 0.5).astype(np.uint8)
        ys, xs = np.nonzero(alpha[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0] > 0.5)
        if len(xs) == 0:
            return None
        return (fx0 + xs.min(), fy0 + ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)

    def _relight(self, rgb: np.ndarray, strength: float = 0.25) -> np.ndarray:
        """Colour / brightness change: a per-channel gain and a common offset, as a lookup table."""
        gain = np.exp(self.rng.normal(0, strength / 2, 3)) * math.exp(self.rng.normal(0, strength))
        bias = self.rng.normal(0, 12 * strength)
        lut = np.clip(np.arange(256, dtype=np.float32)[:, None] * gain + bias, 0, 255).astype(np.uint8)
        return cv2.LUT(rgb, lut[:, None, :])

    # -- pair kinds -------------------------------------------------------------------------
    def composite(self, negative: bool = False):
        """(frame_t, box_t, frame_s, box_s or None): a patch pasted over two frames of a video."""
        rng = self.rng
        frame_t, frame_s = self._background_pair()
        H, W = frame_t.shape[:2]
        target = self.patch()
        side = math.exp(rng.uniform(math.log(0.08), math.log(0.35))) * min(W, H)
        ar = target.rgb.shape[1] / target.rgb.shape[0] * math.exp(rng.normal(0, 0.2))
        size_t = (side * math.sqrt(ar), side / math.sqrt(ar))
        size_t = (min(size_t[0], 0.8 * W), min(size_t[1], 0.8 * H))
        cx = rng.uniform(size_t[0] / 2 + 2, W - size_t[0] / 2 - 2)
        cy = rng.uniform(size_t[1] / 2 + 2, H - size_t[1] / 2 - 2)
        rgb, alpha = self._transform(target, size_t, rng.normal(0, 4))
        box_t = self._paste(frame_t, rgb, alpha, cx, cy)
        # the search frame: moved, rescaled, stretched, turned, re-lit, maybe blurred by motion
        scale = math.exp(rng.normal(0, 0.15))
        stretch = math.exp(rng.normal(0, 0.1))
        size_s = (size_t[0] * scale * stretch, size_t[1] * scale / stretch)
        size_s = (min(size_s[0], 0.85 * W), min(size_s[1], 0.85 * H))
        mx = cx + rng.normal(0, 0.3) * size_t[0]
        my = cy + rng.normal(0, 0.3) * size_t[1]
        mx = float(np.clip(mx, size_s[0] / 2 + 2, W - size_s[0] / 2 - 2))
        my = float(np.clip(my, size_s[1] / 2 + 2, H - size_s[1] / 2 - 2))
        box_s = None
        distractors = int(rng.integers(self.cfg.max_distractors + 1))
        look_alike = target.source >= 0 and rng.random() < 0.5
        for k in range(distractors + (1 if negative else 0)):
            if (k == 0 and look_alike) or (negative and k == distractors):
                src = self.lib.images[target.source] if target.source >= 0 else None
                d = self.patch(src, target.source)
            else:
                d = self.patch()
            dsz = (size_s[0] * math.exp(rng.normal(0, 0.3)), size_s[1] * math.exp(rng.normal(0, 0.3)))
            dx = mx + rng.uniform(-2.5, 2.5) * size_s[0]
            dy = my + rng.uniform(-2.5, 2.5) * size_s[1]
            if not negative and abs(dx - mx) < 0.8 * size_s[0] and abs(dy - my) < 0.8 * size_s[1]:
                dx += math.copysign(size_s[0], dx - mx)  # a distractor beside the target, not on it
            drgb, dalpha = self._transform(d, dsz, rng.normal(0, 8))
            self._paste(frame_s, self._relight(drgb), dalpha, dx, dy)
        if not negative:
            rgb, alpha = self._transform(target, size_s, rng.normal(0, 6))
            rgb = self._relight(rgb)
            if rng.random() < 0.15:
                k = int(rng.integers(3, 9))
                kernel = np.zeros((k, k), np.float32)
                kernel[k // 2] = 1.0 / k
                rgb = cv2.filter2D(
                    rgb,
                    -1,
                    cv2.warpAffine(kernel, cv2.getRotationMatrix2D((k / 2, k / 2), rng.uniform(0, 180), 1), (k, k)),
                )
            box_s = self._paste(frame_s, rgb, alpha, mx, my)
            if box_s is not None and rng.random() < self.cfg.occlusion:
                occ = self.patch()
                ow, oh = size_s[0] * rng.uniform(0.2, 0.6), size_s[1] * rng.uniform(0.3, 1.0)
                ox = mx + rng.choice([-1, 1]) * (size_s[0] / 2) * rng.uniform(0.3, 0.9)
                self._paste(
                    frame_s,
                    self._relight(cv2.resize(occ.rgb, (max(4, int(ow)), max(4, int(oh))))),
                    np.ones((max(4, int(oh)), max(4, int(ow))), np.float32),
                    ox,
                    my + rng.normal(0, 0.2) * size_s[1],
                )
        else:
            box_s = (mx - size_s[0] / 2, my - size_s[1] / 2, size_s[0], size_s[1])  # where the crop looks
        return frame_t, box_t, frame_s, box_s

    def still(self, negative: bool = False):
        """One image, one textured box, both crops from it (the search crop then differs by shift,
        scale, blur and colour only). As a negative, the search looks at another box of it."""
        image, _ = self._source_image()
        box = textured_box(self.rng, image, 0.1, 0.45)
        if not negative:
            return image, box, image, box
        # a box far enough that the template's object is outside the search crop
        reach = 1.5 * self._context_side(box[2], box[3]) * self.cfg.instance_size / self.cfg.exemplar_size
        for _ in range(8):
            other = textured_box(self.rng, image, 0.1, 0.45)
            dx = (other[0] + other[2] / 2) - (box[0] + box[2] / 2)
            dy = (other[1] + other[3] / 2) - (box[1] + box[3] / 2)
            if max(abs(dx), abs(dy)) > reach:
                return image, box, image, other
        image2, _ = self._source_image()
        while image2 is image:
            image2, _ = self._source_image()
        return image, box, image2, textured_box(self.rng, image2, 0.1, 0.45)

    # -- crops -----------------------------------------------------------------------------
    def _context_side(self, w: float, h: float) -> float:
        p = self.cfg.context_amount * (w + h)
        return math.sqrt((w + p) * (h + p))

    def _augment(self, crop: np.ndarray) -> np.ndarray:
        rng = self.rng
        if rng.random() < self.cfg.blur:
            crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.5, 2.0))
        crop = self._relight(crop, 0.15)
        if rng.random() < self.cfg.gray:
            crop = cv2.cvtColor(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        return crop

    def sample(self) -> Pair | None:
        cfg, rng = self.cfg, self.rng
        negative = rng.random() < cfg.negative
        if rng.random() < cfg.still:
            frame_t, box_t, frame_s, box_s = self.still(negative)
        else:
            frame_t, box_t, frame_s, box_s = self.composite(negative)
        if box_t is None or box_s is None:
            return None
        x, y, w, h = (float(v) for v in box_t)
        s_z = self._context_side(w, h)
        # exemplar: the tracker's crop, with a little jitter
        zs = s_z * math.exp(rng.uniform(-cfg.template_scale, cfg.template_scale))
        zc = (
            x + w / 2 + rng.uniform(-1, 1) * cfg.template_shift * zs / cfg.exemplar_size,
            y + h / 2 + rng.uniform(-1, 1) * cfg.template_shift * zs / cfg.exemplar_size,
        )
        avg = np.array(cv2.mean(frame_t)[:3])
        template = get_subwindow(frame_t, zc, cfg.exemplar_size, max(1, round(zs)), avg)
        # search: sized from the template box (the tracker's last estimate), centre shifted
        sx = s_z * cfg.instance_size / cfg.exemplar_size * math.exp(rng.uniform(-cfg.search_scale, cfg.search_scale))
        k = cfg.instance_size / sx
        bx, by, bw, bh = (float(v) for v in box_s)
        bcx, bcy = bx + bw / 2, by + bh / 2
        shift = rng.uniform(-cfg.search_shift, cfg.search_shift, 2) / k
        xc = (bcx + shift[0], bcy + shift[1])
        search = get_subwindow(frame_s, xc, cfg.instance_size, max(1, round(sx)), np.array(cv2.mean(frame_s)[:3]))
        box = np.array([(bcx - xc[0]) * k, (bcy - xc[1]) * k, bw * k, bh * k], np.float32)
        return Pair(self._augment(template), self._augment(search), box, not negative)

    def pairs(self, n: int):
        made = 0
        while made < n:
            p = self.sample()
            if p is not None:
                made += 1
                yield p
