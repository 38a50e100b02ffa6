"""Writing videos: the annotated video of `track --video-out` and of the app's export. The frames go
to a temporary file beside the destination (trackers/run/safe_output.py's rules); the file is read
back whole before it is renamed into place, since OpenCV's writer reports no failed write. Reading
videos is trackers/run/sources.py's."""

from __future__ import annotations

import os

import cv2

from .safe_output import OutputError, commit, discard, final_path, temp_path_for, write_failed


class AtomicVideoWriter:
    """An OpenCV VideoWriter (.mp4 mp4v / .avi MJPG) writing a temporary file in the destination's
    folder: `finish()` reads it back and renames it over the destination; `abort()` removes it."""

    def __init__(self, path: str, fps: float, size):
        self.path = path
        self.frames = 0
        self.size = tuple(int(v) for v in size)
        folder = os.path.dirname(final_path(path))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            raise OutputError(f"cannot write {path!r}: folder {folder!r} is missing or not writable")
        try:
            self.tmp = temp_path_for(path)
        except OSError as e:  # a full disk cannot even take the empty temporary file
            raise write_failed(path, e) from None
        fourcc = cv2.VideoWriter_fourcc(*("mp4v" if path.lower().endswith(".mp4") else "MJPG"))
        self.writer = cv2.VideoWriter(self.tmp, fourcc, fps or 25.0, tuple(size))
        if not self.writer.isOpened():
            self.writer.release()
            discard(self.tmp)
            raise OutputError(f"cannot write video {path!r} (OpenCV could not open a writer for it)")

    def write(self, frame) -> None:
        h, w = frame.shape[:2]
        if (w, h) != tuple(self.size):
            # OpenCV's writer drops such a frame without a word; say it here instead
            raise OutputError(
                f"cannot write video {self.path!r}: frame {self.frames} is {w}x{h}, the video "
                f"{self.size[0]}x{self.size[1]}; nothing was put in its place"
            )
        self.writer.write(frame)
        self.frames += 1

    def finish(self) -> None:
        """Close the file, check every frame written can be read back, and put it in place.
        On a failed check the temporary file goes and the destination is untouched (OSError)."""
        self.writer.release()
        try:
            try:
                check_written_video(self.tmp, self.frames, shown_as=self.path)
                commit(self.tmp, self.path)
            except OutputError:
                raise
            except OSError as e:
                raise (e if e.errno is None else write_failed(self.path, e)) from None
        except BaseException:
            discard(self.tmp)
            raise

    def abort(self) -> None:
        self.writer.release()
        discard(self.tmp)


def check_written_video(path: str, frames_written: int, shown_as: str | None = None) -> None:
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
        raise OSError(
            f"{shown_as or path} holds only {readable} of the {frames_written} frames written "
            f"({_why_short(path)}); nothing was put in its place"
        )


def _why_short(path: str) -> str:
    """The likely cause of a short video, said only where it is true: a full disk is named as such."""
    import shutil

    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return "the writer lost frames"
    if free < 64 * 1024 * 1024:
        return f"the disk is full: {free // (1024 * 1024)} MB free"
    return "the video writer lost frames although the disk has room"
