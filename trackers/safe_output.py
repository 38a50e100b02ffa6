"""Outputs that never destroy what the user has.

Every file SiamScope writes (boxes, CSV/JSON results, annotated videos, plots) goes through here:

- `check_output(path, exts, inputs)` runs before any work starts and refuses, with one clear
  message, a path that is a folder or a device, has an unknown extension, lies in a folder that
  is missing or not writable, is a read-only file, or is the same file as one of the inputs
  (links and hard links resolved: device and inode are compared).
- `atomic_write(path)` and `AtomicVideoWriter` write into a temporary file in the destination's
  folder and rename it over the destination only once it is complete. A failed, cancelled or
  interrupted write removes its own temporary file and leaves the previous file untouched.
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from typing import Iterable, Optional

import cv2

RESULT_EXTS = (".txt", ".csv", ".json")
VIDEO_EXTS = (".mp4", ".avi")
IMAGE_EXTS = (".png",)


class OutputError(OSError):
    """An output path that cannot or must not be written; the message says why, in one line."""


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _input_stats(inputs: Iterable[Optional[str]]):
    out = []
    for p in inputs:
        if not p or not isinstance(p, (str, os.PathLike)):
            continue
        try:
            out.append((str(p), os.stat(p)))        # follows symlinks: the file the input really is
        except OSError:
            continue
    return out


def check_output(path, exts: Iterable[str], inputs: Iterable[Optional[str]] = (), what: str = "output") -> str:
    """Raise OutputError unless `path` can be written without destroying anything; return it
    as an absolute path. `inputs` are the files the run reads (video, weights...)."""
    path = os.fspath(path)
    exts = tuple(e.lower() for e in exts)
    ext = os.path.splitext(path)[1].lower()
    if ext not in exts:
        raise OutputError(f"{what} {path!r}: unknown format {ext or '(no extension)'!r}; use one of {', '.join(exts)}")
    target = os.path.abspath(path)
    try:
        st = os.stat(target)
    except (FileNotFoundError, NotADirectoryError):
        st = None            # a new file (or a folder that is not one: reported below)
    except OSError as e:
        raise OutputError(f"{what} {path!r} cannot be checked: {e.strerror or e}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {path!r} is a folder, not a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{what} {path!r} is a device or special file, not a regular file; it is left alone")
        for name, ist in _input_stats(inputs):
            if _same_file(st, ist):
                raise OutputError(f"{what} {path!r} is the input {name!r}: writing it would destroy the input; "
                                  "choose another file name")
        if not os.access(target, os.W_OK):
            raise OutputError(f"{what} {path!r} exists and is read-only; it is left alone")
    folder = os.path.dirname(os.path.realpath(target))
    if not os.path.isdir(folder):
        raise OutputError(f"cannot write {what} {path!r}: folder {folder!r} does not exist"
                          + (" (it is a file)" if os.path.exists(folder) else ""))
    # the one sure test (root passes os.access everywhere, /proc refuses even root): make a file
    try:
        discard(temp_path_for(os.path.join(folder, os.path.basename(target))))
    except OSError as e:
        raise OutputError(f"cannot write {what} {path!r}: folder {folder!r} is not writable "
                          f"({e.strerror or e})") from None
    return target


def check_output_folder(path, what: str = "output folder") -> str:
    """Raise OutputError unless `path` is a writable folder or one that can be made (its nearest
    existing parent is a writable folder); return it as an absolute path. Nothing is created."""
    target = os.path.abspath(os.fspath(path))
    probe = target
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if not os.path.isdir(probe):
        raise OutputError(f"{what} {path!r}: {probe!r} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".siamscope-probe.", dir=probe)
        os.close(fd)
        discard(tmp)
    except OSError as e:
        raise OutputError(f"cannot write {what} {path!r}: {probe!r} is not writable ({e.strerror or e})") from None
    return target


def check_outputs_distinct(*paths: Optional[str]) -> None:
    """Two outputs of one run must not be the same file (the second would replace the first)."""
    seen = {}
    for p in paths:
        if not p:
            continue
        key = os.path.realpath(os.path.abspath(p))
        if key in seen:
            raise OutputError(f"{p!r} is given for two outputs; give each its own file")
        seen[key] = p


def _umask() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _final_mode(dest: str) -> int:
    """The mode the finished file gets: the replaced file's, else what open() would have given."""
    try:
        return stat.S_IMODE(os.stat(dest).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def temp_path_for(dest: str) -> str:
    """A new, empty temporary file in dest's folder whose name ends in dest's extension (OpenCV
    picks a video's container by its extension)."""
    folder, base = os.path.split(os.path.abspath(dest))
    ext = os.path.splitext(base)[1]
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".part{ext}", dir=folder)
    os.close(fd)
    return tmp


def commit(tmp: str, dest: str) -> None:
    """Give the finished temporary file normal permissions and rename it over dest (atomic)."""
    os.chmod(tmp, _final_mode(dest))
    os.replace(tmp, dest)


def discard(tmp: Optional[str]) -> None:
    if tmp:
        try:
            os.unlink(tmp)
        except OSError:
            pass


@contextmanager
def atomic_write(dest: str, mode: str = "w", **open_kwargs):
    """`with atomic_write(path) as f:` writes f to a temporary file renamed over path on success.
    Any exception (a full disk, an interrupt) removes the temporary file and leaves path as it was."""
    tmp = temp_path_for(dest)
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        commit(tmp, dest)
    except BaseException:
        discard(tmp)
        raise


class AtomicVideoWriter:
    """An OpenCV VideoWriter (.mp4 mp4v / .avi MJPG) writing a temporary file in the destination's
    folder: `finish()` reads it back and renames it over the destination; `abort()` removes it."""

    def __init__(self, path: str, fps: float, size):
        self.path = path
        self.frames = 0
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write {path!r}: folder {folder!r} is missing or not writable")
        self.tmp = temp_path_for(path)
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.lower().endswith(".mp4") else "MJPG"))
        self.writer = cv2.VideoWriter(self.tmp, fourcc, fps or 25.0, tuple(size))
        if not self.writer.isOpened():
            self.writer.release()
            discard(self.tmp)
            raise OutputError(f"cannot write video {path!r} (OpenCV could not open a writer for it)")

    def write(self, frame) -> None:
        self.writer.write(frame)
        self.frames += 1

    def finish(self) -> None:
        """Close the file, check every frame written can be read back, and put it in place.
        On a failed check the temporary file goes and the destination is untouched (OSError)."""
        self.writer.release()
        try:
            check_written_video(self.tmp, self.frames, shown_as=self.path)
            commit(self.tmp, self.path)
        except BaseException:
            discard(self.tmp)
            raise

    def abort(self) -> None:
        self.writer.release()
        discard(self.tmp)


def check_written_video(path: str, frames_written: int, shown_as: Optional[str] = None) -> None:
    """Read the finished file back and raise OSError when fewer frames come out than went in.

    OpenCV's VideoWriter.write() reports nothing (a full disk only prints FFmpeg warnings), so
    reading the file back is the one way to know the export really holds every frame."""
    cap = cv2.VideoCapture(path)
    readable = 0
    try:
        while cap.isOpened() and readable < frames_written and cap.grab():
            readable += 1
    finally:
        cap.release()
    if readable < frames_written:
        raise OSError(f"{shown_as or path} holds only {readable} of the {frames_written} frames written "
                      "(disk full?); nothing was put in its place")
