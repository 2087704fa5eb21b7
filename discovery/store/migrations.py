"""Older archives brought to this schema when opened, under the run's lock: schema 2 gains
an empty levels table, schema 3 the baseline's optimizer, weight decay and seeds, schema 4
its schedule, schema 5's program candidates take their population kind's name, schema 6's
scores gain the schedule of their lr (unrecorded: NULL), schema 7 an empty confirmation table
and schema 8 an empty shortlist table (`disco resume` of a finished run fills them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from disco_rules.discovery.store.errors import StoreError
from disco_rules.discovery.store.lock import RunLock
from disco_rules.discovery.store.schema import SCHEMA, SCHEMA_VERSION, TABLES

_LEVELS_SCHEMA = SCHEMA[SCHEMA.index("CREATE TABLE levels"):]  # what schema 2 -> 3 adds
# the table schema 7 -> 8 and 8 -> 9 add, and its SQL
_TABLE_ADDED = {7: ("confirmation", SCHEMA[SCHEMA.index("CREATE TABLE confirmation"):
                                           SCHEMA.index("CREATE TABLE baselines")]),
                8: ("shortlist", SCHEMA[SCHEMA.index("CREATE TABLE shortlist"):
                                        SCHEMA.index("CREATE TABLE confirmation")])}
_BASELINE_ADDED = (("optimizer", "TEXT"), ("weight_decay", "REAL"), ("seeds", "INTEGER"))


def _migration(db: sqlite3.Connection, version: int) -> str:
    """The SQL that turns an archive of schema `version` (2 to 8) into the next schema."""
    if version == 2:
        return _LEVELS_SCHEMA
    if version in _TABLE_ADDED:
        table, sql = _TABLE_ADDED[version]
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        return "" if table in tables else sql
    if version == 6:
        scored = {row[1] for row in db.execute("PRAGMA table_info(scores)")}
        return "" if "schedule" in scored else "ALTER TABLE scores ADD COLUMN schedule TEXT;"
    if version == 5:
        return "UPDATE candidates SET kind = 'programs' WHERE kind = 'program';"
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


def check_archive(path: Path, db: sqlite3.Connection, lock: RunLock | None) -> None:
    """StoreError unless the archive at `path` is SQLite of this schema; an older one is
    migrated under the run's lock (`lock`, or taken here for a reader)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if 2 <= version < SCHEMA_VERSION:
        migration = RunLock.acquire(path.parent) if lock is None else None
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
    if not TABLES <= tables:
        raise StoreError(f"{path} lacks the tables {', '.join(sorted(TABLES - tables))}; "
                         "the archive is damaged")
