"""Frame sources: a video file, an image-sequence folder (OTB / GOT-10k layout) or a camera.

One interface, so the rest of the program does not care which: `read()` gives the next BGR
frame or None at the end; files also `seek()`. Problems raise SourceError with a clear message.
"""
from __future__ import annotations

import os
import re
from typing import Optional

import cv2
import numpy as np

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp")
#: frames a video may fall short of its container's count unreported: MPEG-4 counts are often
#: estimated one too high (../shared/data/videos/box.mp4 announces 456 and decodes 455)
SHORT_TOLERANCE = 1


class SourceError(Exception):
    pass


class FrameSource:
    name: str = ""
    is_live: bool = False            # a camera: frames come in real time, no seeking
    frame_count: Optional[int] = None
    fps: float = 25.0
    position: int = 0                # index of the frame the next read() returns

    def read(self) -> Optional[np.ndarray]:
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise SourceError(f"{self.name} cannot seek")

    def shortfall(self) -> Optional[str]:
        """At the end of a file: a message with both numbers when fewer frames were decoded than
        the container announces (a truncated or damaged file), else None."""
        if self.is_live or not self.frame_count or self.position >= self.frame_count - SHORT_TOLERANCE:
            return None
        return (f"{self.name} ended after {self.position} of the {self.frame_count} frames its container "
                "announces (truncated or damaged file?)")

    def close(self) -> None:
        pass

    def __iter__(self):
        while (frame := self.read()) is not None:
            yield frame

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class VideoFileSource(FrameSource):
    def __init__(self, path: str):
        self.name = path
        if not os.path.isfile(path):
            raise SourceError(f"video {path!r} does not exist")
        self.cap = cv2.VideoCapture(path)
        ok, first = self.cap.read() if self.cap.isOpened() else (False, None)
        if not ok or first is None:
            self.cap.release()
            raise SourceError(f"cannot read video {path!r}: not a video OpenCV can decode")
        self._pending = first
        n = int(self.cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count = n if n > 0 else None
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or 25.0

    def read(self):
        if self._pending is not None:
            frame, self._pending = self._pending, None
        else:
            ok, frame = self.cap.read()
            if not ok:
                return None
        self.position += 1
        return frame

    def seek(self, index: int) -> None:
        # Frame-accurate seeking in MPEG-4 is not guaranteed by CAP_PROP_POS_FRAMES, so re-decode from
        # the start: slower, but the frame we track is the frame the user chose.
        index = max(0, index)
        self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
        self._pending = None
        self.position = 0
        for _ in range(index):
            if not self.cap.grab():
                break
            self.position += 1

    def close(self):
        self.cap.release()


def natural_key(name: str):
    """'2.jpg' before '10.jpg', letters compared without case: the one frame order of the app and of
    `eval`'s dataset loaders (TrackingNet numbers its frames without zero padding)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


class ImageFolderSource(FrameSource):
    """Numbered JPEG/PNG files; an OTB/GOT-10k sequence folder (with img/ inside) works too.
    `files`: play these image files in this order instead of listing the folder (a dataset whose
    annotation names its frames)."""

    def __init__(self, folder: str, fps: float = 25.0, files: Optional[list] = None):
        self.name = folder
        if files is not None:
            self.files = list(files)
        else:
            if os.path.isdir(os.path.join(folder, "img")):
                folder = os.path.join(folder, "img")
            if not os.path.isdir(folder):
                raise SourceError(f"folder {folder!r} does not exist")
            self.files = sorted((os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS)),
                                key=lambda p: natural_key(os.path.basename(p)))
        if not self.files:
            raise SourceError(f"folder {folder!r} holds no JPEG/PNG images")
        self.frame_count = len(self.files)
        self.fps = fps

    def read(self):
        if self.position >= len(self.files):
            return None
        path = self.files[self.position]
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f"cannot read image {path!r}")
        self.position += 1
        return frame

    def seek(self, index: int) -> None:
        self.position = min(max(0, index), len(self.files))


class CameraSource(FrameSource):
    is_live = True

    def __init__(self, index: int):
        self.name = f"camera {index}"
        self.cap = cv2.VideoCapture(index)
        if not self.cap.isOpened():
            self.cap.release()
            raise SourceError(f"cannot open camera {index}: no such device, or it is in use")
        self.fps = float(self.cap.get(cv2.CAP_PROP_FPS)) or 30.0

    def read(self):
        ok, frame = self.cap.read()
        if not ok:
            raise SourceError(f"{self.name} stopped delivering frames (unplugged?)")
        self.position += 1
        return frame

    def close(self):
        self.cap.release()


class FrameListSource(FrameSource):
    """Frames already decoded (a benchmark times tracking alone, never decoding)."""

    def __init__(self, frames: list, name: str = "frames", fps: float = 25.0):
        self.name = name
        self.frames = frames
        self.frame_count = len(frames)
        self.fps = fps

    def read(self):
        if self.position >= len(self.frames):
            return None
        self.position += 1
        return self.frames[self.position - 1]

    def seek(self, index: int) -> None:
        self.position = min(max(0, index), len(self.frames))


def open_source(spec) -> FrameSource:
    """'path/to/video.avi', 'path/to/folder', or a camera as an int or 'camera:N'."""
    if isinstance(spec, int):
        return CameraSource(spec)
    spec = str(spec)
    if spec.startswith("camera:"):
        return CameraSource(int(spec.split(":", 1)[1]))
    if os.path.isdir(spec):
        return ImageFolderSource(spec)
    return VideoFileSource(spec)
