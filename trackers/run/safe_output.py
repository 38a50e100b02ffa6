"""Outputs that never destroy what the user has.

Every file SiamScope writes (boxes, CSV/JSON results, annotated videos, plots) goes through here:

- `check_output(path, exts, inputs)` runs before any work starts and refuses, with one clear
  message, a path that is a folder or a device, has an unknown extension, lies in a folder that
  is missing or not writable, is a read-only file, or is the same file as one of the inputs
  (links and hard links resolved: device and inode are compared).
- `atomic_write(path)` and `AtomicVideoWriter` (trackers/run/video_io.py) write into a temporary
  file in the destination's folder and rename it over the destination only once it is complete. A failed, cancelled or
  interrupted write removes its own temporary file and leaves the previous file untouched. A
  failed write (a full disk) is one line naming the file.
- An output that is a symlink is written through: the file the link points at is replaced, the
  link stays (as a shell's `>` does; the user named the link). Names that come from files
  (below) are checked first, so a planted link cannot lead such a write out of its folder.
- A temporary file of ours that a killed process left behind (`.<name>.XXXXXXXX.part<ext>`, not
  modified for STALE_PART_SECONDS) is removed by the next write to that destination.

Paths that come from a file rather than from the user (a zoo manifest's `file`, a dataset's
sequence names, VOT sequence names, result names) pass `safe_relpath(name, field, folder)`: a
relative path whose every component is an ordinary name (no `..`, no absolute path, no drive, no
backslash, no control character) and, when `folder` is given, one that still resolves inside
`folder` with links followed. Anything else is refused with one line naming the field.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Iterable
from contextlib import contextmanager

RESULT_EXTS = (".txt", ".csv", ".json")
VIDEO_EXTS = (".mp4", ".avi")
IMAGE_EXTS = (".png",)


#: a temporary file of ours untouched this long belongs to a killed process (a live writer
#: touches it at every frame or chunk)
STALE_PART_SECONDS = 15 * 60
#: longest name component most file systems take
MAX_COMPONENT_BYTES = 255


class OutputError(OSError):
    """An output path that cannot or must not be written; the message says why, in one line."""


class UnsafePathError(ValueError):
    """A path read from a file (manifest, annotation, list) that could lead outside its folder."""


_DRIVE = re.compile(r"^[A-Za-z]:")


def safe_relpath(name, field: str, folder: str | None = None) -> str:
    """`name` (read from a file, so untrusted) as a relative path that stays inside its folder.

    Accepted: one or more ordinary name components joined by '/' ('seq', 'sub/model.pth').
    Refused, with one line naming `field`: a non-string, an empty name, an absolute path, a drive
    ('C:'), a backslash, a '..' or '.' component, a control character, a component longer than
    255 bytes; and, when `folder` is given, a name that leads outside `folder` once the links
    already there are followed (a planted symlink). Returns the name, normalised ('a//b' -> 'a/b')."""

    def refuse(why: str):
        shown = repr(name) if len(repr(name)) <= 80 else repr(name)[:77] + "..."
        raise UnsafePathError(
            f"{field} {shown} {why}; only a plain name or a relative path inside its folder is accepted"
        )

    if not isinstance(name, str):
        refuse(f"is of type {type(name).__name__}, not a file name")
    if not name.strip():
        refuse("is empty")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        refuse("contains a control character")
    if "\\" in name:
        refuse("contains a backslash")
    if name.startswith("/") or _DRIVE.match(name):
        refuse("is an absolute path")
    parts = [p for p in name.split("/") if p != ""]
    for part in parts:
        if part in (".", ".."):
            refuse(f"contains {part!r}")
        try:
            size = len(part.encode("utf-8"))
        except UnicodeEncodeError:
            refuse("is not valid text")
        if size > MAX_COMPONENT_BYTES:
            refuse(f"has a component longer than {MAX_COMPONENT_BYTES} bytes")
    clean = "/".join(parts)
    if folder is not None:
        root = os.path.realpath(folder)
        where = os.path.realpath(os.path.join(root, clean))
        if os.path.commonpath([root, where]) != root:
            refuse(f"leads outside {folder!r} (through a link to {where!r})")
    return clean


def inside(folder: str, name, field: str) -> str:
    """The path of `name` (untrusted, see safe_relpath) under `folder`, checked to stay inside it."""
    return os.path.join(folder, safe_relpath(name, field, folder))


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _input_stats(inputs: Iterable[str | None]):
    out = []
    for p in inputs:
        if not p or not isinstance(p, (str, os.PathLike)):
            continue
        try:
            out.append((str(p), os.stat(p)))  # follows symlinks: the file the input really is
        except OSError:
            continue
    return out


def check_output(path, exts: Iterable[str], inputs: Iterable[str | None] = (), what: str = "output") -> str:
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
        st = None  # a new file (or a folder that is not one: reported below)
    except OSError as e:
        raise OutputError(f"{what} {path!r} cannot be checked: {e.strerror or e}") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{what} {path!r} is a folder, not a file name")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{what} {path!r} is a device or special file, not a regular file; it is left alone")
        for name, ist in _input_stats(inputs):
            if _same_file(st, ist):
                raise OutputError(
                    f"{what} {path!r} is the input {name!r}: writing it would destroy the input; "
                    "choose another file name"
                )
        if not os.access(target, os.W_OK):
            raise OutputError(f"{what} {path!r} exists and is read-only; it is left alone")
    folder = os.path.dirname(os.path.realpath(target))
    if not os.path.isdir(folder):
        raise OutputError(
            f"cannot write {what} {path!r}: folder {folder!r} does not exist"
            + (" (it is a file)" if os.path.exists(folder) else "")
        )
    # the one sure test (root passes os.access everywhere, /proc refuses even root): make a file
    try:
        discard(temp_path_for(os.path.join(folder, os.path.basename(target))))
    except OSError as e:
        raise OutputError(
            f"cannot write {what} {path!r}: folder {folder!r} is not writable ({e.strerror or e})"
        ) from None
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


def check_outputs_distinct(*paths: str | None) -> None:
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


def final_path(dest: str) -> str:
    """Where a write to `dest` lands: the file a symlink points at (the link itself is kept)."""
    return os.path.realpath(os.path.abspath(dest))


def _part_pattern(base: str, ext: str) -> re.Pattern:
    # mkstemp's names: prefix + 8 characters of [a-z0-9_] + suffix
    return re.compile(re.escape(f".{base}.") + r"[a-z0-9_]{8}" + re.escape(f".part{ext}") + r"$")


def clean_stale_parts(dest: str, suffix: str | None = None, max_age: float = STALE_PART_SECONDS) -> list[str]:
    """Remove the temporary files of earlier writes to `dest` that a killed process left behind:
    ours by name (`.<name>.XXXXXXXX.part<ext>`), regular files (not links) owned by this user,
    unmodified for `max_age` seconds (a live writer touches its file at every frame). Returns
    the paths removed."""
    folder, base = os.path.split(final_path(dest))
    ext = os.path.splitext(base)[1] if suffix is None else suffix
    pattern = _part_pattern(base, ext)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    uid = os.getuid() if hasattr(os, "getuid") else None
    for n in names:
        if not pattern.match(n):
            continue
        p = os.path.join(folder, n)
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode) or (uid is not None and st.st_uid != uid) or now - st.st_mtime < max_age:
            continue
        try:
            os.unlink(p)
            removed.append(p)
        except OSError:
            pass
    return removed


def temp_path_for(dest: str, suffix: str | None = None) -> str:
    """A new, empty temporary file in the folder of the file dest names (links followed) whose name
    ends in dest's extension (OpenCV picks a video's container by its extension); stale ones of
    ours left there by a killed process go first."""
    folder, base = os.path.split(final_path(dest))
    ext = os.path.splitext(base)[1] if suffix is None else suffix
    clean_stale_parts(dest, ext)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".part{ext}", dir=folder)
    os.close(fd)
    return tmp


def commit(tmp: str, dest: str) -> None:
    """Give the finished temporary file normal permissions and rename it over dest (atomic); a
    symlink at dest is written through (its target replaced, the link kept)."""
    target = final_path(dest)
    os.chmod(tmp, _final_mode(target))
    os.replace(tmp, target)


def write_failed(dest: str, error: OSError) -> OutputError:
    """A failed write (ENOSPC, EIO, EFBIG...) as one line naming the file, e.g. for a full disk."""
    failed = OutputError(f"cannot write {dest!r}: {error.strerror or error}; the previous file (if any) is unchanged")
    failed.errno = error.errno  # ENOSPC stays ENOSPC for a caller that asks
    return failed


def discard(tmp: str | None) -> None:
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
        try:
            with open(tmp, mode, **open_kwargs) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            commit(tmp, dest)
        except OutputError:
            raise
        except OSError as e:
            raise write_failed(dest, e) from None
    except BaseException:
        discard(tmp)
        raise
