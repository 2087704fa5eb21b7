"""Choosing a winner that does not overfit the proxies: the simplest meta-validated rule whose
score is within noise of the best (paired over the held-out samples), and the
complexity-fitness hall of fame (as PySR shows).

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


def simplest_within_noise(candidates: Sequence[Validated]) -> Validated | None:
    """The smallest rule whose mean is at least the best mean less one standard error of its
    gap to the best (the one-standard-error rule, paired): rules validated on the same samples
    are compared sample by sample, so a task's difficulty, shared by every rule, is not counted
    as noise; with unaligned samples the best's own standard error. Among equally small rules
    the higher mean, then the lower id. None if no candidate has a finite mean."""
    finite = [c for c in candidates if math.isfinite(c.mean)]
    if not finite:
        return None
    best = min(finite, key=_rank)
    close = [c for c in finite if c.mean >= best.mean - _gap_error(best, c)]
    return min(close, key=lambda c: (c.size, *_rank(c)))


def _gap_error(best: Validated, other: Validated) -> float:
    """The standard error of the mean gap between `best` and `other`: of their paired
    differences when both have the same number of samples (0 below two), else best's."""
    if len(other.scores) != len(best.scores):
        return best.standard_error
    if len(best.scores) < 2:
        return 0.0
    return standard_error(np.subtract(best.scores, other.scores))


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
