"""Adversarial environment design: choose the tasks (levels) on which candidates fall furthest
behind the baseline (algorithmic regret, as in GROOVE), replayed from a buffer prioritised as
in Prioritized Level Replay (PLR, Jiang et al. 2021).

Like an evosax strategy, a scheduler is functions over an immutable `SchedulerState`:
`init(seed)`, `sample(state, n) -> (levels, state)`, `update(state, levels, regrets)`. The
randomness of the sample call at step t is `np.random.default_rng([seed, t, _STREAM])`, so a
state restored from `state_to_data` samples exactly what the uninterrupted state samples.

A family's entry in `SchedulerConfig.families` fixes a parameter (a value), lets the level
draw it from a list (each listed value equally likely), or, when the parameter is not named,
draws it from the family's range. Listing every shape parameter (the ints and strings:
`Task.shape`) bounds the compiled shapes a run can produce (`SchedulerConfig.shapes`), so
JAX's persistent compilation cache pays for each shape once while horizons, batch sizes,
widths and datasets still vary from level to level.
"""

from __future__ import annotations

import itertools
import math
import numbers
from dataclasses import dataclass, replace
from typing import Any, Callable, Collection, Mapping, Sequence

import numpy as np

from disco_rules.discovery.scheduler_kinds import scheduler_kind
from disco_rules.discovery.tasks import FAMILIES, Choice, Family, Range, Task

Level = Task  # a level is any task: a family and its parameters

REGRET_OF = ("best", "mean")
_STREAM = 0x5C4ED  # keeps the scheduler's stream apart from the search's [seed, generation]
_DRAWS_PER_LEVEL = 100  # fresh draws tried for each new level before giving up on distinctness


@dataclass(frozen=True)
class SchedulerConfig:
    """What to draw new levels from (family -> parameters: a value fixes one, a list is drawn
    from, e.g. shapes, so compiled functions are reused) and the PLR knobs: buffer capacity,
    rank temperature beta, staleness coefficient rho, replay probability p. `regret_of` is
    the caller's choice."""

    families: Mapping[str, Mapping[str, object]]
    kind: str = "regret"  # a registered scheduler that draws levels (scheduler_kinds.py)
    capacity: int = 32
    temperature: float = 0.3
    staleness_coef: float = 0.3
    replay_prob: float = 0.5
    regret_of: str = "best"

    def __post_init__(self) -> None:
        try:
            draws_levels = scheduler_kind(self.kind).draws_levels
        except ValueError as error:
            raise ValueError(f"kind: {error}") from None
        if not draws_levels:
            raise ValueError(f"kind: a {self.kind!r} scheduler draws no levels")
        if self.regret_of not in REGRET_OF:
            raise ValueError(f"regret_of={self.regret_of!r} is not one of {', '.join(REGRET_OF)}")
        if isinstance(self.capacity, bool) or not isinstance(self.capacity, numbers.Integral) \
                or self.capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {self.capacity!r}")
        if not _is_number(self.temperature) or not 0 < self.temperature < math.inf:
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature!r}")
        for name in ("staleness_coef", "replay_prob"):
            value = getattr(self, name)
            if not _is_number(value) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if not isinstance(self.families, Mapping) or not self.families:
            raise ValueError(f"families must map at least one task family to its fixed "
                             f"parameters, got {self.families!r}")
        for name, params in self.families.items():
            if name not in FAMILIES:
                raise ValueError(f"families: {FAMILIES.unknown(name)}")
            try:
                _check_parameters(FAMILIES.get(name), params)
            except (TypeError, ValueError) as error:
                raise ValueError(f"families.{name}: {error}") from None

    def shapes(self) -> frozenset[tuple[str, tuple[tuple[str, object], ...]]] | None:
        """Every `Task.shape` a drawn level can have (one compiled trainer each), or None when
        a shape parameter of some family is drawn from an int range (`unbounded`). A shape
        parameter is bounded when fixed, listed, or a categorical one left out (its options)."""
        if self.unbounded():
            return None
        return frozenset(level.shape for level in self._combinations(
            lambda kind, listed: list(listed) if listed else
            list(kind.options) if isinstance(kind, Choice) else [int(kind.low)]))

    def unbounded(self) -> list[str]:
        """The shape parameters drawn from an int range ("family.param", sorted): each
        makes the number of compiled shapes unbounded in practice (e.g. horizon 10..10000)."""
        return [f"{name}.{param}" for name in sorted(self.families)
                for param, kind in sorted(FAMILIES.get(name).ranges.items())
                if isinstance(kind, Range) and kind.integer and kind.low != kind.high
                and param not in self.families[name]]

    def largest_levels(self) -> list[Task]:
        """The largest levels each family can draw, for a memory estimate: every int
        parameter at its largest value (fixed, the largest listed, or its range's top), one
        level per combination of the categorical values it can take (datasets, cells)."""
        return self._combinations(
            lambda kind, listed: sorted(set(listed or kind.options)) if isinstance(kind, Choice)
            else [max(listed) if listed else int(kind.high)])

    def _combinations(self, values_of: Callable[[Range | Choice, tuple[object, ...]],
                                                 list[object]]) -> list[Task]:
        """The levels of every combination of each family's shape parameters: a fixed value,
        else `values_of(range or choice, listed values or ())`; a float takes any one value."""
        levels = []
        for name in sorted(self.families):
            family = FAMILIES.get(name)
            fixed, listed = split_parameters(self.families[name])
            options = {}
            for param, kind in sorted(family.ranges.items()):
                if _is_float(kind):
                    options[param] = [_any_value(family, param, fixed, listed)]
                elif param in fixed:
                    options[param] = [fixed[param]]
                else:
                    options[param] = values_of(kind, listed.get(param, ()))
            levels += [Task.make(name, **dict(zip(options, values)))
                       for values in itertools.product(*options.values())]
        return levels


