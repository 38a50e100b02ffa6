"""Loading published checkpoints safely and strictly.

Every checkpoint goes through torch's weights-only unpickler: a file that needs arbitrary code
to load is refused with a message, never executed. The usual wrappings ('state_dict', 'model',
'module.' prefixes) are unwrapped, the format is detected from the key names, keys are mapped to
ours, and the load is strict. Any problem becomes one CheckpointError whose message names the
file, the detected format, and the missing / unexpected / shape-mismatched keys.
"""

from __future__ import annotations

import codecs
import os
import pickle
import zipfile
from collections.abc import Callable, Mapping

import numpy as np
import torch

# Published checkpoints pickle a few harmless NumPy objects next to the tensors (NanoTrack stores
# the epoch as a numpy scalar). These reconstruct plain data and run no user code.
_SAFE_NUMPY_GLOBALS = []
for _name in ("numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"):
    _mod, _, _attr = _name.rpartition(".")
    try:
        _SAFE_NUMPY_GLOBALS.append((getattr(__import__(_mod, fromlist=[_attr]), _attr), _name))
    except (ImportError, AttributeError):
        pass
_SAFE_NUMPY_GLOBALS += [np.dtype, codecs.encode]
for _cls in ("Float64DType", "Float32DType", "Int64DType", "Int32DType"):
    if hasattr(np.dtypes, _cls):
        _SAFE_NUMPY_GLOBALS.append(getattr(np.dtypes, _cls))

