"""The reference fixtures (../shared/fixtures) that hold a tracker's seeded weights: one table, read by
the tests (every tracker built and run, the engines' parity, the app with SiamMask's mask) and by
`bench` (timing a tracker whose published weights are not on this machine: same network, same cost
per frame), and the writer of those weights as a checkpoint file.

The weights are regenerated from each fixture's manifest (models/seeded.py) by the rule the reference
implementation's recording used, so they are the same bit for bit as the ones the fixture's numbers
came from.
"""

from __future__ import annotations

import json
import os

#: registry name -> fixture folder (under ../shared/fixtures) whose manifest seeds that tracker's weights
SEEDED_FIXTURE = {
    "siamrpn-alex": "pysot_siamrpn_alex_dwxcorr",
    "siamrpnpp-r50": "pysot_siamrpn_r50_l234_dwxcorr",
    "siamrpnpp-mobilev2": "pysot_siamrpn_mobilev2_l234_dwxcorr",
    "siamrpnpp-r50-lt": "pysot_siamrpn_r50_l234_dwxcorr_lt",
    "siammask-r50": "pysot_siammask_r50_l3",
    "siamfc": "siamfc_alexnet",
    "siamfc-res22": "siamdw_siamfcres22",
    "siamfc-incep22": "siamdw_siamfcincep22",
    "siamfc-next22": "siamdw_siamfcnext22",
    "siamrpn-res22": "siamdw_siamrpnres22",
    "dasiamrpn-big": "dasiamrpn_big",
    "dasiamrpn-vot": "dasiamrpn_vot",
}


def read_manifest(fixture_dir: str) -> dict:
    with open(os.path.join(fixture_dir, "manifest.json")) as f:
        return json.load(f)


def seeded_state_dict_of(manifest: dict) -> dict:
    """The fixture's seeded weights as a state_dict: pysot / NanoTrack manifests carry `seeded_rule`
    (a NumPy rule), the classic ones a torch.Generator rule."""
    from models.seeded import seeded_state_dict, seeded_state_dict_torch

    return seeded_state_dict(manifest) if "seeded_rule" in manifest else seeded_state_dict_torch(manifest)


def seeded_checkpoint(fixture_dir: str, out_dir: str) -> str:
    """Write the fixture's seeded weights as a plain state_dict checkpoint; return its path."""
    import torch

    state = seeded_state_dict_of(read_manifest(fixture_dir))
    path = os.path.join(out_dir, os.path.basename(fixture_dir) + ".pth")
    torch.save(state, path)
    return path
