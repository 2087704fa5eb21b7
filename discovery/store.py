"""The run directory of a search: its config, an archive of every evaluated candidate, and
checkpoints, laid out so that a run can be resumed and end where an uninterrupted one ends.

    RUN_DIR/config.toml      the run's config text, written once
    RUN_DIR/archive.sqlite   SQLite (WAL): candidates, scores, validation, baselines, events,
                             levels (what the scheduler sampled each generation)
    RUN_DIR/checkpoints/     checkpoint-00000012.msgpack: the newest few, checksummed
    RUN_DIR/lock             flock'ed by the run's one writer; holds its "pid host"
    RUN_DIR/task_modules.json  where the run's own task modules were found (module -> folder),
                             so that a resume from another folder finds them (absent: none)

One process writes a run at a time: `RunStore.create` and `RunStore.open` (write=True) take
the run's `RunLock`, `close` releases it, and the kernel releases it when the writer dies.
Readers (`RunStore.open(..., write=False)`) take no lock and see one committed snapshot; a
run in a folder this process cannot write is read as it is (SQLite's immutable mode).

Nothing read from a run directory is unpickled or executed: the archive is SQL rows and a
checkpoint is msgpack of plain data. No row holds a timestamp, so two runs with the same seed
write identical archives.

Floats: SQLite stores NaN as NULL, so every REAL column reads NULL back as NaN (a value is
never None); -inf and +inf are stored as they are.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import re
import secrets
import shutil
import socket
import sqlite3
import tempfile
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.request import pathname2url

import msgpack
import numpy as np

CONFIG_NAME = "config.toml"
ARCHIVE_NAME = "archive.sqlite"
CHECKPOINT_DIR = "checkpoints"
WARM_START_DIR = "warm_start"  # copies of the programs a program search started from
LOCK_NAME = "lock"
TASK_MODULES_NAME = "task_modules.json"
CHECKPOINT_FORMAT = 1
SCHEMA_VERSION = 5  # 2: candidates.weights (network candidates); 3: the levels table;
# 4: baselines.optimizer, weight_decay and seeds (the tuned AdamW/Adam baseline);
# 5: baselines.schedule (the baseline's tuned learning-rate schedule)

_CHECKPOINT_NAME = re.compile(r"checkpoint-(\d+)\.msgpack")
_NDARRAY_EXT = 1  # msgpack ext type code of a numpy array: [dtype.str, shape, raw bytes]
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex: no object or string arrays

_SCHEMA = """
CREATE TABLE candidates (
    id          INTEGER PRIMARY KEY,
    generation  INTEGER NOT NULL,
    parent_id   INTEGER REFERENCES candidates(id) DEFERRABLE INITIALLY DEFERRED,
    kind        TEXT NOT NULL,
    text        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    fingerprint TEXT,
    fitness     REAL,
    status      TEXT NOT NULL,
    reason      TEXT,
    weights     BLOB
);
CREATE INDEX candidates_generation ON candidates(generation);
CREATE INDEX candidates_hash ON candidates(hash);
CREATE INDEX candidates_fingerprint ON candidates(fingerprint);
CREATE INDEX candidates_parent ON candidates(parent_id);
CREATE TABLE scores (
    candidate_id INTEGER NOT NULL
        REFERENCES candidates(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    task        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    score       REAL,
    loss        REAL,
    lr          REAL,
    curve       BLOB,
    PRIMARY KEY (candidate_id, task)
);
CREATE INDEX scores_generation ON scores(generation);
CREATE TABLE validation (
    candidate_id INTEGER NOT NULL
        REFERENCES candidates(id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    task        TEXT NOT NULL,
    generation  INTEGER NOT NULL,
    score       REAL,
    PRIMARY KEY (candidate_id, task)
);
CREATE INDEX validation_generation ON validation(generation);
CREATE TABLE baselines (
    task        TEXT PRIMARY KEY,
    generation  INTEGER NOT NULL,
    score       REAL,
    loss        REAL,
    lr          REAL,
    curve       BLOB,
    optimizer   TEXT,
    weight_decay REAL,
    seeds       INTEGER,
    schedule    TEXT
);
CREATE TABLE events (
    generation  INTEGER NOT NULL,
    name        TEXT NOT NULL,
    value       REAL,
    PRIMARY KEY (generation, name)
);
CREATE TABLE levels (
    generation  INTEGER NOT NULL,
    position    INTEGER NOT NULL,
    task        TEXT NOT NULL,
    family      TEXT NOT NULL,
    params      TEXT NOT NULL,
    regret      REAL,
    replayed    INTEGER NOT NULL,
    PRIMARY KEY (generation, position)
);
"""
_LEVELS_SCHEMA = _SCHEMA[_SCHEMA.index("CREATE TABLE levels"):]  # what schema 2 -> 3 adds
_BASELINE_ADDED = (("optimizer", "TEXT"), ("weight_decay", "REAL"), ("seeds", "INTEGER"))


def _migration(db: sqlite3.Connection, version: int) -> str:
    """The SQL that turns an archive of schema `version` (2, 3 or 4) into the next schema."""
    if version == 2:
        return _LEVELS_SCHEMA
    present = {row[1] for row in db.execute("PRAGMA table_info(baselines)")}
    if version == 4:  # schema-4 optimizer-task baselines trained at a constant lr
        added = ("" if "schedule" in present
                 else "ALTER TABLE baselines ADD COLUMN schedule TEXT; ")
        return added + ("UPDATE baselines SET schedule = 'constant'"
                        " WHERE loss IS NOT NULL AND schedule IS NULL;")
    added = "".join(f"ALTER TABLE baselines ADD COLUMN {name} {kind}; "
                    for name, kind in _BASELINE_ADDED if name not in present)
    # schema-3 optimizer-task baselines were AdamW with weight decay 1e-4 (seeds unrecorded)
    return added + ("UPDATE baselines SET optimizer = 'adamw', weight_decay = 1e-4"
                    " WHERE loss IS NOT NULL AND optimizer IS NULL;")

_TABLES = frozenset({"candidates", "scores", "validation", "baselines", "events", "levels"})
_MAX_SQL_INTEGER = 2 ** 63 - 1
_LOCK_WAIT_S = 0.5  # how long acquire retries, so that a `status` probing the lock is no owner

_BASELINE_COLUMNS = "task, score, loss, lr, curve, optimizer, weight_decay, seeds, schedule"
_CANDIDATE_COLUMNS = (
    "id, generation, parent_id, kind, text, hash, fingerprint, fitness, status, reason, weights"
)


class StoreError(Exception):
    """A run directory or archive that cannot be used as asked (exists, missing, inconsistent)."""


class DuplicateRecordError(StoreError):
    """A row whose key is already archived: an evaluation would be counted twice."""


class CheckpointError(StoreError):
    """No checkpoint of the run can be read back intact."""


class RunLockedError(StoreError):
    """Another process is writing the run directory (it holds the run's lock)."""


class CheckpointWarning(UserWarning):
    """The newest checkpoint was unreadable and an older one is used instead."""


Curve = tuple[float, ...]


def _as_curve(curve: Any) -> Curve | None:
    """A 1-D learning curve as a tuple of float32 values (so what is stored is what reads back)."""
    if curve is None:
        return None
    array = np.asarray(curve, dtype=np.float32)
    if array.ndim != 1:
        raise ValueError(f"a curve is 1-D, got shape {array.shape}")
    return tuple(array.tolist())


@dataclass(frozen=True, kw_only=True)
class CandidateRecord:
    """One evaluated candidate: program text (or a network's JSON description and its flat
    float32 weights), identity and fitness."""

    id: int
    generation: int
    kind: str
    text: str
    hash: str
    fitness: float
    status: str
    parent_id: int | None = None
    fingerprint: str | None = None
    reason: str | None = None
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.weights is not None:
            object.__setattr__(self, "weights", np.asarray(self.weights, np.float32).ravel())


@dataclass(frozen=True, kw_only=True)
class ScoreRecord:
    """One evaluation: a candidate trained on a task (score, final loss, tuned lr, curve)."""

    candidate_id: int
    task: str
    score: float
    loss: float = math.nan
    lr: float = math.nan
    curve: Curve | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "curve", _as_curve(self.curve))


@dataclass(frozen=True, kw_only=True)
class ValidationRecord:
    """A candidate's score on a held-out validation task."""

    candidate_id: int
    task: str
    score: float


@dataclass(frozen=True, kw_only=True)
class BaselineRecord:
    """The hand-designed baseline on a task: what regret is measured against."""

    task: str
    score: float
    loss: float = math.nan
    lr: float = math.nan
    curve: Curve | None = None
    optimizer: str | None = None  # "adamw" or "adam" (weight decay 0); None on RL tasks
    weight_decay: float = math.nan
    seeds: int | None = None  # how many seeds it was tuned on (None: not recorded)
    schedule: str | None = None  # its lr schedule's name (None: not recorded, or RL)

    def __post_init__(self) -> None:
        object.__setattr__(self, "curve", _as_curve(self.curve))

    @property
    def name(self) -> str:
        """What the baseline is, e.g. "adamw(lr=0.01, wd=0.001)" or "adam(lr=0.01, cosine)";
        "" if not recorded."""
        if self.optimizer is None:
            return ""
        decay = "" if self.optimizer == "adam" else f", wd={self.weight_decay:g}"
        schedule = "" if self.schedule in (None, "constant") else f", {self.schedule}"
        return f"{self.optimizer}(lr={self.lr:g}{decay}{schedule})"


@dataclass(frozen=True, kw_only=True)
class SampledLevelRecord:
    """A level the scheduler gave one generation: its task key, family and parameters (JSON
    numbers and strings), the population's regret on it, and whether it was replayed."""

    generation: int
    position: int
    task: str
    family: str
    params: Mapping[str, Any]
    regret: float
    replayed: bool


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """A run counter of one generation (evaluations, cache hits, best, median, ...)."""

    generation: int
    name: str
    value: float


def _to_sql(value: float) -> float | None:
    """A float for a REAL column: NaN becomes NULL, as SQLite would make it anyway."""
    value = float(value)
    return None if math.isnan(value) else value


def _from_sql(value: float | None) -> float:
    """A REAL column's value as a float: NULL reads back as NaN."""
    return math.nan if value is None else float(value)


def _encode_curve(curve: Curve | None) -> bytes | None:
    """A curve as little-endian float32 bytes."""
    return None if curve is None else np.asarray(curve, dtype="<f4").tobytes()


def _decode_curve(blob: bytes | None) -> Curve | None:
    """The inverse of `_encode_curve`."""
    return None if blob is None else tuple(np.frombuffer(blob, dtype="<f4").tolist())


def _candidate(row: tuple) -> CandidateRecord:
    """A `candidates` row (in `_CANDIDATE_COLUMNS` order) as a record."""
    (id_, generation, parent_id, kind, text, hash_, fingerprint, fitness, status, reason,
     weights) = row
    return CandidateRecord(
        id=id_, generation=generation, parent_id=parent_id, kind=kind, text=text, hash=hash_,
        fingerprint=fingerprint, fitness=_from_sql(fitness), status=status, reason=reason,
        weights=None if weights is None else np.frombuffer(weights, dtype="<f4"),
    )


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
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _missing_ancestor(path: Path) -> Path | None:
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


def _abandon(building: Path | None, lock: RunLock | None, made: Path | None) -> None:
    """Remove a run that was being built (and the ancestors made for it), releasing its lock."""
    if lock is not None:
        lock.release()
    if building is not None:
        shutil.rmtree(building, ignore_errors=True)
    if made is not None:
        shutil.rmtree(made, ignore_errors=True)


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


def _checkpoints(directory: Path) -> list[tuple[int, Path]]:
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


class ArchiveDamagedError(StoreError):
    """The archive's file is not SQLite, or SQLite finds it malformed (truncated, garbled)."""


class StorageError(StoreError):
    """The run directory's storage refused a write: a full disk, a read-only folder, an I/O
    error. What was committed before it is intact: the run continues with `disco resume`."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(message)
        self.detail = detail  # what the system said, e.g. "No space left on device"


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
    if code == _SQLITE_FULL or number in _NO_ROOM or code == _SQLITE_IOERR and _full(run_dir):
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


def _full(folder: Path) -> bool:
    """Whether the disk of `folder` has (almost) no space left: SQLite reports a write
    that found none as an I/O error where it fails to grow its shared-memory file."""
    try:
        return shutil.disk_usage(folder).free < 2 ** 20
    except OSError:
        return False


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


def _text_of(path: Path):
    """SQLite's text_factory for the archive at `path`: UTF-8 text, and ArchiveDamagedError
    for bytes that are not (a garbled row, which SQLite itself reads without complaint)."""
    def decode(data: bytes) -> str:
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise _damaged(path, f"text that is not UTF-8: {data[:24]!r}") from None

    return decode


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


class RunStore:
    """A run directory: config text, the SQLite archive and the checkpoints of one search."""

    def __init__(self, run_dir: Path, db: sqlite3.Connection, lock: RunLock | None) -> None:
        """Use `RunStore.create` or `RunStore.open`."""
        self.run_dir = run_dir
        self._db = db
        self._lock = lock

    @property
    def writable(self) -> bool:
        """Whether this store holds the run's lock (a reader's store refuses writes)."""
        return self._lock is not None

    def _require_writable(self) -> None:
        """StoreError for a write through a reader's store."""
        if self._lock is None:
            raise StoreError(f"{self.run_dir} was opened read-only (RunStore.open(write=False))")

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
            _fsync_dir(run_dir.parent)
            try:
                return cls(run_dir, cls._connect(run_dir / ARCHIVE_NAME), lock)
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
        made = _missing_ancestor(run_dir.parent)
        building, lock = None, None
        try:
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            building = run_dir.parent / f".{run_dir.name}.{secrets.token_hex(4)}.new"
            building.mkdir()
            lock = RunLock.acquire(building)
            (building / CHECKPOINT_DIR).mkdir()
            (building / WARM_START_DIR).mkdir()  # resume reads it, also when it is empty
            db = cls._connect(building / ARCHIVE_NAME)
            db.executescript(_SCHEMA)
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
                full = " (free some space)" if _full(run_dir.parent) else ""
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
            db = cls._connect(run_dir / ARCHIVE_NAME) if write else cls._reader(run_dir)
            try:
                cls._check_archive(run_dir, db, lock)
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

    @classmethod
    def _reader(cls, run_dir: Path) -> sqlite3.Connection:
        """A connection to read the archive. Where SQLite cannot make the files beside it
        that it reads a WAL-mode archive with (a folder this process cannot write, a full
        disk), the archive is read as immutable: exact unless a writer was stopped with
        committed rows still in its -wal file (StorageError then, as they would be missed)."""
        path = run_dir / ARCHIVE_NAME
        try:
            db = cls._connect(path)
        except StorageError as error:
            wal = run_dir / f"{ARCHIVE_NAME}-wal"
            if wal.exists() and wal.stat().st_size > 0:
                raise StorageError(f"{run_dir}: cannot read the run while {wal.name} holds "
                                   f"its newest rows ({error.detail}): make the run "
                                   "directory writable, or free some space on its disk",
                                   error.detail) from None
            return cls._connect(path, immutable=True)
        return db

    @staticmethod
    def _check_archive(run_dir: Path, db: sqlite3.Connection, lock: RunLock | None) -> None:
        """StoreError unless the archive is SQLite of this schema; an older one is migrated
        under the run's lock (`_migration`: schema 2 gains an empty levels table, schema 3
        the baseline's optimizer, weight decay and seeds, schema 4 its schedule)."""
        path = run_dir / ARCHIVE_NAME
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version in (2, 3, 4):
            migration = RunLock.acquire(run_dir) if lock is None else None
            try:
                # again under the lock: another process may have migrated it meanwhile
                version = db.execute("PRAGMA user_version").fetchone()[0]
                while version < SCHEMA_VERSION:
                    db.executescript(f"BEGIN; {_migration(db, version)} "
                                     f"PRAGMA user_version = {version + 1}; COMMIT;")
                    version += 1
            finally:
                if migration is not None:
                    migration.release()
        tables = {name for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if version != SCHEMA_VERSION:
            raise StoreError(f"{path}: archive schema {version}, "
                             f"this disco reads schema {SCHEMA_VERSION}")
        if not _TABLES <= tables:
            raise StoreError(f"{path} lacks the tables {', '.join(sorted(_TABLES - tables))}; "
                             "the archive is damaged")

    @staticmethod
    def _connect(path: Path, immutable: bool = False) -> sqlite3.Connection:
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
        return bool(_checkpoints(self.checkpoint_dir))

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

    # -- writing the archive ----------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed whole, or rolled back whole on any exception."""
        self._require_writable()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    @staticmethod
    def _insert(db: sqlite3.Connection, sql: str, values: tuple, what: str) -> None:
        """Insert one row; a key already present raises DuplicateRecordError naming `what`."""
        try:
            db.execute(sql, values)
        except sqlite3.IntegrityError as error:
            if "UNIQUE" in str(error):
                raise DuplicateRecordError(f"{what} is already archived") from None
            raise

    @staticmethod
    def _require_candidate(db: sqlite3.Connection, candidate_id: int | None, what: str) -> None:
        """Fail clearly (rather than at commit) when a row refers to a candidate not archived."""
        if db.execute("SELECT 1 FROM candidates WHERE id = ?", (candidate_id,)).fetchone() is None:
            raise StoreError(f"{what} refers to candidate {candidate_id}, which is not archived")

    def add_generation(
        self,
        generation: int,
        candidates: Sequence[CandidateRecord],
        scores: Sequence[ScoreRecord] = (),
        validation: Sequence[ValidationRecord] = (),
        events: Mapping[str, float] | None = None,
        levels: Sequence[SampledLevelRecord] = (),
    ) -> None:
        """Archive one generation in one transaction: every row lands, or none does.

        Generations are appended in order. A score or validation key (candidate, task) or a
        candidate id already archived raises DuplicateRecordError and nothing is written.
        """
        with self._transaction() as db:
            last = self._last_generation(db)
            if last is not None and generation <= last:
                raise StoreError(
                    f"generation {generation} is not after the archive's last ({last}): "
                    f"call rollback_after({generation - 1}) first when rerunning it"
                )
            for c in candidates:
                if c.generation != generation:
                    raise ValueError(
                        f"candidate {c.id} is of generation {c.generation}, not {generation}"
                    )
                self._insert(
                    db,
                    f"INSERT INTO candidates ({_CANDIDATE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (c.id, c.generation, c.parent_id, c.kind, c.text, c.hash, c.fingerprint,
                     _to_sql(c.fitness), c.status, c.reason,
                     None if c.weights is None else c.weights.astype("<f4").tobytes()),
                    what=f"candidate {c.id}",
                )
            for c in candidates:
                if c.parent_id is not None:
                    self._require_candidate(db, c.parent_id, f"the parent of candidate {c.id}")
            for s in scores:
                what = f"the score of candidate {s.candidate_id} on task {s.task!r}"
                self._require_candidate(db, s.candidate_id, what)
                self._insert(
                    db,
                    "INSERT INTO scores (candidate_id, task, generation, score, loss, lr, curve)"
                    " VALUES (?,?,?,?,?,?,?)",
                    (s.candidate_id, s.task, generation, _to_sql(s.score), _to_sql(s.loss),
                     _to_sql(s.lr), _encode_curve(s.curve)),
                    what=what,
                )
            for v in validation:
                what = f"the validation score of candidate {v.candidate_id} on task {v.task!r}"
                self._require_candidate(db, v.candidate_id, what)
                self._insert(
                    db,
                    "INSERT INTO validation (candidate_id, task, generation, score)"
                    " VALUES (?,?,?,?)",
                    (v.candidate_id, v.task, generation, _to_sql(v.score)),
                    what=what,
                )
            for name, value in (events or {}).items():
                db.execute(
                    "INSERT INTO events (generation, name, value) VALUES (?,?,?)",
                    (generation, name, _to_sql(value)),
                )
            for level in levels:
                if level.generation != generation:
                    raise ValueError(f"level {level.task} is of generation {level.generation}, "
                                     f"not {generation}")
                self._insert(
                    db,
                    "INSERT INTO levels (generation, position, task, family, params, regret,"
                    " replayed) VALUES (?,?,?,?,?,?,?)",
                    (generation, level.position, level.task, level.family,
                     json.dumps(dict(level.params), sort_keys=True), _to_sql(level.regret),
                     int(level.replayed)),
                    what=f"level {level.position} of generation {generation}",
                )

    def add_baseline(self, baseline: BaselineRecord, generation: int = 0) -> None:
        """Archive the baseline of a task, computed at `generation` (so rollback can drop it).

        A task's baseline is recorded once: a second raises DuplicateRecordError.
        """
        with self._transaction() as db:
            self._insert(
                db,
                "INSERT INTO baselines (task, generation, score, loss, lr, curve, optimizer,"
                " weight_decay, seeds, schedule) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (baseline.task, generation, _to_sql(baseline.score), _to_sql(baseline.loss),
                 _to_sql(baseline.lr), _encode_curve(baseline.curve), baseline.optimizer,
                 _to_sql(baseline.weight_decay), baseline.seeds, baseline.schedule),
                what=f"the baseline of task {baseline.task!r}",
            )

    def rollback_after(self, generation: int) -> int:
        """Delete every row of generations after `generation`, so a resumed run rewrites them.

        Returns the number of candidates deleted.
        """
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM candidates WHERE generation > ?", (generation,)
            ).rowcount
            for table in ("scores", "validation", "baselines", "events", "levels"):
                db.execute(f"DELETE FROM {table} WHERE generation > ?", (generation,))
        return deleted

    # -- reading the archive ----------------------------------------------------------------

    @staticmethod
    def _last_generation(db: sqlite3.Connection) -> int | None:
        """The newest generation with any row written by add_generation."""
        return db.execute(
            "SELECT MAX(g) FROM (SELECT MAX(generation) AS g FROM candidates"
            " UNION ALL SELECT MAX(generation) FROM scores"
            " UNION ALL SELECT MAX(generation) FROM validation"
            " UNION ALL SELECT MAX(generation) FROM events)"
        ).fetchone()[0]

    def last_generation(self) -> int | None:
        """The newest archived generation, or None for an empty archive."""
        return self._last_generation(self._db)

    def count(self) -> int:
        """How many candidates are archived."""
        return self._db.execute("SELECT COUNT(*) FROM candidates").fetchone()[0]

    def candidate(self, candidate_id: int) -> CandidateRecord:
        """The archived candidate with this id (KeyError if there is none)."""
        if not -_MAX_SQL_INTEGER <= candidate_id <= _MAX_SQL_INTEGER:
            raise KeyError(f"no candidate {candidate_id} in the archive")
        row = self._db.execute(
            f"SELECT {_CANDIDATE_COLUMNS} FROM candidates WHERE id = ?", (candidate_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no candidate {candidate_id} in the archive")
        return _candidate(row)

    def scores_of(self, candidate_id: int) -> list[ScoreRecord]:
        """A candidate's evaluations, by task name."""
        rows = self._db.execute(
            "SELECT task, score, loss, lr, curve FROM scores WHERE candidate_id = ? ORDER BY task",
            (candidate_id,),
        )
        return [
            ScoreRecord(candidate_id=candidate_id, task=task, score=_from_sql(score),
                        loss=_from_sql(loss), lr=_from_sql(lr), curve=_decode_curve(curve))
            for task, score, loss, lr, curve in rows
        ]

    def validation_of(self, candidate_id: int) -> list[ValidationRecord]:
        """A candidate's validation scores, by task name."""
        rows = self._db.execute(
            "SELECT task, score FROM validation WHERE candidate_id = ? ORDER BY task",
            (candidate_id,),
        )
        return [
            ValidationRecord(candidate_id=candidate_id, task=task, score=_from_sql(score))
            for task, score in rows
        ]

    def validated(self) -> list[tuple[CandidateRecord, list[ValidationRecord]]]:
        """Every meta-validated candidate with its validation scores by task, by id."""
        rows = self._db.execute(
            "SELECT candidate_id, task, score FROM validation ORDER BY candidate_id, task")
        by_id: dict[int, list[ValidationRecord]] = {}
        for candidate_id, task, score in rows:
            by_id.setdefault(candidate_id, []).append(
                ValidationRecord(candidate_id=candidate_id, task=task, score=_from_sql(score)))
        return [(self.candidate(cid), records) for cid, records in by_id.items()]

    def lineage(self, candidate_id: int) -> list[CandidateRecord]:
        """The candidate, its parent, its parent's parent, ... up to a root."""
        chain = [self.candidate(candidate_id)]
        while chain[-1].parent_id is not None:
            if len(chain) > self.count():
                raise StoreError(f"the lineage of candidate {candidate_id} has a cycle")
            chain.append(self.candidate(chain[-1].parent_id))
        return chain

    def top(self, n: int, by: str = "fitness") -> list[tuple[CandidateRecord, float]]:
        """The best `n` distinct programs (one per hash, its best row) with the value ranked by.

        `by="fitness"` ranks candidates by fitness; `by="validation"` ranks validated ones by
        their mean validation score (NaN if any is NaN). NaN ranks last; ties go to the lower id.
        """
        if n < 0:
            raise ValueError(f"top(n) needs n >= 0, got {n}")
        n = min(n, _MAX_SQL_INTEGER)  # every row, however many are asked for
        columns = ", ".join(f"c.{name.strip()}" for name in _CANDIDATE_COLUMNS.split(","))
        if by == "fitness":
            ranked = f"SELECT {columns}, c.fitness AS value FROM candidates c"
        elif by == "validation":
            ranked = (
                f"SELECT {columns}, v.value FROM candidates c JOIN ("
                "  SELECT candidate_id,"
                "         CASE WHEN COUNT(score) = COUNT(*) THEN AVG(score) END AS value"
                "  FROM validation GROUP BY candidate_id"
                ") v ON v.candidate_id = c.id"
            )
        else:
            raise ValueError(f"top() ranks by 'fitness' or 'validation', not {by!r}")
        rows = self._db.execute(
            f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER"
            f" (PARTITION BY hash ORDER BY value DESC, id) AS place FROM ({ranked}))"
            f" WHERE place = 1 ORDER BY value DESC, id LIMIT ?",
            (n,),
        )
        return [(_candidate(row[:11]), _from_sql(row[11])) for row in rows]

    def known_hashes(self, exclude_status: str | None = None) -> dict[str, int]:
        """Each archived program hash with the first (lowest-id) candidate that has it,
        skipping candidates of status `exclude_status` (e.g. "cached": not evaluated)."""
        return dict(self._db.execute(
            "SELECT hash, MIN(id) FROM candidates WHERE status IS NOT ? GROUP BY hash",
            (exclude_status,)))

    def known_fingerprints(self, exclude_status: str | None = None) -> dict[str, int]:
        """Each archived functional fingerprint with the first (lowest-id) candidate that has
        it, skipping candidates of status `exclude_status`."""
        return dict(
            self._db.execute(
                "SELECT fingerprint, MIN(id) FROM candidates"
                " WHERE fingerprint IS NOT NULL AND status IS NOT ? GROUP BY fingerprint",
                (exclude_status,),
            )
        )

    def lookup(
        self, hash: str | None = None, fingerprint: str | None = None
    ) -> CandidateRecord | None:
        """The first candidate with this hash, else the first with this fingerprint, else None."""
        if hash is None and fingerprint is None:
            raise ValueError("lookup needs a hash or a fingerprint")
        for column, value in (("hash", hash), ("fingerprint", fingerprint)):
            if value is None:
                continue
            row = self._db.execute(
                f"SELECT {_CANDIDATE_COLUMNS} FROM candidates WHERE {column} = ?"
                " ORDER BY id LIMIT 1",
                (value,),
            ).fetchone()
            if row is not None:
                return _candidate(row)
        return None

    def baseline(self, task: str) -> BaselineRecord | None:
        """The baseline of a task, or None if it has not been computed."""
        row = self._db.execute(
            f"SELECT {_BASELINE_COLUMNS} FROM baselines WHERE task = ?", (task,)
        ).fetchone()
        return None if row is None else self._baseline(row)

    def baselines(self) -> list[BaselineRecord]:
        """Every archived baseline, by task name."""
        rows = self._db.execute(f"SELECT {_BASELINE_COLUMNS} FROM baselines ORDER BY task")
        return [self._baseline(row) for row in rows]

    @staticmethod
    def _baseline(row: tuple) -> BaselineRecord:
        """A `baselines` row as a record."""
        task, score, loss, lr, curve, optimizer, weight_decay, seeds, schedule = row
        return BaselineRecord(task=task, score=_from_sql(score), loss=_from_sql(loss),
                              lr=_from_sql(lr), curve=_decode_curve(curve), optimizer=optimizer,
                              weight_decay=_from_sql(weight_decay), seeds=seeds,
                              schedule=schedule)

    def sampled_levels(self) -> list[SampledLevelRecord]:
        """The levels sampled each generation, by generation then position."""
        rows = self._db.execute(
            "SELECT generation, position, task, family, params, regret, replayed FROM levels"
            " ORDER BY generation, position")
        return [SampledLevelRecord(generation=g, position=p, task=task, family=family,
                                   params=json.loads(params), regret=_from_sql(regret),
                                   replayed=bool(replayed))
                for g, p, task, family, params, regret, replayed in rows]

    def events(self, name: str | None = None) -> list[EventRecord]:
        """The run counters (only those called `name` if given), by generation then name."""
        sql = "SELECT generation, name, value FROM events"
        args: tuple = ()
        if name is not None:
            sql, args = sql + " WHERE name = ?", (name,)
        rows = self._db.execute(sql + " ORDER BY generation, name", args)
        return [EventRecord(generation=g, name=n, value=_from_sql(v)) for g, n, v in rows]

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
        directory = self.checkpoint_dir
        path = _checkpoint_path(directory, generation)
        with self._storage():
            for leftover in directory.glob(".checkpoint-*.tmp"):
                leftover.unlink()
            write_atomically(path, data)
            older = [p for g, p in _checkpoints(directory) if g < generation]
            for stale in [p for g, p in _checkpoints(directory)
                          if g > generation] + older[keep - 1:]:
                stale.unlink()
        return path

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
        problems = []
        for generation, path in _checkpoints(self.checkpoint_dir):
            try:
                found, state = decode_checkpoint(path.read_bytes())
                if found != generation:
                    raise CheckpointError(f"holds generation {found}, not {generation}")
            except CheckpointError as error:
                warnings.warn(
                    f"checkpoint {path.name} is unreadable ({error}); trying an older one",
                    CheckpointWarning,
                    stacklevel=2,
                )
                problems.append(f"{path.name}: {error}")
                continue
            return generation, state
        if problems:
            raise CheckpointError(
                f"no intact checkpoint in {self.checkpoint_dir}: " + "; ".join(problems)
            )
        return None
