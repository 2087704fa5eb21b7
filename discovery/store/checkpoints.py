"""Checkpoints: msgpack of plain data (numpy arrays as an ext type, never a pickle) with a
sha256 checksum, one file per generation, written atomically; the newest few are kept."""

from __future__ import annotations

import hashlib
import re
import warnings
from pathlib import Path
from typing import Any, Mapping

import msgpack
import numpy as np

from disco_rules.discovery.store.errors import CheckpointError, CheckpointWarning
from disco_rules.discovery.store.files import write_atomically

CHECKPOINT_FORMAT = 1

_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)\.msgpack")
_NDARRAY_EXT = 1  # msgpack ext type code of a numpy array: [dtype.str, shape, raw bytes]
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex: no object or string arrays


def _pack_ext(value: Any) -> msgpack.ExtType | Any:
    """msgpack's fallback: numpy arrays (and jax arrays) as an ext type, numpy scalars as Python."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        array = np.asarray(value)  # tobytes() is C order; ascontiguousarray would make 0-d 1-d
        if array.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"checkpoint state: arrays of dtype {array.dtype} are not stored")
        meta = [array.dtype.str, list(array.shape), array.tobytes()]
        return msgpack.ExtType(_NDARRAY_EXT, msgpack.packb(meta, use_bin_type=True))
    raise TypeError(
        f"checkpoint state holds a {type(value).__name__}: only dicts, lists, str, int, "
        "float, bytes, bool, None and numpy arrays are stored"
    )


def _unpack_ext(code: int, data: bytes) -> np.ndarray:
    """The inverse of `_pack_ext` for arrays; any other ext type is corruption."""
    if code != _NDARRAY_EXT:
        raise ValueError(f"unknown msgpack ext type {code}")
    dtype_str, shape, raw = msgpack.unpackb(data, raw=False)
    dtype = np.dtype(dtype_str)
    if dtype.kind not in _ARRAY_KINDS:
        raise ValueError(f"array of dtype {dtype} in a checkpoint")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _checkpoint_path(directory: Path, generation: int) -> Path:
    """Where the checkpoint of `generation` lives; names sort by generation."""
    return directory / f"checkpoint-{generation:08d}.msgpack"


def checkpoints(directory: Path) -> list[tuple[int, Path]]:
    """The checkpoint files in `directory` as (generation, path), newest first."""
    found = []
    for path in directory.iterdir():
        match = _CHECKPOINT_NAME.fullmatch(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found, reverse=True)


def encode_checkpoint(generation: int, state: Mapping[str, Any]) -> bytes:
    """A checkpoint file's bytes: msgpack {format, sha256, body}, body msgpack [generation, state].

    Tuples come back as lists; numpy scalars as Python numbers; numpy arrays as numpy arrays.
    """
    body = msgpack.packb([generation, dict(state)], default=_pack_ext, use_bin_type=True)
    digest = hashlib.sha256(body).digest()
    return msgpack.packb(
        {"format": CHECKPOINT_FORMAT, "sha256": digest, "body": body}, use_bin_type=True
    )


def decode_checkpoint(data: bytes) -> tuple[int, dict[str, Any]]:
    """(generation, state) from a checkpoint file's bytes; CheckpointError saying why if corrupt."""
    try:
        wrapper = msgpack.unpackb(data, raw=False)
        if not isinstance(wrapper, dict) or not {"format", "sha256", "body"} <= wrapper.keys():
            raise CheckpointError("not a disco checkpoint")
        if wrapper["format"] != CHECKPOINT_FORMAT:
            raise CheckpointError(
                f"format {wrapper['format']!r}, this disco reads format {CHECKPOINT_FORMAT}"
            )
        body = wrapper["body"]
        if not isinstance(body, bytes) or hashlib.sha256(body).digest() != wrapper["sha256"]:
            raise CheckpointError("checksum mismatch")
        generation, state = msgpack.unpackb(
            body, raw=False, ext_hook=_unpack_ext, strict_map_key=False
        )
    except CheckpointError:
        raise
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise CheckpointError(f"undecodable ({error})") from None
    if not isinstance(generation, int) or not isinstance(state, dict):
        raise CheckpointError("not a disco checkpoint")
    return generation, state


def store_checkpoint(directory: Path, generation: int, data: bytes, keep: int) -> Path:
    """Write the checkpoint bytes of `generation` into `directory` atomically, then delete
    leftover temporary files, checkpoints of later generations and all but `keep` newest."""
    path = _checkpoint_path(directory, generation)
    for leftover in directory.glob(".checkpoint-*.tmp"):
        leftover.unlink()
    write_atomically(path, data)
    older = [p for g, p in checkpoints(directory) if g < generation]
    for stale in [p for g, p in checkpoints(directory) if g > generation] + older[keep - 1:]:
        stale.unlink()
    return path


def newest_checkpoint(directory: Path) -> tuple[int, dict[str, Any]] | None:
    """(generation, state) of the newest intact checkpoint in `directory`, or None if there
    is none; an unreadable newer one is skipped with a CheckpointWarning to the caller's
    caller, and CheckpointError if every one is unreadable."""
    problems = []
    for generation, path in checkpoints(directory):
        try:
            found, state = decode_checkpoint(path.read_bytes())
            if found != generation:
                raise CheckpointError(f"holds generation {found}, not {generation}")
        except CheckpointError as error:
            warnings.warn(
                f"checkpoint {path.name} is unreadable ({error}); trying an older one",
                CheckpointWarning,
                stacklevel=3,
            )
            problems.append(f"{path.name}: {error}")
            continue
        return generation, state
    if problems:
        raise CheckpointError(f"no intact checkpoint in {directory}: " + "; ".join(problems))
    return None
