"""The project's tracker families, one module each (SiamFC, SiamRPN / SiamRPN++, DaSiamRPN, SiamMask,
SiamDW, SiamAttn, NanoTrack, the training-free floor, the project's default tracker, OpenCV's
trackers), and the one declared list of them (`family_modules`).

Each family module keeps its variants as a table of `Variant` rows and exports their specs as
`TRACKERS`; it registers nothing itself. Importing this package adds the list to the registry's
catalogue (trackers/core/registry.py, which names no family); the modules themselves are imported
the first time the registry is asked, so importing the package is cheap. Whoever needs the
catalogue (the command line, the app, training, the tests) imports this package; third-party
trackers come in through the `siamscope.trackers` entry-point group (docs/plugins.md).
"""

from __future__ import annotations

from ..core import registry


def family_modules() -> list:
    """THE list of the project's tracker families, in the order the picker shows them. A new family:
    one module with a `TRACKERS` list, and its name here (docs/plugins.md)."""
    from . import (
        dasiamrpn,
        default,
        effnet,
        floor,
        nanotrack,
        opencv_trackers,
        siamattn,
        siamdw,
        siamfc,
        siammask,
        siamrpn,
    )

    return [nanotrack, siamrpn, siamfc, siamdw, dasiamrpn, siammask, siamattn, floor, effnet, default, opencv_trackers]


def builtin_trackers() -> list[registry.TrackerSpec]:
    """The specs of every family in `family_modules()`."""
    return [spec for module in family_modules() for spec in module.TRACKERS]


registry.add_catalogue("trackers.families", builtin_trackers)
# when no tracker is named: the default (NanoTrack v2 under the long-term guard, chosen on the
# leave-one-video-out table; NanoTrack v2's checkpoint ships in the package), else the EfficientNet
# tracker trained here, should the bundled checkpoint have been removed
registry.prefer("siamscope-default", "siamscope-effnet")
