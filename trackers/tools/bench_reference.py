"""The reference implementations' speed, as `bench` prints it next to ours, and the targets.

Issue #11 measured the reference Python code (pysot for the SiamRPN family and SiamMask, HonglinChu's
NanoTrack) on the bag frames; those figures are quoted here, not re-measured, because the reference
code is not installed with SiamScope. A `bench --reference` that times ../shared/refcode beside ours
in the same run belongs in this module, next to the figures it would replace.
"""
from __future__ import annotations

#: Reference implementations' fps on the bag frames, 2 torch threads, quiet machine, as issue #11
#: records them (pysot for the SiamRPN family and SiamMask, HonglinChu's NanoTrack python code).
#: Not re-measured here: the reference code is not installed on this machine.
REFERENCE_FPS = {
    "siamrpn-alex": ("pysot SiamRPN (AlexNet)", 18.6),
    "siamrpnpp-mobilev2": ("pysot SiamRPN++ MobileNetV2", 9.1),
    "siamrpnpp-r50": ("pysot SiamRPN++ R50", 2.2),
    "siammask-r50": ("pysot SiamMask", 3.4),
    "nanotrack-v2": ("NanoTrack v2 python", 84.0),
}
REFERENCE_HOW = ("reference fps: issue #11's figures for the reference Python code (same bag frames, 2 torch "
                 "threads, quiet 2-core machine); not re-measured in this run")
#: the targets of issue #11, printed next to the figures
TARGET_VS_REFERENCE = 1.5
TARGET_LOADED = 0.7
TARGET_GUI = 0.9
