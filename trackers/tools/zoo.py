"""The `download` and `zoo` commands: the model zoo (trackers/run/zoo.py) at the terminal."""

from __future__ import annotations

import os
import sys

from ..core import registry
from ..run.zoo import (
    MANIFEST_ENV,
    DownloadError,
    download,
    find,
    load_manifest,
    load_unpublished,
    read_recorded_sha256,
    recorded_sha256_path,
    shipped,
)


def _terminal_progress(name: str):
    tty = sys.stderr.isatty()

    def show(done: int, total: int | None) -> None:
        if not tty:
            return
        mb = done / 1e6
        text = f"{name}: {mb:.1f} MB" + (f" / {total / 1e6:.1f} MB ({100 * done / total:.0f}%)" if total else "")
        print("\r" + text, end="", file=sys.stderr, flush=True)

    return show


def cmd_download(args) -> int:
    from .usage import UsageError

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
            print(
                f"{entry.name}: saved to {path} (NOT verified: no published sha256; its sha256 "
                f"{read_recorded_sha256(path)} is recorded in {recorded_sha256_path(path)})"
            )
    return 2 if failed else 0


def cmd_zoo(args) -> int:
    registered = {s.name for s in registry.all_trackers()}
    experimental = {s.name: registry.experimental_label(s) for s in registry.all_trackers() if s.experimental}
    for e in load_manifest(args.manifest):
        where = e.installed()
        state = where if where else ("missing" if e.url else "missing, manual download")
        if where and e.bundled and registry.find_file(e.file) is None:
            state += " (shipped with SiamScope)"
        if where and e.sha256 is None:
            state += " (not verified: no published sha256)"
        mark = "" if e.tracker in registered else "  (tracker not available)"
        note = f"  [{experimental[e.tracker]}]" if e.tracker in experimental else ""
        print(f"{e.name:32s} {e.tracker:20s} {state}{mark}{note}")
    for u in load_unpublished(args.manifest):
        # not published by its authors; the project's own checkpoint ships in resources/
        where = registry.find_file(u.file) or shipped(u.file)
        if where and where == shipped(u.file):
            where += " (shipped with SiamScope)"
        note = f"  [{experimental[u.tracker]}]" if u.tracker in experimental else ""
        print(f"{u.file:32s} {u.tracker:20s} {where or 'not published: made by the training pipeline'}{note}")
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
