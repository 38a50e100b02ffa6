"""The fixtures' seeded-weight rule `fx-seeded-v1` (shared/fixtures/README.md).

Regenerates, from a manifest alone, the exact float32 weights the reference implementations were
run with, so parity can be proved for models whose published weights are not on this machine.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch


def seeded_state_dict(manifest: dict) -> dict[str, torch.Tensor]:
    """pysot / NanoTrack fixtures: walk manifest['state_dict'] in order, drawing each tensor from one
    legacy NumPy RandomState (README.md, rule fx-seeded-v1)."""
    seed = int(str(manifest["weights"]).split(":")[1])
    rs = np.random.RandomState(seed)
    scale_log2 = (manifest.get("seeded_rule") or {}).get("scale_log2", {}) or {}
    out = {}
    for key, shape, dtype in manifest["state_dict"]:
        n = int(np.prod(shape)) if len(shape) else 1
        if "float" not in dtype:
            out[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
            continue
        if key.endswith("running_var"):
            v = rs.random_sample(n) * 0.5 + 0.75
        elif key.endswith("running_mean"):
            v = rs.standard_normal(n) * 0.1
        elif len(shape) >= 2:
            v = rs.standard_normal(n) * math.sqrt(2.0 / int(np.prod(shape[1:])))
        elif key.endswith("weight"):
            v = rs.random_sample(n) * 0.5 + 0.75
        else:
            v = rs.standard_normal(n) * 0.01
        if key in scale_log2:
            v = v * 2.0 ** scale_log2[key]
        out[key] = torch.from_numpy(v.astype(np.float32).reshape(shape))
    return out


def state_dict_sha256(state: dict[str, torch.Tensor], order) -> str:
    """sha256 of the raw little-endian bytes of the tensors concatenated in `order`."""
    h = hashlib.sha256()
    for key in order:
        h.update(
            state[key].detach().cpu().contiguous().numpy().astype(state[key].numpy().dtype.newbyteorder("<")).tobytes()
        )
    return h.hexdigest()


def seeded_state_dict_torch(manifest: dict) -> dict[str, torch.Tensor]:
    """Classic fixtures (README_classic.md: SiamFC, SiamDW, DaSiamRPN), rule "seeded:N": walk
    manifest['state_dict'] in order, drawing each float tensor with one call on a CPU
    torch.Generator seeded with N; integer tensors (BN num_batches_tracked) are zeros and draw
    nothing. Afterwards the tensors named in manifest['seeded_rule_gains'] are multiplied by their
    exact power-of-two gain (the RPN kernel layers, so random-weight scores stay finite)."""
    seed = int(str(manifest["weights"]).split(":")[1])
    g = torch.Generator()
    g.manual_seed(seed)
    gains = manifest.get("seeded_rule_gains") or {}
    out = {}
    for key, shape, dtype in manifest["state_dict"]:
        shape = tuple(shape)
        if "float" not in dtype:
            out[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
            continue
        if key.endswith("running_var"):
            t = torch.rand(shape, generator=g) * 0.5 + 0.75
        elif key.endswith("running_mean"):
            t = torch.randn(shape, generator=g) * 0.1
        elif len(shape) >= 2:
            t = torch.randn(shape, generator=g) * math.sqrt(2.0 / int(np.prod(shape[1:])))
        elif key.endswith("weight"):
            t = torch.rand(shape, generator=g) * 0.5 + 0.75
        else:
            t = torch.randn(shape, generator=g) * 0.01
        if key in gains:
            t = t * gains[key]
        out[key] = t
    return out
