"""What can go wrong with a run directory: the store's errors and warning, and which
OSError or SQLite error means that its storage refused a write."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path


class StoreError(Exception):
    """A run directory or archive that cannot be used as asked (exists, missing, inconsistent)."""


class DuplicateRecordError(StoreError):
    """A row whose key is already archived: an evaluation would be counted twice."""


class CheckpointError(StoreError):
    """No checkpoint of the run can be read back intact."""


class RunLockedError(StoreError):
    """Another process is writing the run directory (it holds the run's lock)."""


class ArchiveDamagedError(StoreError):
    """The archive's file is not SQLite, or SQLite finds it malformed (truncated, garbled)."""


class StorageError(StoreError):
    """The run directory's storage refused a write: a full disk, a read-only folder, an I/O
    error. What was committed before it is intact: the run continues with `disco resume`."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail  # what the system said, e.g. "No space left on device"


class CheckpointWarning(UserWarning):
    """The newest checkpoint was unreadable and an older one is used instead."""


# SQLite's primary result codes (an extended code keeps them in its low byte)
_SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_CANTOPEN, _SQLITE_FULL = 8, 10, 14, 13
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_READ_ONLY = frozenset({errno.EACCES, errno.EPERM, errno.EROFS})


def storage_error(run_dir: Path, error: OSError | sqlite3.Error) -> StorageError | None:
    """The StorageError (one line: what is wrong and what to do) for an OSError or SQLite
    error that says the run directory cannot be written; None for any other error."""
    code = getattr(error, "sqlite_errorcode", -1) & 0xFF
    number = getattr(error, "errno", None)
    detail = getattr(error, "strerror", None) or str(error)
    if code == _SQLITE_FULL or number in _NO_ROOM or code == _SQLITE_IOERR and disk_full(run_dir):
        return StorageError(f"{run_dir}: the disk is full ({detail}): free some space (or "
                            f"raise the file-size limit), then continue the run with "
                            f"`disco resume {run_dir}`; nothing archived is lost", detail)
    if code in (_SQLITE_READONLY, _SQLITE_CANTOPEN) or number in _READ_ONLY:
        return StorageError(f"{run_dir}: cannot write the run directory ({detail}): make it "
                            f"and its files writable (chmod -R u+w {run_dir}), or copy the "
                            "run somewhere writable", detail)
    if code == _SQLITE_IOERR:
        return StorageError(f"{run_dir}: cannot write the run ({detail}; a full disk, a "
                            f"file-size limit or a failing disk): fix it, then continue the "
                            f"run with `disco resume {run_dir}`", detail)
    return None


def disk_full(folder: Path) -> bool:
    """Whether the disk of `folder` has (almost) no space left: SQLite reports a write
    that found none as an I/O error where it fails to grow its shared-memory file."""
    try:
        return shutil.disk_usage(folder).free < 2 ** 20
    except OSError:
        return False
