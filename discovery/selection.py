"""Choosing a winner: the meta-validated rule most surely ahead of the baseline (the highest
mean - 2 SE over the held-out samples), and the complexity-fitness hall of fame (as PySR
shows).

The choice was once the simplest rule within one paired standard error of the best (the
one-standard-error rule). In two runs it chose a short rule without bias correction whose
gain swung from task to task and did not hold on `disco transfer`, over Cautious AdamW,
whose did (docs/results.md, "Choosing among candidates within noise").

Pure functions of `Validated` rows, so a search loop, `disco inspect --pareto` and a test
can all call them on the same data; `standard_error` is the one formula for the noise they
measure, also used for a score's spread over seeds (`scoring.TaskScore.se`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Fewer results than this give no standard error worth printing: of two, it is half their gap;
# of one, none. A score from fewer says how many results it is from instead.
MIN_SAMPLES_FOR_SE = 3


@dataclass(frozen=True)
class Validated:
    """A meta-validated rule: its id, its size (statements of the simplified program) and
    its validation scores, one per held-out sample (task, or task x seed)."""

    id: int
    size: int
    scores: tuple[float, ...]

    @property
    def mean(self) -> float:
        """Mean validation score; -inf if any sample failed (-inf or NaN) or there is none."""
        values = np.asarray(self.scores, np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)):
            return -math.inf
        return float(values.mean())

    @property
    def lower_bound(self) -> float:
        """mean - 2 standard errors: how far ahead the rule surely is (-inf if it failed)."""
        return self.mean - 2 * self.standard_error

    @property
    def standard_error(self) -> float:
        """Standard error of the mean over the samples (0 with fewer than two)."""
        values = np.asarray(self.scores, np.float64)
        if values.size < 2 or not np.all(np.isfinite(values)):
            return 0.0
        return standard_error(values)


def standard_error(values: Sequence[float] | np.ndarray) -> float:
    """Standard error of the mean of `values` (sample std / sqrt(n)); nan below 2 values."""
    values = np.asarray(values, np.float64).ravel()
    if values.size < 2:
        return math.nan
    return float(values.std(ddof=1) / math.sqrt(values.size))


def _rank(candidate: Validated) -> tuple[float, int]:
    """Sort key: higher mean first, then the lower id."""
    return -candidate.mean, candidate.id


def surest(candidates: Sequence[Validated]) -> Validated | None:
    """The rule most surely ahead of the baseline: the highest lower bound, mean - 2 standard
    errors over its held-out samples (the verdict, discovery/verdict.py, asks more: its SE over
    families and Student's t), so a gain held on every task outranks a larger mean that swings from task to task; ties go to
    the smaller rule, then the lower id. None if no candidate has a finite mean."""
    ranked = ranked_by_surety(candidates)
    return ranked[0] if ranked else None


def ranked_by_surety(candidates: Sequence[Validated]) -> list[Validated]:
    """The candidates with a finite mean, surest first (`surest`'s order)."""
    finite = [c for c in candidates if math.isfinite(c.mean)]
    return sorted(finite, key=lambda c: (-c.lower_bound, c.size, c.id))


def best_per_size(candidates: Sequence[Validated]) -> list[Validated]:
    """For each program size, the rule with the best mean (ties: lower id), smallest first."""
    best: dict[int, Validated] = {}
    for candidate in sorted(candidates, key=_rank):
        best.setdefault(candidate.size, candidate)
    return [best[size] for size in sorted(best)]


def pareto_front(candidates: Sequence[Validated]) -> list[Validated]:
    """The rules no simpler rule matches: each size's best whose mean beats every smaller
    size's best (PySR's hall of fame), smallest first."""
    front: list[Validated] = []
    for candidate in best_per_size(candidates):
        if math.isfinite(candidate.mean) and (not front or candidate.mean > front[-1].mean):
            front.append(candidate)
    return front