def split_parameters(params: Mapping[str, object]
                     ) -> tuple[dict[str, object], dict[str, tuple[object, ...]]]:
    """A family's entry of `families` as (fixed values, listed values by parameter)."""
    fixed = {k: v for k, v in params.items() if not isinstance(v, (list, tuple))}
    listed = {k: tuple(v) for k, v in params.items() if isinstance(v, (list, tuple))}
    return fixed, listed


def _check_parameters(family: Family, params: Mapping[str, object]) -> None:
    """ValueError naming the parameter (and list index) that `family` does not have or whose
    value is out of its range; an empty list is an error."""
    if not isinstance(params, Mapping):
        raise ValueError(f"expected a table of parameters, got {params!r}")
    fixed, listed = split_parameters(params)
    family.complete(fixed)
    for param in sorted(listed):
        if param not in family.ranges:
            raise ValueError(f"task family {family.name!r} has no parameter {param!r}; "
                             f"valid parameters: {', '.join(sorted(family.ranges))}")
        if not listed[param]:
            raise ValueError(f"{param}=[] is an empty list: list at least one value, or leave "
                             f"{param} out to draw it from its range")
        for i, value in enumerate(listed[param]):
            family.ranges[param].check(f"{param}[{i}]", value)


def _is_float(kind: Range | Choice) -> bool:
    """A float parameter: it fixes no array shape (`Task.floats`)."""
    return isinstance(kind, Range) and not kind.integer


def _any_value(family: Family, param: str, fixed: Mapping[str, object],
               listed: Mapping[str, tuple[object, ...]]) -> object:
    """A valid value of a float parameter, which no shape depends on."""
    if param in fixed:
        return fixed[param]
    if param in listed:
        return listed[param][0]
    return family.defaults.get(param, family.ranges[param].low)


