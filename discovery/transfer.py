"""Does a run's discovered optimizer transfer? (`disco transfer`) Its candidates and the
shipped optimizers against AdamW tuned per task, on the run's held-out tasks and on variants
of them the run never saw.

One protocol for every optimizer: each trains on the same tuning seeds (keys
`evaluator.task_keys(task, S, run_seed)`, so the same data splits and initialisations) at every
point of its grid (programs: the grid's lrs x schedules, a constant lr and a cosine decay;
AdamW: those x weight decays, 0 = Adam), is taken at the point with the lowest mean over those
seeds of log final validation loss (`lr_scores`, as the run tunes its baselines; where that
point sits on an edge of the lrs, tuning goes on one grid step past it while that is better,
as a user would, so no optimizer is cut short by the grid), and is then
trained at that point on as many fresh scoring seeds (keys `task_keys(task, S, test_seed)`). A
score is log(tuned AdamW loss / optimizer loss) per task and scoring seed, paired by seed: 0 =
as good as tuned AdamW, +0.1 = about 10% lower loss. Scoring on seeds no tuning saw keeps the
best-of-grid luck (larger for AdamW's 70 points than a program's 14) out of the scores. Per
family: mean ± standard error over its tasks x seeds; the verdict (`verdict.judge`) pools
every task x seed.

All tuning is in two functions, `tune_adamw` and `tune_programs`, over a `Grid`; the report
is `transfer_report.py`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from disco_rules.cluster.results import Failed
from disco_rules.discovery import compile_cache
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.schedules import CONSTANT, Point, Schedule, schedule_of
from disco_rules.discovery.inner.schedules import grid as schedule_grid
from disco_rules.discovery.inner.train import (CURVE_POINTS, LOSS_FLOOR, PAST_EDGE,
                                               TrainResult, adamw_grid, evaluate_population,
                                               lr_scores, tune_past_edges)
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.family import family
from disco_rules.discovery.verdict import Verdict, family_of, judge
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program, ProgramError
from disco_rules.dsl.slots import OPTIMIZER, slot_of

LR_GRID: tuple[float, ...] = tuple(float(lr) for lr in np.logspace(-4, -1, 7))
WEIGHT_DECAYS: tuple[float, ...] = (0.0, 1e-4, 1e-3, 1e-2, 1e-1)
# a constant lr and a cosine decay to 0 over the horizon: what a user tries first
SCHEDULES: tuple[Schedule, ...] = (CONSTANT, Schedule("cosine", 0.0, 0.0))
REFERENCES: tuple[str, ...] = ("adam", "lion", "momentum")  # shipped programs (dsl/programs)

# Width-like integer parameters of the families: the model's size, scaled by "2x width".
WIDTHS: tuple[str, ...] = ("width", "channels", "head_dim", "rank")
# Variants of each held-out task: each scales the integer parameters it names that the task's
# family has. Cheapest first: `--tasks N` cuts the suite from the end.
VARIANTS: tuple[tuple[str, dict[str, float]], ...] = (
    ("0.25x horizon", {"horizon": 0.25}),
    ("2x width", {name: 2.0 for name in WIDTHS}),
    ("4x batch size", {"batch_size": 4.0}),
    ("4x horizon", {"horizon": 4.0}),
)


# -- tuning: the grid, and the two functions that tune over it ------------------------------


@dataclass(frozen=True)
class Grid:
    """What every optimizer is tuned over: programs over `lrs` x `schedules`, AdamW over
    `lrs` x `schedules` x `weight_decays` (0 = Adam); and up to `past_edge` more lrs, one
    grid step at a time, past an edge of `lrs` that the chosen lr sits on."""

    lrs: tuple[float, ...] = LR_GRID
    weight_decays: tuple[float, ...] = WEIGHT_DECAYS
    schedules: tuple[Schedule, ...] = SCHEDULES
    past_edge: int = PAST_EDGE

    def __post_init__(self) -> None:
        object.__setattr__(self, "lrs", tuple(float(lr) for lr in self.lrs))
        object.__setattr__(self, "weight_decays", tuple(float(d) for d in self.weight_decays))

    def describe(self) -> str:
        """The grid in words, for the report."""
        return (f"programs over the lrs {', '.join(f'{lr:.2g}' for lr in self.lrs)} x the "
                f"schedules {', '.join(_schedule_text(s) for s in self.schedules)}; AdamW "
                f"over those x weight decays "
                f"({', '.join(f'{d:g}' for d in self.weight_decays)}; 0 = Adam); "
                f"where the chosen lr is the grid's largest or smallest, up to "
                f"{self.past_edge} more lrs one grid step at a time past it, while better")


def _schedule_text(schedule: Schedule) -> str:
    """A schedule in words: its name, and its fractions where they matter."""
    if schedule.name == "constant":
        return "constant"
    warmup = f"warm-up {schedule.warmup:g}, " if schedule.warmup else ""
    return f"{schedule.name} ({warmup}to {schedule.final:g} of the peak)"


GRID = Grid()  # the protocol's grid; `disco transfer` uses it


@dataclass(frozen=True)
class Tuned:
    """An optimizer at its chosen grid point on one task (NaN lr: no point worked)."""

    lr: float
    weight_decay: float  # AdamW's; NaN for a program
    losses: np.ndarray  # [S] final validation loss per seed; +inf where no point worked
    curve: np.ndarray  # [CURVE_POINTS] mean validation curve over the seeds
    schedule: Schedule = CONSTANT

    @property
    def score(self) -> float:
        """What tuning minimises (`train.lr_scores`): mean log loss over the seeds, floored at
        LOSS_FLOOR; +inf if no point worked."""
        if not np.all(np.isfinite(self.losses)):
            return math.inf
        return float(np.mean(np.log(np.maximum(self.losses, LOSS_FLOOR))))

    def point(self) -> Grid:
        """The one-point grid of the chosen point (to train it on other seeds)."""
        decays = () if math.isnan(self.weight_decay) else (self.weight_decay,)
        return Grid((self.lr,), decays, (self.schedule,))


def _choose(result: TrainResult, points: Point, decays: np.ndarray,
            schedules: Sequence[Schedule]) -> Tuned:
    """The grid point [G] of a [G, S] result with the lowest `lr_scores`; `schedules` [G]:
    each point's schedule."""
    scores = lr_scores(result)
    seeds = np.asarray(result.final_loss).shape[1]
    if not np.isfinite(scores).any():
        return Tuned(math.nan, math.nan, np.full(seeds, np.inf), np.full(CURVE_POINTS, np.nan))
    best = int(np.argmin(scores))
    return Tuned(float(points.lr[best]), float(decays[best]),
                 np.asarray(result.final_loss[best], np.float64),
                 np.mean(np.asarray(result.curve[best], np.float64), axis=0), schedules[best])


