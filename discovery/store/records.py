"""The archive's rows as frozen records: candidates, their scores and validation, baselines,
the levels sampled each generation, and run counters."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from disco_rules.discovery.inner.schedules import suffix
from disco_rules.discovery.status import CandidateStatus

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
    float32 weights), identity, fitness and status (its string, as an archive stores it,
    becomes the enum)."""

    id: int
    generation: int
    kind: str
    text: str
    hash: str
    fitness: float
    status: CandidateStatus
    parent_id: int | None = None
    fingerprint: str | None = None
    reason: str | None = None
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", CandidateStatus(self.status))
        if self.weights is not None:
            object.__setattr__(self, "weights", np.asarray(self.weights, np.float32).ravel())


@dataclass(frozen=True, kw_only=True)
class ScoreRecord:
    """One evaluation: a candidate trained on a task (score, final loss, tuned lr and
    schedule, curve)."""

    candidate_id: int
    task: str
    score: float
    loss: float = math.nan
    lr: float = math.nan
    schedule: str | None = None  # the lr's schedule (None: unrecorded, schema 6 and older)
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
class ConfirmationRecord:
    """A candidate on a held-out task on fresh seeds (the chosen winner's confirmation, or a
    shortlisted program's), and the tuned baseline beside it, each at the point it was tuned to
    (discovery/confirmation.py): log(baseline loss / its loss), both losses, and the keys' run
    seed and count."""

    candidate_id: int
    task: str
    score: float
    loss: float
    baseline_loss: float
    seed: int
    seeds: int


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
        return f"{self.optimizer}(lr={self.lr:g}{decay}{suffix(self.schedule, ', ')})"


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
