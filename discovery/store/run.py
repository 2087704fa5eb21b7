"""A run directory: made whole or not at all, opened by one writer (holding its lock) or
by readers (one snapshot each), with its config text, archive and checkpoints."""

from __future__ import annotations

import errno
import json
import os
import secrets
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from disco_rules.discovery.store.checkpoints import (checkpoints, encode_checkpoint,
                                                     newest_checkpoint, store_checkpoint)
from disco_rules.discovery.store.connection import connect
from disco_rules.discovery.store.errors import (RunLockedError, StorageError, StoreError,
                                                disk_full, storage_error)
from disco_rules.discovery.store.files import fsync_dir, missing_ancestor, write_atomically
from disco_rules.discovery.store.lock import RunLock
from disco_rules.discovery.store.migrations import check_archive
from disco_rules.discovery.store.schema import SCHEMA, SCHEMA_VERSION
from disco_rules.discovery.store.writes import ArchiveWriter

CONFIG_NAME = "config.toml"
ARCHIVE_NAME = "archive.sqlite"
CHECKPOINT_DIR = "checkpoints"
WARM_START_DIR = "warm_start"  # copies of the programs a program search started from
TASK_MODULES_NAME = "task_modules.json"


def _abandon(building: Path | None, lock: RunLock | None, made: Path | None) -> None:
    """Remove a run that was being built (and the ancestors made for it), releasing its lock."""
    if lock is not None:
        lock.release()
    if building is not None:
        shutil.rmtree(building, ignore_errors=True)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


