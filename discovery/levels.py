"""The levels of a search: the scheduler of the [scheduler] section with its state, the regret
a population leaves on its levels, checkpoints and archive rows; shared by both drivers.

Regret of a level = the baseline's score - the population's best (or mean) score on it. Both
drivers score a candidate relative to that level's own tuned baseline (programs:
log(AdamW loss / candidate loss), the baseline scoring 0; networks: return normalised so the
untrained agent scores 0 and tuned PPO 1), so a regret is measured in units of the baseline on
every family and regrets of different families compare directly. Scores are clipped to
[-cap, cap] first: a failed candidate (-inf) counts as -cap, so one broken run cannot own the
buffer, and a level no member was scored on has the largest regret, baseline + cap.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from disco_rules.discovery.config import Config, scheduler_config
from disco_rules.discovery.scheduler import (SchedulerConfig, describe, make_scheduler, state_from_data,
                                 state_to_data)
from disco_rules.discovery.scheduler_kinds import scheduler_kind
from disco_rules.discovery.store import SampledLevelRecord
from disco_rules.discovery.tasks import Task


class Levels:
    """A scheduler and its state: `sample` a generation's levels, `update` it with their
    regrets; `to_data`/`load` for checkpoints, `rows` for the archive."""

    def __init__(self, config: SchedulerConfig, per_generation: int, seed: int, cap: float,
                 exclude: Iterable[Task] = ()) -> None:
        self.config = config
        self.per_generation = per_generation
        self.cap = cap
        self.exclude = frozenset(exclude)  # never drawn as a new level (held-out, fixed tasks)
        self.scheduler = make_scheduler(config)
        self.state = self.scheduler.init(seed)
        self.replayed: frozenset[Task] = frozenset()  # of the last sample: replayed by choice

    @classmethod
    def from_config(cls, config: Config, cap: float, exclude: Iterable[Task] = ()
                    ) -> Levels | None:
        """The levels of `config` (seeded by the run's seed), or None for a scheduler kind that
        draws no levels ("none")."""
        if not scheduler_kind(config.scheduler.kind).draws_levels:
            return None
        return cls(scheduler_config(config.scheduler), config.scheduler.levels, config.seed,
                   cap, exclude)

    def sample(self, n: int | None = None) -> list[Task]:
        """The next `n` (default: levels per generation) distinct levels; the clock advances."""
        n = n or self.per_generation
        replays = self.scheduler.replay_count(self.state, n)
        levels, self.state = self.scheduler.sample(self.state, n, self.exclude)
        self.replayed = frozenset(levels[:replays])
        return levels

    def regrets(self, scores: Sequence[Sequence[float]] | np.ndarray,
                baseline_score: float = 0.0) -> np.ndarray:
        """Regret [L] of each level from the population's scores [members, L] (NaN: that
        member was not scored on that level): baseline_score - best (or mean) clipped score."""
        scores = np.asarray(scores, dtype=float)
        if scores.ndim != 2:
            raise ValueError(f"scores must be [members, levels], got shape {scores.shape}")
        clipped = np.clip(scores, -self.cap, self.cap)  # NaN stays NaN: not scored
        scored = ~np.isnan(clipped)
        if self.config.regret_of == "best":
            performance = np.max(np.where(scored, clipped, -np.inf), axis=0, initial=-np.inf)
        else:
            total = np.sum(np.where(scored, clipped, 0.0), axis=0)
            performance = total / np.maximum(scored.sum(axis=0), 1)
        performance = np.where(scored.any(axis=0), performance, -self.cap)
        return baseline_score - performance

    def update(self, levels: Sequence[Task], regrets: Sequence[float] | np.ndarray) -> None:
        """Give the scheduler the regrets of the levels of the last `sample`."""
        self.state = self.scheduler.update(self.state, levels, regrets)

    def rows(self, generation: int, levels: Sequence[Task],
             regrets: Sequence[float] | np.ndarray) -> list[SampledLevelRecord]:
        """Archive rows of the last sample's levels and their regrets."""
        return [SampledLevelRecord(generation=generation, position=i, task=level.key,
                                   family=level.family, params=dict(level.params),
                                   regret=float(regret), replayed=level in self.replayed)
                for i, (level, regret) in enumerate(zip(levels, regrets))]

    def to_data(self) -> dict[str, Any]:
        """The scheduler's state as plain data, for a msgpack checkpoint."""
        return state_to_data(self.state)

    def load(self, data: Mapping[str, Any]) -> None:
        """Continue from a state `to_data` wrote: later samples are the uninterrupted ones."""
        self.state = state_from_data(data)

    def describe(self) -> list[dict[str, Any]]:
        """The buffer, highest regret first (see `buffer_rows`)."""
        return describe(self.state)

    def shapes(self) -> frozenset | None:
        """The compiled shapes (`Task.shape`s) new levels can have; None if unbounded."""
        return self.config.shapes()

    def summary(self) -> str:
        """One line on what the levels are drawn from and how many compiled shapes that makes
        (with unbounded shapes, almost every new level compiles its trainers anew)."""
        families = ", ".join(sorted(self.config.families))
        line = f"{self.config.kind} levels, {self.per_generation} per generation, from {families}"
        shapes = self.shapes()
        if shapes is None:
            return (f"{line}: unbounded compiled shapes ({', '.join(self.config.unbounded())} "
                    "drawn from a range; list its values to bound them)")
        return f"{line}: at most {len(shapes)} compiled shape{'s' * (len(shapes) != 1)}"


def regret_by_family(rows: Sequence[SampledLevelRecord]) -> tuple[tuple[str, float], ...]:
    """Mean regret of a generation's levels per family, for the progress report and metrics."""
    by_family: dict[str, list[float]] = {}
    for row in rows:
        by_family.setdefault(row.family, []).append(row.regret)
    return tuple((family, float(np.mean(values))) for family, values in sorted(by_family.items()))


def buffer_rows(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The buffer of a checkpointed state (`Levels.to_data`), highest regret first: level key,
    family, params, regret, times sampled, last sampled step; for `disco inspect --levels`."""
    return describe(state_from_data(data))
