"""Writing a run's archive: one generation per transaction, whole or not at all, the
baselines, and the rollback that lets a resumed run rewrite later generations."""

from __future__ import annotations

import json
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Mapping, Sequence

from disco_rules.discovery.store.errors import DuplicateRecordError, StoreError
from disco_rules.discovery.store.lock import RunLock
from disco_rules.discovery.store.queries import ArchiveReader
from disco_rules.discovery.store.records import (BaselineRecord, CandidateRecord,
                                                 ConfirmationRecord, SampledLevelRecord,
                                                 ScoreRecord, ValidationRecord)
from disco_rules.discovery.store.rows import CANDIDATE_COLUMNS, encode_curve, to_sql
from disco_rules.discovery.store.schema import FRESH_TABLES


class ArchiveWriter(ArchiveReader):
    """The write side of a run store: it writes only while it holds the run's lock `_lock`."""

    run_dir: Path
    _lock: RunLock | None

    @property
    def writable(self) -> bool:
        """Whether this store holds the run's lock (a reader's store refuses writes)."""
        return self._lock is not None

    def _require_writable(self) -> None:
        """StoreError for a write through a reader's store."""
        if self._lock is None:
            raise StoreError(f"{self.run_dir} was opened read-only (RunStore.open(write=False))")

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

    @classmethod
    def _insert_for(cls, db: sqlite3.Connection, candidate_id: int, what: str, sql: str,
                    values: tuple) -> None:
        """Insert `what`, a row of candidate `candidate_id` (`_require_candidate`, `_insert`)."""
        cls._require_candidate(db, candidate_id, what)
        cls._insert(db, sql, values, what=what)

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
                    f"INSERT INTO candidates ({CANDIDATE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (c.id, c.generation, c.parent_id, c.kind, c.text, c.hash, c.fingerprint,
                     to_sql(c.fitness), c.status, c.reason,
                     None if c.weights is None else c.weights.astype("<f4").tobytes()),
                    what=f"candidate {c.id}",
                )
            for c in candidates:
                if c.parent_id is not None:
                    self._require_candidate(db, c.parent_id, f"the parent of candidate {c.id}")
            for s in scores:
                self._insert_for(
                    db, s.candidate_id, f"the score of candidate {s.candidate_id} on task "
                                        f"{s.task!r}",
                    "INSERT INTO scores (candidate_id, task, generation, score, loss, lr,"
                    " schedule, curve) VALUES (?,?,?,?,?,?,?,?)",
                    (s.candidate_id, s.task, generation, to_sql(s.score), to_sql(s.loss),
                     to_sql(s.lr), s.schedule, encode_curve(s.curve)))
            for v in validation:
                self._insert_for(
                    db, v.candidate_id, f"the validation score of candidate {v.candidate_id} "
                                        f"on task {v.task!r}",
                    "INSERT INTO validation (candidate_id, task, generation, score)"
                    " VALUES (?,?,?,?)",
                    (v.candidate_id, v.task, generation, to_sql(v.score)))
            for name, value in (events or {}).items():
                db.execute(
                    "INSERT INTO events (generation, name, value) VALUES (?,?,?)",
                    (generation, name, to_sql(value)),
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
                     json.dumps(dict(level.params), sort_keys=True), to_sql(level.regret),
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
                (baseline.task, generation, to_sql(baseline.score), to_sql(baseline.loss),
                 to_sql(baseline.lr), encode_curve(baseline.curve), baseline.optimizer,
                 to_sql(baseline.weight_decay), baseline.seeds, baseline.schedule),
                what=f"the baseline of task {baseline.task!r}",
            )

    def add_confirmation(self, rows: Sequence[ConfirmationRecord], generation: int) -> None:
        """Archive a candidate's confirmation, one row per held-out task, in one transaction,
        at `generation` (the run's last, so rolling it back drops them); a (candidate, task)
        already confirmed raises DuplicateRecordError and nothing is written."""
        self._add_fresh("confirmation", rows, generation)

    def add_shortlist(self, rows: Sequence[ConfirmationRecord], generation: int) -> None:
        """Archive shortlisted candidates' scores on the shortlist's fresh seeds, one row per
        candidate and held-out task, in one transaction, as `add_confirmation` does."""
        self._add_fresh("shortlist", rows, generation)

    def _add_fresh(self, table: str, rows: Sequence[ConfirmationRecord],
                   generation: int) -> None:
        """`rows` into `table` (one of FRESH_TABLES) at `generation`, all or none."""
        assert table in FRESH_TABLES
        with self._transaction() as db:
            for row in rows:
                self._insert_for(
                    db, row.candidate_id, f"the {table} row of candidate {row.candidate_id} "
                                          f"on task {row.task!r}",
                    f"INSERT INTO {table} (candidate_id, task, generation, score, loss,"
                    " baseline_loss, seed, seeds) VALUES (?,?,?,?,?,?,?,?)",
                    (row.candidate_id, row.task, generation, to_sql(row.score),
                     to_sql(row.loss), to_sql(row.baseline_loss), row.seed, row.seeds))

    def rollback_after(self, generation: int) -> int:
        """Delete every row of generations after `generation`, so a resumed run rewrites them.

        Returns the number of candidates deleted.
        """
        with self._transaction() as db:
            deleted = db.execute(
                "DELETE FROM candidates WHERE generation > ?", (generation,)
            ).rowcount
            for table in ("scores", "validation", *FRESH_TABLES, "baselines", "events",
                          "levels"):
                db.execute(f"DELETE FROM {table} WHERE generation > ?", (generation,))
        return deleted