def tune_adamw(task: Task, grid: Grid, keys: jax.Array) -> Tuned:
    """AdamW (optax) trained at every (lr, schedule, weight decay) point of `grid` on every
    key in one compiled call (`train.adamw_grid`), at its best point."""
    result, points, decays, index = adamw_grid(task, grid.lrs, grid.weight_decays, keys,
                                               grid.schedules)
    return _choose(result, points, decays, [schedule_of(int(k), grid.schedules) for k in index])


def tune_programs(task: Task, encoding: Encoding, programs: Sequence[Program], grid: Grid,
                  keys: jax.Array) -> list[Tuned]:
    """Every program at every (lr, schedule) point of `grid` and every key in one interpreter
    call, each at its best point."""
    points = schedule_grid(grid.lrs, grid.schedules)
    result = evaluate_population(task, encoding, encoding.encode_population(programs),
                                 grid.lrs, keys, grid.schedules)
    result = TrainResult(*(np.asarray(x) for x in result))
    schedules = [schedule_of(k, grid.schedules) for k in range(len(points.lr))]
    return [_choose(TrainResult(*(x[p] for x in result)), points,
                    np.full(len(points.lr), np.nan), schedules)
            for p in range(len(programs))]


# -- one task -------------------------------------------------------------------------------


def paired_scores(baseline: Tuned, tuned: Tuned) -> np.ndarray:
    """log(baseline loss / optimizer loss) per seed (losses floored at LOSS_FLOOR); -inf for
    an optimizer that worked at no grid point."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (np.log(np.maximum(baseline.losses, LOSS_FLOOR))
                - np.log(np.maximum(tuned.losses, LOSS_FLOOR)))


@dataclass(frozen=True)
class TaskResult:
    """Tuned AdamW and every optimizer on one task, on the same scoring seeds."""

    task: Task
    baseline: Tuned
    optimizers: dict[str, Tuned]

    def scores(self, name: str) -> np.ndarray:
        """Optimizer `name`'s paired scores [S] against tuned AdamW."""
        return paired_scores(self.baseline, self.optimizers[name])