class RunStore(ArchiveWriter):
    """A run directory: config text, the SQLite archive and the checkpoints of one search."""

    def __init__(self, run_dir: Path, db: sqlite3.Connection, lock: RunLock | None) -> None:
        """Use `RunStore.create` or `RunStore.open`."""
        self.run_dir = run_dir
        self._db = db
        self._lock = lock

    # -- the run directory ------------------------------------------------------------------

    @classmethod
    def create(cls, run_dir: str | os.PathLike[str], config_text: str,
               files: Mapping[str, str] | None = None) -> RunStore:
        """Start a new run in `run_dir` (absent or empty), holding its lock; never overwrites
        an existing run. `files` (relative path -> text, e.g. the warm starts) are part of it.

        The run appears whole or not at all: it is built in a hidden directory beside
        `run_dir` and renamed into place (the lock, an flock on the lock file's inode, moves
        with it). A failure leaves nothing that this call made; a crash can leave only the
        hidden `.NAME.*.new` directory.
        """
        with cls.staged(run_dir, config_text, files) as place:
            return place()

    @classmethod
    @contextmanager
    def staged(cls, run_dir: str | os.PathLike[str], config_text: str,
               files: Mapping[str, str] | None = None) -> Iterator[Callable[[], RunStore]]:
        """A new run, built hidden as `create` builds it, for work that must succeed before
        the run appears (connecting to a cluster): the block calls what this yields to put
        the run in place and open it. A block that ends before (an exception) leaves
        nothing that this made."""
        run_dir = Path(run_dir)
        building, lock, made = cls._build(run_dir, config_text, files)
        placed = False

        def place() -> RunStore:
            nonlocal placed
            try:
                os.rename(building, run_dir)  # replaces an empty directory, not a non-empty one
            except OSError as error:
                if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise StoreError(f"{run_dir} already holds a run (made by another process "
                                     "meanwhile): choose another --run-dir") from None
                raise StoreError(f"{run_dir}: cannot create the run directory "
                                 f"({error.strerror or error})") from None
            placed = True
            fsync_dir(run_dir.parent)
            try:
                return cls(run_dir, connect(run_dir / ARCHIVE_NAME), lock)
            except BaseException:
                lock.release()
                raise

        try:
            yield place
        finally:
            if not placed:
                _abandon(building, lock, made)

    @classmethod
    def _build(cls, run_dir: Path, config_text: str, files: Mapping[str, str] | None
               ) -> tuple[Path, RunLock, Path | None]:
        """The run's files in a hidden directory beside `run_dir`, locked: (that directory,
        its lock, the outermost ancestor of `run_dir` this made or None)."""
        cls._check_new(run_dir)
        made = missing_ancestor(run_dir.parent)
        building, lock = None, None
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            building = run_dir.parent / f".{run_dir.name}.{secrets.token_hex(4)}.new"
            building.mkdir()
            lock = RunLock.acquire(building)
            (building / CHECKPOINT_DIR).mkdir()
            (building / WARM_START_DIR).mkdir()  # resume reads it, also when it is empty
            db = connect(building / ARCHIVE_NAME)
            db.executescript(SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.close()  # SQLite names its WAL files by the path it opened
            for name, text in (files or {}).items():
                path = building / name
                if building.resolve() not in path.resolve().parents:
                    raise ValueError(f"run file {name!r} is outside the run directory")
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
            write_atomically(building / CONFIG_NAME, config_text.encode())
        except BaseException as error:
            _abandon(building, lock, made)
            if isinstance(error, (OSError, StorageError)):
                reason = error.detail if isinstance(error, StorageError) else error.strerror
                full = " (free some space)" if disk_full(run_dir.parent) else ""
                raise StoreError(f"{run_dir}: cannot create the run directory "
                                 f"({reason or error}){full}") from None
            raise
        return building, lock, made

    @staticmethod
    def _check_new(run_dir: Path) -> None:
        """StoreError unless `run_dir` is absent or an empty directory."""
        if (run_dir / CONFIG_NAME).exists() or (run_dir / ARCHIVE_NAME).exists():
            writer = RunLock.holder(run_dir)
            if writer is not None:
                raise RunLockedError(f"{run_dir} already holds a run, which {writer} is "
                                     "writing: choose another --run-dir")
            raise StoreError(
                f"{run_dir} already holds a run: continue it with `disco resume {run_dir}` "
                "or choose another --run-dir"
            )
        try:
            if run_dir.exists() and (not run_dir.is_dir() or any(run_dir.iterdir())):
                raise StoreError(
                    f"{run_dir} exists and is not an empty directory: choose another --run-dir"
                )
        except OSError as error:
            raise StoreError(f"{run_dir}: cannot use it as a run directory "
                             f"({error.strerror or error})") from None

    @classmethod
    def open(cls, run_dir: str | os.PathLike[str], *, write: bool = True) -> RunStore:
        """Open an existing run directory: to continue it (`write`, holding its lock;
        RunLockedError if another process writes it), or to read it (inspect, export, status)
        as one consistent snapshot, taken now, alongside a live writer."""
        run_dir = Path(run_dir)
        missing = [
            name for name in (CONFIG_NAME, ARCHIVE_NAME) if not (run_dir / name).is_file()
        ]
        if missing:
            raise StoreError(
                f"{run_dir} is not a disco run directory (no {' or '.join(missing)})"
            )
        if write and not os.access(run_dir, os.W_OK | os.X_OK):
            number = errno.EROFS if os.statvfs(run_dir).f_flag & os.ST_RDONLY else errno.EACCES
            raise storage_error(run_dir, OSError(number, os.strerror(number)))
        try:
            lock = RunLock.acquire(run_dir) if write else None
        except OSError as error:
            raise storage_error(run_dir, error) or error from None
        try:
            db = connect(run_dir / ARCHIVE_NAME) if write else cls._reader(run_dir)
            try:
                check_archive(run_dir / ARCHIVE_NAME, db, lock)
                if write:
                    (run_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)
                else:
                    db.execute("PRAGMA query_only = ON")
                    db.execute("BEGIN")  # a read transaction: one snapshot until close
                    db.execute("SELECT COUNT(*) FROM events").fetchone()
            except BaseException:
                db.close()
                raise
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        return cls(run_dir, db, lock)

    @staticmethod
    def _reader(run_dir: Path) -> sqlite3.Connection:
        """A connection to read the archive. Where SQLite cannot make the files beside it
        that it reads a WAL-mode archive with (a folder this process cannot write, a full
        disk), the archive is read as immutable: exact unless a writer was stopped with
        committed rows still in its -wal file (StorageError then, as they would be missed)."""
        path = run_dir / ARCHIVE_NAME
        try:
            db = connect(path)
        except StorageError as error:
            wal = run_dir / f"{ARCHIVE_NAME}-wal"
            if wal.exists() and wal.stat().st_size > 0:
                raise StorageError(f"{run_dir}: cannot read the run while {wal.name} holds "
                                   f"its newest rows ({error.detail}): make the run "
                                   "directory writable, or free some space on its disk",
                                   error.detail) from None
            return connect(path, immutable=True)
        return db

    @property
    def config_text(self) -> str:
        """The run's config text, as given to `create` (or `set_config_text`)."""
        try:
            return (self.run_dir / CONFIG_NAME).read_text()
        except UnicodeDecodeError:
            raise StoreError(f"{self.run_dir / CONFIG_NAME} is not UTF-8 text; the run's "
                             "config is damaged") from None

    def set_config_text(self, text: str) -> None:
        """Replace the run's config text (atomically): `resume --generations` moves the
        run's target, which `status` and later resumes read from here."""
        self._require_writable()
        with self._storage():
            write_atomically(self.run_dir / CONFIG_NAME, text.encode())

    @contextmanager
    def _storage(self) -> Iterator[None]:
        """Writes of run files, where an OSError of the storage is a StorageError."""
        try:
            yield
        except OSError as error:
            raise storage_error(self.run_dir, error) or error from None

    @property
    def checkpointed(self) -> bool:
        """Whether a generation of the run has been checkpointed (the run has begun)."""
        return bool(checkpoints(self.checkpoint_dir))

    def discard(self) -> None:
        """Remove a new run that has no checkpoint (a launch that failed before its first
        generation ended), so that nothing half-made is left behind; StoreError for a run
        that has one, or for a reader's store."""
        self._require_writable()
        if self.checkpointed:
            raise StoreError(f"{self.run_dir} has checkpoints: it is kept")
        self._db.close()
        shutil.rmtree(self.run_dir, ignore_errors=True)
        self.close()

    def task_module_folders(self) -> dict[str, str]:
        """Where the run's own task modules were found, by module name ({} if none were)."""
        path = self.run_dir / TASK_MODULES_NAME
        try:
            folders = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError) as error:
            raise StoreError(f"{path} is damaged ({error}): delete it, and resume from the "
                             "folder of the run's task modules") from None
        if not isinstance(folders, dict) or not all(isinstance(v, str)
                                                    for v in folders.values()):
            raise StoreError(f"{path} is damaged (not a JSON object of folders): delete it, "
                             "and resume from the folder of the run's task modules")
        return folders

    def close(self) -> None:
        """Close the archive, then let another process write the run."""
        self._db.close()
        if self._lock is not None:
            self._lock.release()

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- checkpoints ------------------------------------------------------------------------

    @property
    def checkpoint_dir(self) -> Path:
        """Where the checkpoints live."""
        return self.run_dir / CHECKPOINT_DIR

    def save_checkpoint(self, generation: int, state: Mapping[str, Any], keep: int = 3) -> Path:
        """Write the state after `generation` atomically and keep the newest `keep` checkpoints.

        Checkpoints of later generations (a future that resume rolled back) are deleted.
        """
        if generation < 0:
            raise ValueError(f"generation must be >= 0, got {generation}")
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self._require_writable()
        data = encode_checkpoint(generation, state)
        with self._storage():
            return store_checkpoint(self.checkpoint_dir, generation, data, keep)

    def rewind(self) -> tuple[int, dict[str, Any]] | None:
        """Where a resumed run continues: the newest intact checkpoint (None: from the
        start), with every archive row of later generations rolled back."""
        checkpoint = self.load_checkpoint()
        self.rollback_after(-1 if checkpoint is None else checkpoint[0])
        return checkpoint

    def load_checkpoint(self) -> tuple[int, dict[str, Any]] | None:
        """(generation, state) of the newest intact checkpoint, or None if there is none.

        An unreadable newer one is reported with a CheckpointWarning and skipped; if every
        checkpoint is unreadable, CheckpointError.
        """
        return newest_checkpoint(self.checkpoint_dir)
