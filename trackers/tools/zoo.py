"""The model zoo: the published checkpoints of every tracker SiamScope offers
(resources/model_zoo.json), which of them are present, and fetching them.

`download(entry, progress=..., cancelled=...)` is the one code path of `python main.py download`
and of the GUI's download action (run it in a worker thread; `progress(done, total)` feeds a
progress bar, `cancelled()` is polled between chunks). It streams into a temporary file next to
the destination and renames only on success: a failed, cancelled or corrupt download leaves
nothing behind. The size is checked against both the manifest and the server's Content-Length, a
body that runs past the expected size is cut off at once, and the sha256 is checked where the
manifest has one; where it has none (cloud-drive files whose bytes nobody here could check), the
download's sha256 is recorded beside the file (`<file>.sha256`) and the file is reported as not
verified. Offline, it fails at once with the URL and the folder to put the file in by hand.

The manifest is resources/model_zoo.json unless `--manifest` or $SIAMSCOPE_ZOO_MANIFEST names
another (a mirror, or a test's local server).
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request
from typing import Callable, Optional

from ..core import registry
from ..core.paths import RESOURCES_DIR

MANIFEST = os.path.join(RESOURCES_DIR, "model_zoo.json")
CHUNK = 256 * 1024
MANIFEST_ENV = "SIAMSCOPE_ZOO_MANIFEST"
#: a body of unknown size is cut off here: every published checkpoint is far smaller
MAX_UNKNOWN_SIZE = 2 * 1024 ** 3


class DownloadError(OSError):
    """A checkpoint could not be fetched; the message says what to do instead."""


class DownloadCancelled(DownloadError):
    pass


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str                 # the checkpoint's published name
    tracker: str              # the registry name of the tracker that loads it
    file: str                 # path inside a model folder, as the tracker looks it up
    url: Optional[str]        # direct download; None where only a cloud-drive folder/page exists
    page: str                 # where a person downloads it by hand
    source: str               # the document that publishes it
    licence: str
    sha256: Optional[str] = None
    size: Optional[int] = None
    note: str = ""

    def installed(self) -> Optional[str]:
        """Path of the file in $SIAMSCOPE_MODELS or the user models folder, else None."""
        return registry.find_file(self.file)

    def manual_hint(self, dest_dir: Optional[str] = None) -> str:
        where = os.path.join(dest_dir or registry.user_models_dir(), self.file)
        get = self.url or self.page
        return f"download it by hand from {get}" + (f" ({self.page})" if self.url and self.page else "") + \
               f" and put it at {where} (or in a folder named by SIAMSCOPE_MODELS)"


@dataclasses.dataclass(frozen=True)
class Unpublished:
    tracker: str
    file: str
    note: str


def manifest_path(path: Optional[str] = None) -> str:
    """The manifest in use: `path`, else $SIAMSCOPE_ZOO_MANIFEST, else the project's."""
    return path or os.environ.get(MANIFEST_ENV) or MANIFEST


def load_manifest(path: Optional[str] = None) -> list[ZooEntry]:
    with open(manifest_path(path)) as f:
        data = json.load(f)
    fields = {f.name for f in dataclasses.fields(ZooEntry)}
    return [ZooEntry(**{k: v for k, v in e.items() if k in fields}) for e in data["checkpoints"]]


def load_unpublished(path: Optional[str] = None) -> list[Unpublished]:
    with open(manifest_path(path)) as f:
        return [Unpublished(**e) for e in json.load(f).get("unpublished", [])]


def find(name: str, entries: Optional[list[ZooEntry]] = None) -> list[ZooEntry]:
    """Entries by checkpoint name, tracker name or file name (a tracker may need several files)."""
    entries = load_manifest() if entries is None else entries
    hits = [e for e in entries if name in (e.name, e.tracker, e.file)]
    if not hits:
        raise KeyError(f"no checkpoint {name!r} in the model zoo; known: {', '.join(e.name for e in entries)}")
    return hits


def recorded_sha256_path(path: str) -> str:
    """Where the sha256 of a download whose manifest entry has none is recorded."""
    return path + ".sha256"


