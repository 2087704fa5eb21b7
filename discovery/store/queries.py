"""Reading a run's archive: candidates, scores, lineage, rankings, baselines, levels and
run counters, and read-only SQL for questions the methods do not answer."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Sequence

from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store.errors import StoreError
from disco_rules.discovery.store.schema import FRESH_TABLES
from disco_rules.discovery.store.records import (BaselineRecord, CandidateRecord,
                                                 ConfirmationRecord, EventRecord,
                                                 SampledLevelRecord, ScoreRecord,
                                                 ValidationRecord)
from disco_rules.discovery.store.rows import (BASELINE_COLUMNS, CANDIDATE_COLUMNS, baseline_of,
                                              candidate_of, decode_curve, from_sql)

_MAX_SQL_INTEGER = 2 ** 63 - 1
# what a read-only statement may do: SELECT, read a column, call a function, recurse (WITH)
_READ_ACTIONS = frozenset({sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION,
                           sqlite3.SQLITE_RECURSIVE})
_READ_PRAGMAS = frozenset({"foreign_keys", "journal_mode", "page_count", "user_version"})


class ArchiveReader:
    """The read side of a run store, over its archive connection `_db`."""

    _db: sqlite3.Connection

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
            f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE id = ?", (candidate_id,)
        ).fetchone()
        if row is None:
            raise KeyError(f"no candidate {candidate_id} in the archive")
        return candidate_of(row)

    def scores_of(self, candidate_id: int) -> list[ScoreRecord]:
        """A candidate's evaluations, by task name."""
        rows = self._db.execute(
            "SELECT task, score, loss, lr, schedule, curve FROM scores WHERE candidate_id = ?"
            " ORDER BY task",
            (candidate_id,),
        )
        return [
            ScoreRecord(candidate_id=candidate_id, task=task, score=from_sql(score),
                        loss=from_sql(loss), lr=from_sql(lr), schedule=schedule,
                        curve=decode_curve(curve))
            for task, score, loss, lr, schedule, curve in rows
        ]

    def validation_of(self, candidate_id: int) -> list[ValidationRecord]:
        """A candidate's validation scores, by task name."""
        rows = self._db.execute(
            "SELECT task, score FROM validation WHERE candidate_id = ? ORDER BY task",
            (candidate_id,),
        )
        return [
            ValidationRecord(candidate_id=candidate_id, task=task, score=from_sql(score))
            for task, score in rows
        ]

    def confirmation_of(self, candidate_id: int) -> list[ConfirmationRecord]:
        """A candidate's confirmation on fresh seeds, by task name (none if never confirmed)."""
        return self._fresh("confirmation", candidate_id)

    def shortlist_of(self, candidate_id: int) -> list[ConfirmationRecord]:
        """A shortlisted candidate's scores on the shortlist's fresh seeds, by task name (none
        if never shortlisted)."""
        return self._fresh("shortlist", candidate_id)

    def _fresh(self, table: str, candidate_id: int) -> list[ConfirmationRecord]:
        """A candidate's rows of `table` (one of FRESH_TABLES), by task name."""
        assert table in FRESH_TABLES
        rows = self._db.execute(
            f"SELECT task, score, loss, baseline_loss, seed, seeds FROM {table}"
            " WHERE candidate_id = ? ORDER BY task", (candidate_id,))
        return [ConfirmationRecord(candidate_id=candidate_id, task=task, score=from_sql(score),
                                   loss=from_sql(loss), baseline_loss=from_sql(baseline_loss),
                                   seed=seed, seeds=seeds)
                for task, score, loss, baseline_loss, seed, seeds in rows]

    def validated(self) -> list[tuple[CandidateRecord, list[ValidationRecord]]]:
        """Every meta-validated candidate with its validation scores by task, by id."""
        rows = self._db.execute(
            "SELECT candidate_id, task, score FROM validation ORDER BY candidate_id, task")
        by_id: dict[int, list[ValidationRecord]] = {}
        for candidate_id, task, score in rows:
            by_id.setdefault(candidate_id, []).append(
                ValidationRecord(candidate_id=candidate_id, task=task, score=from_sql(score)))
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
        columns = ", ".join(f"c.{name.strip()}" for name in CANDIDATE_COLUMNS.split(","))
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
        return [(candidate_of(row[:11]), from_sql(row[11])) for row in rows]

    def known_hashes(self, exclude_status: CandidateStatus | None = None) -> dict[str, int]:
        """Each archived program hash with the first (lowest-id) candidate that has it,
        skipping candidates of status `exclude_status` (e.g. CACHED: not evaluated)."""
        return dict(self._db.execute(
            "SELECT hash, MIN(id) FROM candidates WHERE status IS NOT ? GROUP BY hash",
            (exclude_status,)))

    def known_fingerprints(self, exclude_status: CandidateStatus | None = None
                           ) -> dict[str, int]:
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
                f"SELECT {CANDIDATE_COLUMNS} FROM candidates WHERE {column} = ?"
                " ORDER BY id LIMIT 1",
                (value,),
            ).fetchone()
            if row is not None:
                return candidate_of(row)
        return None

    def baseline(self, task: str) -> BaselineRecord | None:
        """The baseline of a task, or None if it has not been computed."""
        row = self._db.execute(
            f"SELECT {BASELINE_COLUMNS} FROM baselines WHERE task = ?", (task,)
        ).fetchone()
        return None if row is None else baseline_of(row)

    def baselines(self) -> list[BaselineRecord]:
        """Every archived baseline, by task name."""
        rows = self._db.execute(f"SELECT {BASELINE_COLUMNS} FROM baselines ORDER BY task")
        return [baseline_of(row) for row in rows]

    def sampled_levels(self) -> list[SampledLevelRecord]:
        """The levels sampled each generation, by generation then position."""
        rows = self._db.execute(
            "SELECT generation, position, task, family, params, regret, replayed FROM levels"
            " ORDER BY generation, position")
        return [SampledLevelRecord(generation=g, position=p, task=task, family=family,
                                   params=json.loads(params), regret=from_sql(regret),
                                   replayed=bool(replayed))
                for g, p, task, family, params, regret, replayed in rows]

    def events(self, name: str | None = None) -> list[EventRecord]:
        """The run counters (only those called `name` if given), by generation then name."""
        sql = "SELECT generation, name, value FROM events"
        args: tuple = ()
        if name is not None:
            sql, args = sql + " WHERE name = ?", (name,)
        rows = self._db.execute(sql + " ORDER BY generation, name", args)
        return [EventRecord(generation=g, name=n, value=from_sql(v)) for g, n, v in rows]

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[tuple]:
        """The rows of one SQL statement that only reads the archive (its tables are in
        `disco_rules.discovery.store.schema`; a setting such as `PRAGMA user_version`, without
        a value, may be read too); StoreError for a statement that would change anything."""
        refused: list[str] = []

        def authorize(action: int, first: str | None, second: str | None, *_: Any) -> int:
            if action in _READ_ACTIONS or (action == sqlite3.SQLITE_PRAGMA and second is None
                                           and (first or "").lower() in _READ_PRAGMAS):
                return sqlite3.SQLITE_OK
            refused.append(first or str(action))
            return sqlite3.SQLITE_DENY

        self._db.set_authorizer(authorize)
        try:
            return self._db.execute(sql, parameters).fetchall()
        except Exception:
            if refused:
                raise StoreError(f"query() only reads the archive: {sql!r} would not "
                                 f"(it touches {refused[0]})") from None
            raise
        finally:
            self._db.set_authorizer(None)