def _adamw_text(weight_decays: Sequence[float]) -> str:
    """AdamW over these weight decays, as the cache names it."""
    return f"optax.adamw, weight decays {list(weight_decays)}"


def _entry(task: Task, seeds: int, run_seed: int, grid: Grid, optimizer: str) -> str:
    """The cache key of one optimizer's tuning on a task: everything its result depends on."""
    return json.dumps([task.key, seeds, run_seed, list(grid.lrs), optimizer,
                       [list(schedule) for schedule in grid.schedules]])


def _stored(tuned: Tuned) -> dict[str, object]:
    return {"lr": tuned.lr, "weight_decay": tuned.weight_decay,
            "losses": tuned.losses.tolist(), "curve": tuned.curve.tolist(),
            "schedule": list(tuned.schedule)}


def _loaded(stored: Mapping[str, object]) -> Tuned:
    return Tuned(float(stored["lr"]), float(stored["weight_decay"]),
                 np.asarray(stored["losses"], np.float64), np.asarray(stored["curve"], np.float64),
                 Schedule(*stored["schedule"]))


def _scored(chosen: Tuned, train: Callable[[Grid], Tuned]) -> Tuned:
    """`chosen` with the losses and curve of `train` at its point (unchanged if none)."""
    if not math.isfinite(chosen.lr):
        return chosen
    scored = train(chosen.point())
    return replace(chosen, losses=scored.losses, curve=scored.curve)


def evaluate_task(task: Task, programs: Mapping[str, Program], encoding: Encoding,
                  seeds: int, run_seed: int, test_seed: int, grid: Grid = GRID,
                  cache: dict[str, dict] | None = None,
                  on_store: Callable[[Mapping[str, dict]], None] | None = None) -> TaskResult:
    """Tuned AdamW and each program on `task`: each tuned on the keys `task_keys(task, seeds,
    run_seed)` and scored at its chosen point on `task_keys(task, seeds, test_seed)`; the
    tunings not in `cache` (which gains every result, each also handed to `on_store` as
    {entry: value} as it is made: a long task's finished tunings can be kept), one optimizer,
    and one AdamW weight decay, at a time (bench/transfer_tunings.py measures both splits)."""
    keys = task_keys(task, seeds, run_seed)
    test_keys = task_keys(task, seeds, test_seed)
    cache = {} if cache is None else cache

    def cached(entry: str, tune: Callable[[], Tuned]) -> Tuned:
        if entry not in cache:
            value = _stored(tune())
            cache[entry] = value
            if on_store is not None:
                on_store({entry: value})
        return _loaded(cache[entry])
    names = {"AdamW": _adamw_text(grid.weight_decays)}
    names.update({name: to_text(program) for name, program in programs.items()})

    def tuning(name: str, lrs: tuple[float, ...]) -> Tuned:
        """Optimizer `name` tuned over `lrs` x the grid's schedules; AdamW also over the
        weight decays, one at a time, each cached (on a long task a call for all of them ran
        for hours, lost to any stop), then the best of them (the first, on a tie)."""
        over = replace(grid, lrs=lrs)
        if name != "AdamW":
            return cached(_entry(task, seeds, run_seed, over, names[name]),
                          lambda: tune_programs(task, encoding, [programs[name]], over, keys)[0])

        def one_decay(decay: float) -> Tuned:
            at = replace(over, weight_decays=(decay,))
            return cached(_entry(task, seeds, run_seed, at, _adamw_text(at.weight_decays)),
                          lambda: tune_adamw(task, at, keys))
        if len(over.weight_decays) == 1:  # its entry is the whole grid's
            return one_decay(over.weight_decays[0])
        return cached(_entry(task, seeds, run_seed, over, names[name]),
                      lambda: min((one_decay(d) for d in over.weight_decays),
                                  key=lambda tuned: tuned.score))

    scored = {}
    for name, text in names.items():
        chosen = tune_past_edges(lambda lrs, name=name: tuning(name, lrs), grid.lrs,
                                 grid.past_edge, lambda t: t.lr, lambda t: t.score)
        entry = json.dumps([task.key, seeds, test_seed, "scored at", chosen.lr,
                            chosen.weight_decay, text, list(chosen.schedule)])
        if name == "AdamW":
            train = lambda point: tune_adamw(task, point, test_keys)  # noqa: E731
        else:
            train = lambda point, p=programs[name]: tune_programs(  # noqa: E731
                task, encoding, [p], point, test_keys)[0]
        scored[name] = cached(entry, lambda: _scored(chosen, train))
    baseline = scored.pop("AdamW")
    return TaskResult(task, baseline, scored)


