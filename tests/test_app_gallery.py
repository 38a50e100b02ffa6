"""The hero screenshot and the gallery are renewed from the current window: each image's settings
hash, the app version and the image's own hash are recorded beside it
(resources/gallery/manifest.json, written by `python -m scripts.screenshot --gallery`). Any
mismatch means an image is stale or was replaced by hand: renew it with that command."""

from __future__ import annotations

import json
import os

from scripts.screenshot import GALLERY, MANIFEST, ROOT, app_version, file_sha256, settings_hash

RENEW = "renew with: xvfb-run -a -s '-screen 0 1920x1200x24' python -m scripts.screenshot --gallery"


def _manifest() -> dict:
    assert os.path.isfile(MANIFEST), f"no {MANIFEST}: {RENEW}"
    with open(MANIFEST) as f:
        return json.load(f)["images"]


def test_every_docs_image_is_listed_and_present():
    images = _manifest()
    assert set(images) == set(GALLERY), f"the manifest and the screenshot script's table differ: {RENEW}"
    for name in GALLERY:
        assert os.path.isfile(os.path.join(ROOT, "resources", name)), name


def test_no_docs_image_is_stale():
    """Stale: taken with other settings, by another app version, or changed since it was taken."""
    images, version = _manifest(), app_version()
    for name, args in GALLERY.items():
        entry = images[name]
        assert entry["settings_hash"] == settings_hash(args), f"{name}: its settings changed; {RENEW}"
        assert entry["app_version"] == version, f"{name}: taken with SiamScope {entry['app_version']}; {RENEW}"
        assert entry["png_sha256"] == file_sha256(os.path.join(ROOT, "resources", name)), (
            f"{name}: not the image the script wrote; {RENEW}"
        )


def test_a_changed_setting_is_caught():
    name, args = next(iter(GALLERY.items()))
    assert settings_hash(args + ["--frames", "81"]) != settings_hash(args)