def read_recorded_sha256(path: str) -> Optional[str]:
    try:
        with open(recorded_sha256_path(path)) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def download(entry: ZooEntry, dest_dir: Optional[str] = None,
             progress: Optional[Callable[[int, Optional[int]], None]] = None,
             cancelled: Optional[Callable[[], bool]] = None, timeout: float = 15.0, force: bool = False) -> str:
    """Fetch one checkpoint into dest_dir (default: the user models folder); returns its path.

    progress(done_bytes, total_bytes or None) is called after every chunk; cancelled() -> True
    stops the download (DownloadCancelled). Raises DownloadError with a message that says where
    to get the file by hand; never leaves a partial file. Where the entry has no sha256 the
    file's is recorded at `recorded_sha256_path(path)`.
    """
    from ..run.safe_output import commit
    dest_dir = dest_dir or registry.user_models_dir()
    dest = os.path.join(dest_dir, entry.file)
    if not force and os.path.isfile(dest) and _matches(entry, dest):
        return dest
    if not entry.url:
        raise DownloadError(f"{entry.name} has no direct download: {entry.manual_hint(dest_dir)}")
    request = urllib.request.Request(entry.url, headers={"User-Agent": "SiamScope"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else (getattr(e, "reason", None) or e)
        raise DownloadError(f"cannot download {entry.name} from {entry.url} ({reason}); "
                            f"{entry.manual_hint(dest_dir)}") from None
    hint = entry.manual_hint(dest_dir)
    try:
        _check_not_a_web_page(entry, response, dest_dir)
        announced = response.headers.get("Content-Length")
        announced = int(announced) if announced and announced.strip().isdigit() else None
        if entry.size is not None and announced is not None and announced != entry.size:
            raise DownloadError(f"{entry.name}: {entry.url} announces {announced} bytes, the manifest "
                                f"{entry.size}; nothing was downloaded; {hint}")
    except BaseException:
        response.close()
        raise
    expected = entry.size if entry.size is not None else announced
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(dest)}.", suffix=".part", dir=os.path.dirname(dest))
    except OSError as e:
        response.close()
        raise DownloadError(f"cannot write into {os.path.dirname(dest)!r} for {entry.name}: {e.strerror or e}") from None
    try:
        with response, os.fdopen(fd, "wb") as out:
            limit = expected if expected is not None else MAX_UNKNOWN_SIZE
            digest = hashlib.sha256()
            done = 0
            if progress:
                progress(0, expected)
            while True:
                if cancelled is not None and cancelled():
                    raise DownloadCancelled(f"download of {entry.name} cancelled")
                try:
                    # never ask for more than one byte past the limit: an endless body stops here
                    chunk = response.read(min(CHUNK, limit + 1 - done))
                except (OSError, http.client.HTTPException) as e:
                    raise DownloadError(f"download of {entry.name} from {entry.url} broke off after {done} bytes "
                                        f"({type(e).__name__}: {e}); nothing was kept; {hint}") from None
                if not chunk:
                    break
                if done + len(chunk) > limit:
                    raise DownloadError(f"{entry.name}: {entry.url} sent more than the {limit} bytes expected; "
                                        f"stopped, nothing was kept; {hint}")
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, expected)
        if expected is not None and done != expected:
            raise DownloadError(f"{entry.name}: got {done} bytes from {entry.url}, expected {expected}; "
                                f"nothing was kept; {hint}")
        if entry.sha256 is not None and digest.hexdigest() != entry.sha256:
            raise DownloadError(f"{entry.name}: checksum mismatch (sha256 {digest.hexdigest()}, expected "
                                f"{entry.sha256}); nothing was kept; {hint}")
        if entry.sha256 is None:
            # nothing to verify against: record what was fetched, so a later change to the file shows
            record = recorded_sha256_path(dest)
            with open(record + ".part", "w") as f:
                f.write(f"{digest.hexdigest()}  {os.path.basename(dest)}\n")
            commit(record + ".part", record)
        commit(tmp, dest)      # normal permissions (not mkstemp's 0600), then the atomic rename
        return dest
    except BaseException:
        # failed, cancelled or interrupted: the temporary file goes, the destination is untouched
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _matches(entry: ZooEntry, path: str) -> bool:
    """A present file is kept when it has the published sha256, or the one recorded at download."""
    want = entry.sha256 or read_recorded_sha256(path)
    return want is None or _sha256(path) == want


