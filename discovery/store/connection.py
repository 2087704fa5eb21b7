"""A connection to a run's archive: WAL, foreign keys on, explicit transactions, and
errors that say what is wrong (a damaged file, storage that refuses a write)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Callable
from urllib.request import pathname2url

from disco_rules.discovery.store.errors import ArchiveDamagedError, storage_error


class _Archive(sqlite3.Connection):
    """A connection to a run's archive on which a damaged file is an ArchiveDamagedError
    naming it (`sqlite3.DatabaseError` itself; its subclasses are errors of the query), and
    storage that refuses a write a StorageError."""

    path: Path

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.DatabaseError as error:
            raise _archive_error(self.path, error) from None

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.DatabaseError as error:
            raise _archive_error(self.path, error) from None


def _archive_error(path: Path, error: sqlite3.DatabaseError) -> Exception:
    """ArchiveDamagedError for a damaged file, StorageError for storage that refuses a
    write; any other error as it is."""
    if type(error) is sqlite3.DatabaseError:
        return _damaged(path, str(error))
    return storage_error(path.parent, error) or error


def _damaged(path: Path, detail: str) -> ArchiveDamagedError:
    """The error for an archive file that SQLite (or its text) says is damaged."""
    return ArchiveDamagedError(f"{path} is damaged ({detail}): restore it from a copy, or "
                               "start a new run")


def _text_of(path: Path) -> Callable[[bytes], str]:
    """SQLite's text_factory for the archive at `path`: UTF-8 text, and ArchiveDamagedError
    for bytes that are not (a garbled row, which SQLite itself reads without complaint)."""
    def decode(data: bytes) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise _damaged(path, f"text that is not UTF-8: {data[:24]!r}") from None

    return decode


def connect(path: Path, immutable: bool = False) -> sqlite3.Connection:
    """A connection in WAL mode with foreign keys on; transactions are explicit.
    `immutable`: read a file that nothing may write (SQLite takes no locks, makes no
    files beside it)."""
    try:
        if immutable:
            db = sqlite3.connect(f"file:{pathname2url(str(path.resolve()))}?immutable=1",
                                 uri=True, isolation_level=None, factory=_Archive)
        else:
            db = sqlite3.connect(path, isolation_level=None, factory=_Archive)
    except sqlite3.DatabaseError as error:
        raise _archive_error(path, error) from None
    db.path = path
    db.text_factory = _text_of(path)
    if not immutable:
        db.execute("PRAGMA journal_mode = WAL")
        # FULL: a generation committed before its checkpoint survives a power cut
        db.execute("PRAGMA synchronous = FULL")
    db.execute("PRAGMA foreign_keys = ON")
    return db
