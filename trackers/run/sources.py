"""Frame sources: a video file, an image-sequence folder (OTB / GOT-10k layout) or a camera.

One interface, so the rest of the program does not care which: `read()` gives the next BGR
frame or None at the end; files also `seek()`. Problems raise SourceError with a clear message.
"""

from __future__ import annotations

import os
import queue
import re
import threading

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
    is_live: bool = False  # a camera: frames come in real time, no seeking
    frame_count: int | None = None
    fps: float = 25.0
    position: int = 0  # index of the frame the next read() returns

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def seek(self, index: int) -> None:
        raise SourceError(f"{self.name} cannot seek")

    def shortfall(self) -> str | None:
        """At the end of a file: a message with both numbers when fewer frames were decoded than
        the container announces (a truncated or damaged file), else None."""
        if self.is_live or not self.frame_count or self.position >= self.frame_count - SHORT_TOLERANCE:
            return None
        return (
            f"{self.name} ended after {self.position} of the {self.frame_count} frames its container "
            "announces (truncated or damaged file?)"
        )

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

    def __init__(self, folder: str, fps: float = 25.0, files: list | None = None):
        self.name = folder
        if files is not None:
            self.files = list(files)
        else:
            if os.path.isdir(os.path.join(folder, "img")):
                folder = os.path.join(folder, "img")
            if not os.path.isdir(folder):
                raise SourceError(f"folder {folder!r} does not exist")
            self.files = sorted(
                (os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS)),
                key=lambda p: natural_key(os.path.basename(p)),
            )
        if not self.files:
            raise SourceError(f"folder {folder!r} holds no JPEG/PNG images")
        self.frame_count = len(self.files)
        self.fps = fps
        self.size: tuple[int, int, str] | None = None  # (w, h, file) of the first image read

    def read(self):
        if self.position >= len(self.files):
            return None
        path = self.files[self.position]
        frame = cv2.imread(path, cv2.IMREAD_COLOR)
        if frame is None:
            raise SourceError(f"cannot read image {path!r}")
        # one sequence, one coordinate system: an image of another size is refused, never resized
        # (its boxes would be in other pixels than the others')
        h, w = frame.shape[:2]
        if self.size is None:
            self.size = (w, h, path)
        elif (w, h) != self.size[:2]:
            raise SourceError(
                f"image {path!r} is {w}x{h}, but {self.size[2]!r} is {self.size[0]}x{self.size[1]}: "
                "a sequence's images must all have one size (boxes would be in different "
                "coordinate systems)"
            )
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


class ReadAheadSource(FrameSource):
    """A file source decoded ahead on its own thread, so decoding overlaps tracking instead of
    adding to it (the app's worker at speed "max": 0.4 ms a frame of bag.avi against NanoTrack's
    2.4 ms). OpenCV's decoder releases the GIL, so the two threads really run side by side.

    Frames, their order, seeking, the end and its shortfall message are the wrapped source's: a
    read error is raised by the read() that would have met it, and seek() stops the reader, seeks
    the source and starts reading ahead from there on the next read()."""

    def __init__(self, source: FrameSource, depth: int = 4):
        if source.is_live:
            raise ValueError("a live source is read by LatestFrameGrabber, which drops stale frames")
        self.source = source
        self.name, self.frame_count, self.fps = source.name, source.frame_count, source.fps
        self.position = source.position
        self._depth = depth
        self._queue: queue.Queue | None = None
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> None:
        self._queue, self._stop = queue.Queue(self._depth), threading.Event()
        self._thread = threading.Thread(
            target=self._read_ahead, args=(self._queue, self._stop), name="read-ahead", daemon=True
        )
        self._thread.start()

    def _read_ahead(self, out: queue.Queue, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                item = (self.source.read(), None)
            except Exception as e:  # noqa: BLE001 - handed to the read() that meets it
                item = (None, e)
            while not stop.is_set():
                try:
                    out.put(item, timeout=0.05)
                    break
                except queue.Full:
                    continue
            if item[0] is None:  # the end, or an error: nothing more to read ahead
                return

    def _halt(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = self._queue = self._stop = None

    def read(self):
        if self._thread is None:
            self._start()
        frame, error = self._queue.get()
        if error is not None or frame is None:
            # the reader has stopped; put the item back so another read() gets the same answer
            self._queue.put((frame, error))
            if error is not None:
                raise error
            return None
        self.position += 1
        return frame

    def seek(self, index: int) -> None:
        self._halt()
        self.source.seek(index)
        self.position = self.source.position

    def close(self) -> None:
        self._halt()
        self.source.close()


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