def is_verified(entry: ZooEntry) -> bool:
    return entry.sha256 is not None


def _check_not_a_web_page(entry: ZooEntry, response, dest_dir) -> None:
    # Cloud drives answer large files with an HTML confirmation page; a checkpoint is never HTML.
    ctype = (response.headers.get("Content-Type") or "").lower()
    if ctype.startswith("text/html"):
        raise DownloadError(f"{entry.url} answered with a web page, not {entry.file} (a cloud drive's "
                            f"confirmation page?); {entry.manual_hint(dest_dir)}")


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- commands ----------------------------------------------------------------------------------
def _terminal_progress(name: str):
    tty = sys.stderr.isatty()

    def show(done: int, total: Optional[int]) -> None:
        if not tty:
            return
        mb = done / 1e6
        text = f"{name}: {mb:.1f} MB" + (f" / {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else "")
        print("\r" + text, end="", file=sys.stderr, flush=True)
    return show


def cmd_download(args) -> int:
    from ..core.base import InvalidRequest as UsageError  # the command line prints it as a usage line
    entries = load_manifest(args.manifest)
    if args.all:
        chosen = entries
    elif args.name:
        try:
            chosen = find(args.name, entries)
        except KeyError as e:
            raise UsageError(e.args[0]) from None
    else:
        raise UsageError("name a checkpoint (see `python main.py zoo`) or pass --all")
    failed = 0
    for entry in chosen:
        present = entry.installed()
        if present and not args.force and not args.dir:
            print(f"{entry.name}: present at {present}")
            continue
        try:
            path = download(entry, args.dir, progress=_terminal_progress(entry.name), force=args.force)
        except DownloadError as e:
            if sys.stderr.isatty():
                print(file=sys.stderr)
            print(f"error: {e}", file=sys.stderr)
            failed += 1
            continue
        if sys.stderr.isatty():
            print(file=sys.stderr)
        if entry.sha256:
            print(f"{entry.name}: saved to {path} (sha256 verified)")
        else:
            print(f"{entry.name}: saved to {path} (NOT verified: no published sha256; its sha256 "
                  f"{read_recorded_sha256(path)} is recorded in {recorded_sha256_path(path)})")
    return 2 if failed else 0


def cmd_zoo(args) -> int:
    registered = {s.name for s in registry.all_trackers()}
    for e in load_manifest(args.manifest):
        where = e.installed()
        state = where if where else ("missing" if e.url else "missing, manual download")
        if where and e.sha256 is None:
            state += " (not verified: no published sha256)"
        mark = "" if e.tracker in registered else "  (tracker not available)"
        print(f"{e.name:32s} {e.tracker:20s} {state}{mark}")
    for u in load_unpublished(args.manifest):
        where = registry.find_file(u.file)
        print(f"{u.file:32s} {u.tracker:20s} {where or 'not published: made by the training pipeline'}")
    print(f"# model folders: {os.pathsep.join(registry.model_dirs())}")
    return 0


def add_parser(subparsers) -> None:
    d = subparsers.add_parser("download", help="fetch published checkpoints into the user models folder")
    d.add_argument("name", nargs="?", help="checkpoint or tracker name (see `python main.py zoo`)")
    d.add_argument("--all", action="store_true", help="every checkpoint in the zoo that is not present")
    d.add_argument("--dir", help=f"target folder (default {registry.user_models_dir()})")
    d.add_argument("--force", action="store_true", help="download again even where the file is present")
    d.add_argument("--manifest", help=f"model-zoo manifest (default ${MANIFEST_ENV} or resources/model_zoo.json)")
    d.set_defaults(func=cmd_download)
    z = subparsers.add_parser("zoo", help="list the published checkpoints and which are present")
    z.add_argument("--manifest", help=f"model-zoo manifest (default ${MANIFEST_ENV} or resources/model_zoo.json)")
    z.set_defaults(func=cmd_zoo)