# -- the suite ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuiteTask:
    """One task of the suite: its family (the group it is pooled in), what it is ("held-out"
    or a variant's label) and the task."""

    group: str
    label: str
    task: Task


def variant(task: Task, factors: Mapping[str, float]) -> Task:
    """`task` with each integer parameter named in `factors` that it has scaled, rounded and
    kept inside its family's range."""
    params, ranges = dict(task.params), family(task.family).ranges
    changed = {name: int(min(max(round(params[name] * factor), ranges[name].low),
                             ranges[name].high))
               for name, factor in factors.items() if name in params}
    return Task.make(task.family, **{**params, **changed})


def suite(plan: TaskPlan) -> list[SuiteTask]:
    """The held-out tasks, then, variant by variant (VARIANTS lists the cheapest first, for
    `--tasks N`), the variants of every held-out task that are none of the run's tasks (nor
    the suite's already); each grouped by its family."""
    rows = [SuiteTask(family_of(task.key), "held-out", task) for task in plan.heldout]
    seen = {task.key for task in plan.all()}
    for label, factors in VARIANTS:
        for task in plan.heldout:
            new = variant(task, factors)
            if new.key not in seen:
                seen.add(new.key)
                rows.append(SuiteTask(family_of(task.key), label, new))
    return rows


# -- the whole transfer ---------------------------------------------------------------------


@dataclass(frozen=True)
class Transfer:
    """Every optimizer on the tasks of the suite evaluated (and those left out), and the
    protocol's seeds and grid."""

    evaluated: tuple[SuiteTask, ...]
    left_out: tuple[SuiteTask, ...]
    results: tuple[TaskResult, ...]
    seeds: int
    run_seed: int
    test_seed: int
    grid: Grid = field(default_factory=Grid)
    programs: tuple[tuple[str, Program], ...] = ()  # (name, program), in the tables' order

    @property
    def names(self) -> list[str]:
        """The optimizers scored, in order."""
        return [name for name, _ in self.programs]

    @property
    def groups(self) -> list[str]:
        """The families, in order of first appearance."""
        return list(dict.fromkeys(row.group for row in self.evaluated))

    def scores(self, name: str) -> dict[str, np.ndarray]:
        """Optimizer `name`'s scores pooled over the tasks x seeds of each family."""
        return group_scores(self.results, [row.group for row in self.evaluated], name)

    def verdict(self, name: str) -> Verdict:
        """Optimizer `name` against tuned AdamW over its families (`verdict.judge`)."""
        return judge(self.scores(name))

    def by_label(self, name: str) -> dict[str, np.ndarray]:
        """Optimizer `name`'s scores pooled over every family's tasks x seeds of each label
        ("held-out", then the variants), in order of first appearance."""
        return group_scores(self.results, [row.label for row in self.evaluated], name)


@dataclass(frozen=True)
class TaskItem:
    """One task of a transfer as plain data, for a pool's actor: every optimizer tuned and
    scored on it (`run_item`), with the cache entries it already has."""

    task: Task
    programs: tuple[tuple[str, Program], ...]
    seeds: int
    run_seed: int
    test_seed: int
    grid: Grid
    cached: Mapping[str, dict]


def run_item(item: TaskItem, on_store: Callable[[Mapping[str, dict]], None] | None = None
             ) -> tuple[TaskResult, dict[str, dict]]:
    """`evaluate_task` on the item's task: its result and the cache entries it added (each
    handed to `on_store` as it is made)."""
    programs = dict(item.programs)
    encoding = Encoding(max_statements=max(len(p.body) for p in programs.values()))
    cache = dict(item.cached)
    result = evaluate_task(item.task, programs, encoding, item.seeds, item.run_seed,
                           item.test_seed, item.grid, cache, on_store)
    return result, {key: value for key, value in cache.items() if key not in item.cached}


class TaskEvaluator:
    """What each actor of a transfer's pool runs: a `TaskItem` in, `run_item`'s result out,
    with JAX's persistent compilation cache in `compilation_cache` (None: JAX's setting)."""

    def __init__(self, compilation_cache: str | None = None) -> None:
        compile_cache.enable(compilation_cache)

    def __call__(self, item: TaskItem) -> tuple[TaskResult, dict[str, dict]]:
        return run_item(item)