def _is_number(value: object) -> bool:
    """A real number that is not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class LevelRecord:
    """A buffered level: its latest regret, how often it was scored, the step it last was."""

    level: Level
    regret: float
    times_sampled: int
    last_sampled: int


@dataclass(frozen=True)
class SchedulerState:
    """The seed, the PLR clock (sample calls so far) and the level buffer in insertion order."""

    seed: int
    step: int = 0
    buffer: tuple[LevelRecord, ...] = ()


class RegretScheduler:
    """Replays buffered levels with probability p (PLR's P_replay), else draws new ones from the
    families; a new level enters the buffer by regret, evicting the lowest-regret level."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config

    def init(self, seed: int) -> SchedulerState:
        """An empty buffer at step 0; `seed` (an int >= 0) fixes every later sample."""
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")
        return SchedulerState(seed=int(seed))

    def replay_probabilities(self, state: SchedulerState) -> np.ndarray:
        """PLR: P_replay = (1 - rho) P_S + rho P_C, P_S_i ∝ (1/rank_i)^(1/beta) ranking by
        regret (ties by buffer order), P_C_i ∝ step - last_sampled_i (>= 1 after an update)."""
        regrets = np.array([record.regret for record in state.buffer], dtype=float)
        if regrets.size == 0:
            return regrets
        ranks = np.empty(regrets.size)
        ranks[np.argsort(-regrets, kind="stable")] = np.arange(1, regrets.size + 1)
        by_rank = ranks ** (-1.0 / self.config.temperature)
        staleness = np.array([state.step - record.last_sampled for record in state.buffer],
                             dtype=float)
        rho = self.config.staleness_coef
        return (1 - rho) * by_rank / by_rank.sum() + rho * staleness / staleness.sum()

    def _replay_prob(self) -> float:
        return self.config.replay_prob

    def replay_count(self, state: SchedulerState, n: int) -> int:
        """How many of the `n` levels that `sample(state, n)` returns are replays (they come
        first); the rest are new draws, even one that equals a buffered level."""
        return self._replay_draw(state, n)[2]

    def _replay_draw(self, state: SchedulerState, n: int
                     ) -> tuple[np.random.Generator, np.ndarray, int]:
        """The sample's generator, the replay probabilities and the number of replays."""
        rng = np.random.default_rng([state.seed, state.step, _STREAM])
        probabilities = self.replay_probabilities(state)
        replays = min(int(rng.binomial(n, self._replay_prob())),
                      int(np.count_nonzero(probabilities)))
        return rng, probabilities, replays

    def sample(self, state: SchedulerState, n: int, exclude: Collection[Level] = ()
               ) -> tuple[list[Level], SchedulerState]:
        """`n` distinct levels: Binomial(n, p) replayed without replacement by P_replay (only
        levels of positive probability), the rest new and not in `exclude` (e.g. held-out
        tasks); the state's clock advances by one."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        rng, probabilities, replays = self._replay_draw(state, n)
        picked = rng.choice(len(state.buffer), size=replays, replace=False, p=probabilities) \
            if replays else []
        levels = [state.buffer[i].level for i in picked]
        chosen = set(levels) | set(exclude)
        families = sorted(self.config.families)
        for _ in range(n - replays):
            for _ in range(_DRAWS_PER_LEVEL):
                name = families[int(rng.integers(len(families)))]
                level = _draw(FAMILIES.get(name), self.config.families[name], rng)
                if level not in chosen:
                    break
            else:
                raise ValueError(f"families {', '.join(families)} with their fixed and listed "
                                 f"parameters yield fewer than {n} distinct levels")
            levels.append(level)
            chosen.add(level)
        return levels, replace(state, step=state.step + 1)

    def update(self, state: SchedulerState, levels: Sequence[Level],
               regrets: Sequence[float] | np.ndarray) -> SchedulerState:
        """Record the regrets of the last sample's levels: a buffered level's regret is replaced;
        a new level is added, or replaces the lowest-regret one if its regret is higher."""
        regrets = np.asarray(regrets, dtype=float)
        if regrets.shape != (len(levels),):
            raise ValueError(f"regrets must hold one value per level ({len(levels)}), "
                             f"got shape {regrets.shape}")
        for level, regret in zip(levels, regrets):
            if not math.isfinite(regret):
                raise ValueError(f"regret of {level.key} is {regret}, not a finite number")
        if state.step == 0:
            raise ValueError("update before any sample: there are no sampled levels to score")
        when = state.step - 1
        buffer = list(state.buffer)
        index = {record.level: i for i, record in enumerate(buffer)}
        for level, regret in zip(levels, regrets.tolist()):
            if level in index:
                old = buffer[index[level]]
                buffer[index[level]] = LevelRecord(level, regret, old.times_sampled + 1, when)
            elif len(buffer) < self.config.capacity:
                index[level] = len(buffer)
                buffer.append(LevelRecord(level, regret, 1, when))
            else:
                lowest = min(range(len(buffer)), key=lambda i: buffer[i].regret)
                if regret > buffer[lowest].regret:
                    del index[buffer[lowest].level]
                    index[level] = lowest
                    buffer[lowest] = LevelRecord(level, regret, 1, when)
        return replace(state, buffer=tuple(buffer))


def _draw(family: Family, params: Mapping[str, object], rng: np.random.Generator) -> Level:
    """A new level of `family`: a listed parameter takes one of its values (uniformly, in the
    order of the sorted names), a fixed one its value, the rest are drawn from their ranges.
    Without lists this is `family.sample`'s draw, so older runs sample what they did."""
    fixed, listed = split_parameters(params)
    picked = {param: listed[param][int(rng.integers(len(listed[param])))]
              for param in sorted(listed)}
    return family.sample(rng, **fixed, **picked)


class UniformScheduler(RegretScheduler):
    """The domain-randomisation baseline: every sampled level is new, drawn uniformly over the
    families; the buffer still keeps the highest-regret levels seen, for `describe`."""

    def _replay_prob(self) -> float:
        return 0.0


def make_scheduler(config: SchedulerConfig) -> RegretScheduler:
    """The scheduler of `config.kind`, as registered (discovery/scheduler_kinds.py)."""
    return scheduler_kind(config.kind).make(config)


def state_to_data(state: SchedulerState) -> dict[str, Any]:
    """The state as plain data for a msgpack checkpoint; levels as family + params."""
    return {"seed": state.seed, "step": state.step,
            "buffer": [{"family": r.level.family, "params": dict(r.level.params),
                        "regret": r.regret, "times_sampled": r.times_sampled,
                        "last_sampled": r.last_sampled} for r in state.buffer]}


def state_from_data(data: Mapping[str, Any]) -> SchedulerState:
    """The state `state_to_data` wrote; levels are checked again by `Task.make`."""
    return SchedulerState(
        seed=int(data["seed"]), step=int(data["step"]),
        buffer=tuple(LevelRecord(Task.make(r["family"], **r["params"]), float(r["regret"]),
                                 int(r["times_sampled"]), int(r["last_sampled"]))
                     for r in data["buffer"]))


def describe(state: SchedulerState) -> list[dict[str, Any]]:
    """One row per buffered level, highest regret first: key, family, params, regret, times
    sampled, last sampled step (for `disco inspect RUN --levels`)."""
    records = sorted(state.buffer, key=lambda r: (-r.regret, r.level.key))
    return [{"level": r.level.key, "family": r.level.family, "params": dict(r.level.params),
             "regret": r.regret, "times_sampled": r.times_sampled,
             "last_sampled": r.last_sampled} for r in records]
