"""Records to SQLite values and back. SQLite stores NaN as NULL, so every REAL column reads
NULL back as NaN (a value is never None); -inf and +inf are stored as they are."""

from __future__ import annotations

import math

import numpy as np

from disco_rules.discovery.store.records import BaselineRecord, CandidateRecord, Curve

CANDIDATE_COLUMNS = (
    "id, generation, parent_id, kind, text, hash, fingerprint, fitness, status, reason, weights"
)
BASELINE_COLUMNS = "task, score, loss, lr, curve, optimizer, weight_decay, seeds, schedule"


def to_sql(value: float) -> float | None:
    """A float for a REAL column: NaN becomes NULL, as SQLite would make it anyway."""
    value = float(value)
    return None if math.isnan(value) else value


def from_sql(value: float | None) -> float:
    """A REAL column's value as a float: NULL reads back as NaN."""
    return math.nan if value is None else float(value)


def encode_curve(curve: Curve | None) -> bytes | None:
    """A curve as little-endian float32 bytes."""
    return None if curve is None else np.asarray(curve, dtype="<f4").tobytes()


def decode_curve(blob: bytes | None) -> Curve | None:
    """The inverse of `encode_curve`."""
    return None if blob is None else tuple(np.frombuffer(blob, dtype="<f4").tolist())


def candidate_of(row: tuple) -> CandidateRecord:
    """A `candidates` row (in `CANDIDATE_COLUMNS` order) as a record."""
    (id_, generation, parent_id, kind, text, hash_, fingerprint, fitness, status, reason,
     weights) = row
    return CandidateRecord(
        id=id_, generation=generation, parent_id=parent_id, kind=kind, text=text, hash=hash_,
        fingerprint=fingerprint, fitness=from_sql(fitness), status=status, reason=reason,
        weights=None if weights is None else np.frombuffer(weights, dtype="<f4"),
    )


def baseline_of(row: tuple) -> BaselineRecord:
    """A `baselines` row (in `BASELINE_COLUMNS` order) as a record."""
    task, score, loss, lr, curve, optimizer, weight_decay, seeds, schedule = row
    return BaselineRecord(task=task, score=from_sql(score), loss=from_sql(loss),
                          lr=from_sql(lr), curve=decode_curve(curve), optimizer=optimizer,
                          weight_decay=from_sql(weight_decay), seeds=seeds, schedule=schedule)
