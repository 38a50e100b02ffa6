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
another (a mirror, or a test's local server). A manifest is untrusted: each entry's `file` must be
a relative path that stays inside the models folder (trackers/run/safe_output.py's rule), URLs and
redirects must be http(s), and a manifest that is not JSON or has a missing or mistyped field is
one line (ManifestError) naming the entry and field. The commands `download` and `zoo` that print
all this are trackers/tools/zoo.py's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

from ..core import registry
from ..core.paths import RESOURCES_DIR
from .safe_output import UnsafePathError, atomic_write, commit, discard, inside, safe_relpath, temp_path_for

MANIFEST = os.path.join(RESOURCES_DIR, "model_zoo.json")
CHUNK = 256 * 1024
MANIFEST_ENV = "SIAMSCOPE_ZOO_MANIFEST"
#: a body of unknown size is cut off here: every published checkpoint is far smaller
MAX_UNKNOWN_SIZE = 2 * 1024**3


class DownloadError(OSError):
    """A checkpoint could not be fetched; the message says what to do instead."""


class DownloadCancelled(DownloadError):
    pass


@dataclasses.dataclass(frozen=True)
class ZooEntry:
    name: str  # the checkpoint's published name
    tracker: str  # the registry name of the tracker that loads it
    file: str  # path inside a model folder, as the tracker looks it up
    url: str | None  # direct download; None where only a cloud-drive folder/page exists
    page: str  # where a person downloads it by hand
    source: str  # the document that publishes it
    licence: str
    sha256: str | None = None
    size: int | None = None
    note: str = ""
    #: shipped with SiamScope: True (resources/<file's name>) or the file's name in resources/
    bundled: object = False

    def installed(self) -> str | None:
        """Path of the file in $SIAMSCOPE_MODELS or the user models folder, else the copy shipped in
        resources/ for a bundled entry, else None."""
        found = registry.find_file(self.file)
        if found is None and self.bundled:
            found = shipped(self.bundled if isinstance(self.bundled, str) else self.file)
        return found

    def manual_hint(self, dest_dir: str | None = None) -> str:
        where = os.path.join(dest_dir or registry.user_models_dir(), self.file)
        get = self.url or self.page
        return (
            f"download it by hand from {get}"
            + (f" ({self.page})" if self.url and self.page else "")
            + f" and put it at {where} (or in a folder named by SIAMSCOPE_MODELS)"
        )


@dataclasses.dataclass(frozen=True)
class Unpublished:
    tracker: str
    file: str
    note: str = ""


def manifest_path(path: str | None = None) -> str:
    """The manifest in use: `path`, else $SIAMSCOPE_ZOO_MANIFEST, else the project's."""
    return path or os.environ.get(MANIFEST_ENV) or MANIFEST


class ManifestError(DownloadError):
    """A manifest that is not JSON, lacks a field, has a field of the wrong type, a `file` that
    leads out of the models folder or a URL that is not http(s): one line naming the field."""


#: the only URL schemes a download follows, first request and redirects alike (no file:, data:, ftp:)
URL_SCHEMES = ("https", "http")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def check_url(url: str, field: str = "url") -> str:
    scheme = urllib.parse.urlsplit(url).scheme.lower() if isinstance(url, str) else ""
    if scheme not in URL_SCHEMES or not urllib.parse.urlsplit(url).netloc:
        raise DownloadError(f"{field} {url!r} is not an http(s) URL; only https:// and http:// downloads are made")
    return url


def _read_manifest(path: str | None) -> tuple[str, dict]:
    where = manifest_path(path)
    try:
        with open(where, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise ManifestError(f"cannot read the model-zoo manifest {where!r}: {e.strerror or e}") from None
    except (ValueError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        raise ManifestError(f"model-zoo manifest {where!r} is not JSON ({str(e).splitlines()[0][:120]})") from None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
        raise ManifestError(f'model-zoo manifest {where!r} has no "checkpoints" list')
    if not isinstance(data.get("unpublished", []), list):
        raise ManifestError(f'model-zoo manifest {where!r}: "unpublished" is not a list')
    return where, data


def _fields(where: str, section: str, i: int, e, required: dict, optional: dict) -> dict:
    """One entry's fields, each checked against its types; unknown fields are ignored (additive schema)."""
    label = f"model-zoo manifest {where!r}, {section}[{i}]"
    if not isinstance(e, dict):
        raise ManifestError(f"{label} is a {type(e).__name__}, not an object")
    if isinstance(e.get("name"), str):
        label += f" ({e['name']})"
    out = {}
    for key, types in {**required, **optional}.items():
        if key not in e:
            if key in required:
                raise ManifestError(f"{label}: field {key!r} is missing")
            continue
        v = e[key]
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            names = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise ManifestError(f"{label}: field {key!r} is {type(v).__name__}, expected {names}")
        out[key] = v
    try:
        out["file"] = safe_relpath(out["file"], f"{label}: field 'file'")
        if isinstance(out.get("bundled"), str):
            out["bundled"] = safe_relpath(out["bundled"], f"{label}: field 'bundled'")
        if out.get("url") is not None:
            check_url(out["url"], f"{label}: field 'url'")
    except (UnsafePathError, DownloadError) as err:
        raise ManifestError(str(err)) from None
    if out.get("sha256") is not None and not _SHA256.fullmatch(out["sha256"]):
        raise ManifestError(f"{label}: field 'sha256' is not 64 lower-case hex digits")
    if out.get("size") is not None and out["size"] < 0:
        raise ManifestError(f"{label}: field 'size' is negative")
    return out


_STR, _OPT_STR = (str,), (str, type(None))
_ENTRY_REQUIRED = {
    "name": _STR,
    "tracker": _STR,
    "file": _STR,
    "url": _OPT_STR,
    "page": _STR,
    "source": _STR,
    "licence": _STR,
}
_ENTRY_OPTIONAL = {"sha256": _OPT_STR, "size": (int, type(None)), "note": _STR, "bundled": (bool, str)}


def load_manifest(path: str | None = None) -> list[ZooEntry]:
    """The manifest's checkpoints; ManifestError (one line naming the entry and field) when it is
    not JSON, lacks a field, has one of the wrong type, a `file` that is not a relative path inside
    the models folder, or a URL that is not http(s)."""
    where, data = _read_manifest(path)
    _unpublished(where, data)  # the whole manifest is checked, whichever part is used
    return [
        ZooEntry(**_fields(where, "checkpoints", i, e, _ENTRY_REQUIRED, _ENTRY_OPTIONAL))
        for i, e in enumerate(data["checkpoints"])
    ]


def _unpublished(where: str, data: dict) -> list[Unpublished]:
    return [
        Unpublished(**_fields(where, "unpublished", i, e, {"tracker": _STR, "file": _STR}, {"note": _STR}))
        for i, e in enumerate(data.get("unpublished", []))
    ]


def load_unpublished(path: str | None = None) -> list[Unpublished]:
    return _unpublished(*_read_manifest(path))


def shipped(file: str) -> str | None:
    """The copy of `file` shipped in the project's resources/ folder (by its base name), else None."""
    p = os.path.join(RESOURCES_DIR, os.path.basename(file))
    return p if os.path.isfile(p) else None


def find(name: str, entries: list[ZooEntry] | None = None) -> list[ZooEntry]:
    """Entries by checkpoint name, tracker name or file name (a tracker may need several files)."""
    entries = load_manifest() if entries is None else entries
    hits = [e for e in entries if name in (e.name, e.tracker, e.file)]
    if not hits:
        raise KeyError(f"no checkpoint {name!r} in the model zoo; known: {', '.join(e.name for e in entries)}")
    return hits


def recorded_sha256_path(path: str) -> str:
    """Where the sha256 of a download whose manifest entry has none is recorded."""
    return path + ".sha256"


def read_recorded_sha256(path: str) -> str | None:
    try:
        with open(recorded_sha256_path(path)) as f:
            return f.read().split()[0]
    except (OSError, IndexError):
        return None


def download(
    entry: ZooEntry,
    dest_dir: str | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    timeout: float = 15.0,
    force: bool = False,
) -> str:
    """Fetch one checkpoint into dest_dir (default: the user models folder); returns its path.

    progress(done_bytes, total_bytes or None) is called after every chunk; cancelled() -> True
    stops the download (DownloadCancelled). Raises DownloadError with a message that says where
    to get the file by hand; never leaves a partial file. Where the entry has no sha256 the
    file's is recorded at `recorded_sha256_path(path)`.
    """
    dest_dir = dest_dir or registry.user_models_dir()
    try:
        # the manifest's `file` is untrusted: a plain relative path that stays in the models folder
        # (links already there followed), whoever built the entry
        dest = inside(dest_dir, entry.file, f"{entry.name}: manifest field 'file'")
    except UnsafePathError as e:
        raise DownloadError(str(e)) from None
    if not force and os.path.isfile(dest) and _matches(entry, dest):
        return dest
    if not entry.url:
        raise DownloadError(f"{entry.name} has no direct download: {entry.manual_hint(dest_dir)}")
    check_url(entry.url, f"{entry.name}: manifest field 'url'")
    request = urllib.request.Request(entry.url, headers={"User-Agent": "SiamScope"})
    try:
        response = _opener().open(request, timeout=timeout)
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as e:
        reason = (
            f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else (getattr(e, "reason", None) or e)
        )
        raise DownloadError(
            f"cannot download {entry.name} from {entry.url} ({reason}); {entry.manual_hint(dest_dir)}"
        ) from None
    hint = entry.manual_hint(dest_dir)
    try:
        _check_not_a_web_page(entry, response, dest_dir)
        announced = response.headers.get("Content-Length")
        announced = int(announced) if announced and announced.strip().isdigit() else None
        if entry.size is not None and announced is not None and announced != entry.size:
            raise DownloadError(
                f"{entry.name}: {entry.url} announces {announced} bytes, the manifest "
                f"{entry.size}; nothing was downloaded; {hint}"
            )
    except BaseException:
        response.close()
        raise
    expected = entry.size if entry.size is not None else announced
    tmp = None
    try:
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        # the folder made, the names are checked again: a link planted as a sub-folder is seen now
        dest = inside(dest_dir, entry.file, f"{entry.name}: manifest field 'file'")
        record = inside(dest_dir, recorded_sha256_path(entry.file), f"{entry.name}: its sha256 record")
        tmp = temp_path_for(dest, suffix="")  # .<file>.XXXXXXXX.part; stale ones of ours go first
        fd = os.open(tmp, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    except UnsafePathError as e:
        response.close()
        discard(tmp)
        raise DownloadError(str(e)) from None
    except OSError as e:
        response.close()
        discard(tmp)
        raise DownloadError(
            f"cannot write into {os.path.dirname(dest)!r} for {entry.name}: {e.strerror or e}"
        ) from None
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
                    raise DownloadError(
                        f"download of {entry.name} from {entry.url} broke off after {done} bytes "
                        f"({type(e).__name__}: {e}); nothing was kept; {hint}"
                    ) from None
                if not chunk:
                    break
                if done + len(chunk) > limit:
                    raise DownloadError(
                        f"{entry.name}: {entry.url} sent more than the {limit} bytes expected; "
                        f"stopped, nothing was kept; {hint}"
                    )
                try:
                    out.write(chunk)
                except OSError as e:  # a full disk: named, as every failed write is
                    raise DownloadError(
                        f"cannot write {dest!r} for {entry.name}: {e.strerror or e}; nothing was kept"
                    ) from None
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, expected)
        if expected is not None and done != expected:
            raise DownloadError(
                f"{entry.name}: got {done} bytes from {entry.url}, expected {expected}; nothing was kept; {hint}"
            )
        if entry.sha256 is not None and digest.hexdigest() != entry.sha256:
            raise DownloadError(
                f"{entry.name}: checksum mismatch (sha256 {digest.hexdigest()}, expected "
                f"{entry.sha256}); nothing was kept; {hint}"
            )
        if entry.sha256 is None:
            # nothing to verify against: record what was fetched, so a later change to the file shows
            with atomic_write(record) as f:
                f.write(f"{digest.hexdigest()}  {os.path.basename(dest)}\n")
        commit(tmp, dest)  # normal permissions (not mkstemp's 0600), then the atomic rename
        return dest
    except BaseException as e:
        # failed, cancelled or interrupted: the temporary file goes, the destination is untouched
        discard(tmp)
        if isinstance(e, OSError) and not isinstance(e, DownloadError):  # a disk error, named
            raise DownloadError(
                f"cannot write {dest!r} for {entry.name}: {e.strerror or e}; nothing was kept"
            ) from None
        raise


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects are followed only to http(s) URLs (urllib's own handler also follows ftp:)."""

    def http_error_302(self, req, fp, code, msg, headers):
        location = headers.get("location") or headers.get("uri")
        if location:
            target = urllib.parse.urljoin(req.full_url, location)
            if urllib.parse.urlsplit(target).scheme.lower() not in URL_SCHEMES:
                fp.close()
                raise urllib.error.URLError(
                    f"redirected to {target[:200]!r}, which is not an http(s) URL; not followed"
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


def _opener() -> urllib.request.OpenerDirector:
    """An opener that speaks http and https only: no file:, data: or ftp: handler at all."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


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
        raise DownloadError(
            f"{entry.url} answered with a web page, not {entry.file} (a cloud drive's "
            f"confirmation page?); {entry.manual_hint(dest_dir)}"
        )


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
