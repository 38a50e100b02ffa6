"""Outputs that never destroy what the user has.

Every file SiamScope writes (boxes, CSV/JSON results, annotated videos, plots) goes through here:

- `check_output(path, exts, inputs)` runs before any work starts and refuses, with one clear
  message, a path that is a folder or a device, has an unknown extension, lies in a folder that
  is missing or not writable, is a read-only file, or is the same file as one of the inputs
  (links and hard links resolved: device and inode are compared).
- `atomic_write(path)` and `AtomicVideoWriter` (trackers/run/video_io.py) write into a temporary
  file in the destination's folder and rename it over the destination only once it is complete. A failed, cancelled or
  interrupted write removes its own temporary file and leaves the previous file untouched.
"""
from __future__ import annotations

import os
import stat
import tempfile
from contextlib import contextmanager
from typing import Iterable, Optional


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
