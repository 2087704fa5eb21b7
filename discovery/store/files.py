"""Durable file writes in a run directory: a file replaced whole or not at all, a rename
made durable, and the folders that creating a run would add."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a crash leaves either the old file or the new one whole."""
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def missing_ancestor(path: Path) -> Path | None:
    """The outermost of `path` and its ancestors that does not exist yet (None: it exists)."""
    missing = None
    for candidate in (path, *path.parents):
        try:
            if candidate.exists():
                break
        except OSError:
            break
        missing = candidate
    return missing
