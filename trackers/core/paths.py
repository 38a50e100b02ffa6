"""Where the project's own files are, computed once: the modules that need them sit at different
depths of the package, so each counting its own `dirname`s would break on the next move.

Two layouts: a checkout (trackers/, models/, resources/ and pyproject.toml side by side, ../shared
beside it) and an installed package (site-packages holds trackers/, models/, app/ and the
resources as the package `siamscope_resources`, mapped from resources/ by pyproject.toml; a name
that says whose resources they are, since a top-level `resources` package would clash with any
other project's). Code asks here, never builds a path to resources/ or ../shared itself."""

from __future__ import annotations

import os

#: the folder that holds trackers/ and models/ (a checkout, or site-packages when installed)
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: the package the wheel installs resources/ as (pyproject.toml [tool.setuptools.package-dir])
RESOURCES_PACKAGE = "siamscope_resources"


def is_checkout(root: str = REPO_ROOT) -> bool:
    """`root` is a source checkout (resources/ beside pyproject.toml), not an installed tree."""
    return os.path.isfile(os.path.join(root, "pyproject.toml")) and os.path.isdir(os.path.join(root, "resources"))


def _resources_dir() -> str:
    if is_checkout():
        return os.path.join(REPO_ROOT, "resources")
    try:
        from importlib.resources import files

        # a wheel installs plain files, so the package's folder is a real path
        return str(files(RESOURCES_PACKAGE))
    except (ImportError, TypeError):  # neither a checkout nor installed: say where it was looked for
        return os.path.join(REPO_ROOT, "resources")


#: the project's own data: the default tracker's weights, the bundled NanoTrack v2 checkpoint,
#: the model zoo's manifest, the training records
RESOURCES_DIR = _resources_dir()


def resource_path(*parts: str) -> str:
    """A file the project ships, e.g. resource_path("model_zoo.json")."""
    return os.path.join(RESOURCES_DIR, *parts)


#: environment variable naming the shared data folder (seeds, data, bench, models, fixtures)
SHARED_ENV = "SIAMSCOPE_SHARED"


def shared_dir() -> str | None:
    """The shared data folder: $SIAMSCOPE_SHARED, else ../shared beside the checkout this code runs
    from; None for an installed package (no checkout, so no ../shared to default to)."""
    env = os.environ.get(SHARED_ENV)
    if env:
        return env
    if is_checkout():
        return os.path.normpath(os.path.join(REPO_ROOT, "..", "shared"))
    return None


def shared_path(*parts: str) -> str | None:
    """A path under the shared folder (shared_path("bench")), or None where there is none."""
    base = shared_dir()
    return os.path.join(base, *parts) if base else None