class TaskFailed(RuntimeError):
    """Tasks a pool could not evaluate (a lost worker past its retries, an error raised in
    training); those that finished are in the cache."""


class TransferError(ValueError):
    """What a transfer cannot be asked: a program that is no optimizer, a name taken by a
    reference, RL held-out tasks, a cache file that is not one, a count that is not positive."""


def check_programs(programs: Mapping[str, Program]) -> None:
    """TransferError naming the first program a transfer cannot score beside the references,
    and why."""
    for name, program in programs.items():
        if name in REFERENCES:
            raise TransferError(f"{name}: the name of a reference optimizer; name it otherwise")
        try:
            if slot_of(program) != OPTIMIZER:
                raise ProgramError(f"{program.name}({', '.join(program.params)}) is a drift "
                                   "program")
            OPTIMIZER.check(program)
        except ProgramError as error:
            raise TransferError(f"{name}: transfer scores optimizer programs: {error}") from None


def _entries_of(task: Task, cache: Mapping[str, dict]) -> dict[str, dict]:
    """The cache entries of `task` (each key is a JSON list that starts with the task's key)."""
    prefix = json.dumps([task.key])[:-1] + ","
    return {key: value for key, value in cache.items() if key.startswith(prefix)}


def transfer(plan: TaskPlan, programs: Mapping[str, Program], *, seeds: int, run_seed: int,
             test_seed: int, grid: Grid = GRID, tasks: int | None = None,
             cache: dict[str, dict] | None = None, pool: Any = None,
             on_start: Callable[[SuiteTask], None] | None = None,
             on_store: Callable[[Mapping[str, dict]], None] | None = None,
             on_task: Callable[[SuiteTask], None] | None = None) -> Transfer:
    """Tuned AdamW and `programs` (name -> optimizer program) on the suite of `plan`'s held-out
    tasks and their variants (its first `tasks`, default all), each tuned over `grid` on the
    keys of `run_seed` and scored on those of `test_seed`; `cache` (finished tunings, JSON-able)
    gains every result. Tasks run one after another in this process, `on_start` called before
    each, each tuning reaching the cache as it is made; or, with `pool` (anything with
    `map(items, on_result)`, whose actors run `TaskEvaluator`), at once on its actors, their
    tunings reaching the cache as their task finishes. `on_store` gets the entries the cache
    has just gained; `on_task` is called as each task finishes."""
    everything = suite(plan)
    rows = everything if tasks is None else everything[:max(0, tasks)]
    cache = {} if cache is None else cache
    items = [TaskItem(row.task, tuple(programs.items()), seeds, run_seed, test_seed, grid,
                      _entries_of(row.task, cache)) for row in rows]
    failed: list[str] = []

    def keep(entries: Mapping[str, dict]) -> None:
        cache.update(entries)
        if entries and on_store is not None:
            on_store(entries)

    def finished(index: int, outcome: Any) -> None:
        if isinstance(outcome, Failed):
            failed.append(f"{rows[index].task.key}: {outcome.reason}")
            return
        if pool is not None:  # in this process each tuning was kept as it was made
            keep(outcome[1])
        if on_task is not None:
            on_task(rows[index])

    if pool is None:
        outcomes = []
        for index, item in enumerate(items):
            if on_start is not None:
                on_start(rows[index])
            outcomes.append(run_item(item, keep))
            finished(index, outcomes[-1])
    else:
        outcomes = pool.map(items, on_result=finished)
    if failed:
        raise TaskFailed(f"{len(failed)} of {len(items)} tasks failed ({'; '.join(failed)})")
    return Transfer(tuple(rows), tuple(everything[len(rows):]),
                    tuple(result for result, _ in outcomes), seeds, run_seed, test_seed, grid,
                    tuple(programs.items()))


def group_scores(results: Sequence[TaskResult], groups: Sequence[str], name: str
                 ) -> dict[str, np.ndarray]:
    """Optimizer `name`'s scores pooled over the tasks (x seeds) of each group, in order of
    first appearance."""
    pooled: dict[str, list[np.ndarray]] = {}
    for result, group in zip(results, groups):
        pooled.setdefault(group, []).append(result.scores(name))
    return {group: np.concatenate(parts) for group, parts in pooled.items()}
