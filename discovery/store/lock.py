"""The run's one-writer lock: an exclusive `flock` on RUN_DIR/lock that names its holder."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from disco_rules.discovery.store.errors import RunLockedError

LOCK_NAME = "lock"
_LOCK_WAIT_S = 0.5  # how long acquire retries, so that a `status` probing the lock is no owner


class RunLock:
    """The advisory lock of a run directory: an exclusive `flock` on RUN_DIR/lock.

    The kernel drops it when the holder closes it, exits or is killed, so it is never stale.
    The file records the holder's pid and host for the message another writer gets. The
    descriptor is not inherited by child processes (Ray's), so the lock dies with its holder.
    """

    def __init__(self, fd: int) -> None:
        """Use `RunLock.acquire`."""
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: str | os.PathLike[str]) -> RunLock:
        """Take the lock of `run_dir` (an existing directory); RunLockedError naming the
        holder if another process has it."""
        path = Path(run_dir) / LOCK_NAME
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + _LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                os.close(fd)
                raise RunLockedError(
                    f"{run_dir} is being written by {_holder(path) or 'another process'}: "
                    "one process writes a run at a time (wait for it, or stop it first)"
                ) from None
            except BaseException:
                os.close(fd)
                raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return cls(fd)

    @staticmethod
    def holder(run_dir: str | os.PathLike[str]) -> str | None:
        """`pid N on HOST` while a process holds the lock of `run_dir`, else None."""
        path = Path(run_dir) / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _holder(path) or "another process"
        finally:
            os.close(fd)  # also drops the shared lock, if taken
        return None

    def release(self) -> None:
        """Let another process write the run (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holder(path: Path) -> str | None:
    """`pid N on HOST` as the holder recorded it (None if it has not yet)."""
    try:
        pid, host = path.read_text().split()
    except (OSError, ValueError):
        return None
    return f"pid {pid} on {host}"