#: at most this many key names are listed per category in an error message
_LIST_LIMIT = 12


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says why, in full."""


def _fmt_keys(title: str, keys) -> str:
    keys = list(keys)
    if not keys:
        return ""
    shown = ", ".join(keys[:_LIST_LIMIT])
    more = f" (+{len(keys) - _LIST_LIMIT} more)" if len(keys) > _LIST_LIMIT else ""
    return f"\n  {title} ({len(keys)}): {shown}{more}"


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save since 1.6
_PICKLE_PROTO = 0x80  # legacy torch.save: a pickle stream (protocol 2+)


def _last_detail(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    detail = next((line for line in lines if "invalid load key" in line or "truncated" in line), None)
    return detail or (lines[-1] if lines else type(e).__name__)


def _check_format(path: str) -> None:
    """Name what the file is when it is plainly not a PyTorch checkpoint, before torch reads it
    (a device such as /dev/zero would be read for ever; ONNX or random bytes would otherwise be
    reported by the unpickler as 'needs arbitrary code')."""
    import stat

    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        raise CheckpointError(f"checkpoint {path!r} is a device or special file, not a checkpoint file")
    with open(path, "rb") as f:
        head = f.read(16)
    if not head:
        raise CheckpointError(f"checkpoint {path!r} is damaged or not a PyTorch checkpoint: the file is empty")
    if head.startswith(_ZIP_MAGIC):
        _check_zip_sizes(path, st.st_size)
        return
    if head[0] == _PICKLE_PROTO:
        return
    if path.lower().endswith(".onnx") or (head[:1] == b"\x08" and head[2:3] == b"\x12"):
        raise CheckpointError(
            f"checkpoint {path!r} is an ONNX model, not a PyTorch checkpoint (only opencv-nanotrack takes ONNX files)"
        )
    raise CheckpointError(
        f"checkpoint {path!r} is damaged or not a PyTorch checkpoint (unknown format: it "
        f"starts with bytes {head[:8].hex(' ')})"
    )


#: a checkpoint's entries may hold at most this much once uncompressed, in total (the largest
#: published tracker checkpoint here, SiamRPN++ R50's, is ~200 MB)
MAX_UNCOMPRESSED = 2 * 1024**3
#: a compressed entry may expand at most this many times (torch.save stores its entries
#: uncompressed; a zip bomb's zeros deflate about 1000:1)
MAX_RATIO = 100
#: entries this small are left out of the ratio check (a few bytes of text compress well)
_RATIO_MIN_BYTES = 64 * 1024


def _check_zip_sizes(path: str, file_size: int) -> None:
    """Refuse a zip checkpoint whose central directory declares more than it can hold, before torch
    reads it (torch allocates each entry at its declared size: a 1 MB zip bomb took 1.3 GB of RAM,
    a 7.7 MB one asked for 8 GB). Only the central directory is read: no entry is decompressed."""

    def refuse(why: str):
        raise CheckpointError(f"checkpoint {path!r} was refused before loading: {why} (a damaged file or a zip bomb)")

    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise CheckpointError(
            f"checkpoint {path!r} is damaged or not a PyTorch checkpoint: its zip directory "
            f"cannot be read ({type(e).__name__}: {str(e).strip()[:200]})"
        ) from None
    total = 0
    for info in infos:
        total += info.file_size
        if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
            refuse(
                f"entry {info.filename!r} is stored uncompressed but declares {info.file_size} bytes "
                f"in {info.compress_size}"
            )
        if info.compress_size > file_size:
            refuse(f"entry {info.filename!r} declares {info.compress_size} bytes in a {file_size}-byte file")
        if (
            info.compress_type != zipfile.ZIP_STORED
            and info.file_size > _RATIO_MIN_BYTES
            and info.file_size > MAX_RATIO * max(info.compress_size, 1)
        ):
            refuse(
                f"entry {info.filename!r} expands {info.compress_size} bytes to {info.file_size} (over {MAX_RATIO}:1)"
            )
    if total > MAX_UNCOMPRESSED:
        refuse(
            f"its entries declare {total / 1024**3:.1f} GB uncompressed (at most {MAX_UNCOMPRESSED / 1024**3:.0f} GB)"
        )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a checkpoint file into a flat {key: tensor} dict, unwrapping the usual containers.

    Raises CheckpointError for a missing, damaged or unsafe file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise CheckpointError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise CheckpointError(f"checkpoint {path!r} is a folder, not a file")
    _check_format(path)
    try:
        with torch.serialization.safe_globals(_SAFE_NUMPY_GLOBALS):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if any(k in str(e) for k in ("invalid load key", "truncated", "stack underflow", "could not find MARK")):
            # not a refused class: the pickle stream itself is broken
            raise CheckpointError(
                f"checkpoint {path!r} is damaged or not a PyTorch checkpoint "
                f"(its pickle data cannot be read: {_last_detail(e)})"
            ) from None
        raise CheckpointError(
            f"checkpoint {path!r} was refused: it needs arbitrary code to load, which SiamScope never "
            f"runs (weights-only loading). Detail: {first}"
        ) from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        OSError,
        ValueError,
        AttributeError,
        TypeError,
        IndexError,
        KeyError,
    ) as e:
        raise CheckpointError(
            f"checkpoint {path!r} is damaged or not a PyTorch checkpoint: "
            f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        ) from None
    return unwrap_state_dict(obj, path)


def unwrap_state_dict(obj, path: str = "<memory>") -> dict[str, torch.Tensor]:
    """Find the tensor dict inside the usual wrappings and strip 'module.' prefixes."""
    for _ in range(3):
        if isinstance(obj, Mapping) and not _is_tensor_dict(obj):
            for key in ("state_dict", "model", "net", "state"):
                if key in obj and isinstance(obj[key], Mapping):
                    obj = obj[key]
                    break
            else:
                break
    if not isinstance(obj, Mapping) or not _is_tensor_dict(obj):
        raise CheckpointError(
            f"checkpoint {path!r} holds no state_dict (found {type(obj).__name__} "
            f"with keys {list(obj)[:8] if isinstance(obj, Mapping) else '-'})"
        )
    out = {}
    for k, v in obj.items():
        if not isinstance(v, torch.Tensor):
            continue
        if k.startswith("module."):
            k = k[len("module.") :]
        out[k] = v
    return out


def _is_tensor_dict(d: Mapping) -> bool:
    return len(d) > 0 and sum(isinstance(v, torch.Tensor) for v in d.values()) >= max(1, len(d) // 2)


def load_into(
    model: torch.nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str = "<memory>",
    fmt: str = "unknown",
    key_map: Callable[[str], str | None] | None = None,
    ignore: Callable[[str], bool] = lambda k: False,
) -> None:
    """Strict load with a complete report.

    `key_map` renames checkpoint keys to the model's (return None to drop a key); `ignore` lists
    model keys a checkpoint may lack (e.g. BN `num_batches_tracked` in old checkpoints).
    """
    if key_map is not None:
        mapped = {}
        for k, v in state.items():
            nk = key_map(k)
            if nk is not None:
                mapped[nk] = v
        state = mapped
    own = model.state_dict()
    missing = [k for k in own if k not in state and not ignore(k)]
    unexpected = [k for k in state if k not in own]
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        raise CheckpointError(
            f"checkpoint {path!r} (detected format: {fmt}) does not fit {type(model).__name__}:"
            + _fmt_keys("missing keys", missing)
            + _fmt_keys("unexpected keys", unexpected)
            + _fmt_keys("shape-mismatched keys", mismatched)
        )
    full = dict(own)
    full.update({k: v.to(own[k].dtype) for k, v in state.items()})
    model.load_state_dict(full, strict=True)


def load_checkpoint(
    model: torch.nn.Module, path, fmt: str = "unknown", key_map=None, ignore=lambda k: k.endswith("num_batches_tracked")
) -> None:
    """read_state_dict + load_into: the one call trackers use."""
    load_into(model, read_state_dict(path), os.fspath(path), fmt, key_map, ignore)
