"""What an evaluator actor runs: work items in, named tuples of numpy arrays out.

A work item is plain data (a task table, encoded programs, learning rates, seeds), so it
pickles cheaply to any Ray actor; the evaluator compiles each task shape once and reuses
the compiled function for the actor's lifetime (the cache lives in discovery.train). Each
item has one result type, the inner loop's own named tuple: `TrainResult` for a
ProgramsItem, `TunedBaseline` for a BaselineItem, `RLScores` for a RulesItem and
`RLBaseline` for an RLBaselineItem.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from disco_rules.discovery import compile_cache
from disco_rules.discovery.inner.rl_train import (AgentConfig, RLBaseline, RLScores, RuleShape,
                                                  evaluate_rules, rl_baseline)
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.inner.schedules import CONSTANT, Schedule
from disco_rules.discovery.inner.train import (PAST_EDGE, TrainResult, TunedBaseline,
                                               evaluate_population, tuned_adamw)
from disco_rules.dsl.interpreter import EncodedProgram, Encoding


@dataclass(frozen=True)
class ProgramsItem:
    """Train every program of a (padded) population on one task, at each lr and seed."""

    task: Task
    programs: EncodedProgram  # numpy arrays with a leading population axis
    lrs: tuple[float, ...]
    seeds: int
    run_seed: int
    schedules: tuple[Schedule, ...] = (CONSTANT,)  # the grid is lrs x schedules (grid())


@dataclass(frozen=True)
class BaselineItem:
    """Tune the hand-designed baseline on one task: AdamW over the lr x schedule x weight
    decay grid (weight decay 0 is Adam)."""

    task: Task
    lrs: tuple[float, ...]
    seeds: int
    run_seed: int
    weight_decays: tuple[float, ...] = (1e-4,)
    scored_seeds: int | None = None  # the loss is over the first of the seeds (None: all)
    schedules: tuple[Schedule, ...] = (CONSTANT,)


@dataclass(frozen=True)
class RulesItem:
    """Train agents with each rule of a (padded) population on one RL task, as its
    population kind `kind` trains them: PPO with a drift network or drift program, the
    actor-predictor with an LPG network."""

    task: Task
    kind: str
    shape: RuleShape
    params: Any  # flat weights [population, parameters] float32, or EncodedProgram [population]
    agent: AgentConfig
    seeds: int
    run_seed: int


@dataclass(frozen=True)
class RLBaselineItem:
    """Tune the hand-designed algorithm's learning rate on one RL task (PPO, or A2C for
    LPG's agent): the baseline learned rules must beat."""

    task: Task
    agent: AgentConfig
    lrs: tuple[float, ...]
    seeds: int
    run_seed: int


WorkItem = ProgramsItem | BaselineItem | RulesItem | RLBaselineItem
WorkResult = TrainResult | TunedBaseline | RLScores | RLBaseline
"""What `Evaluator` returns for a work item, in the order of WorkItem's types."""


def item_kind(item: WorkItem) -> tuple[Any, ...]:
    """What makes work items alike in cost, for their deadlines (cluster/deadlines.py): the
    kind of work, the task's shape, the seeds and the candidates per item (1 for a
    baseline); items alike run one compiled function."""
    rules = item.programs if isinstance(item, ProgramsItem) else \
        item.params if isinstance(item, RulesItem) else None
    width = 1 if rules is None else len(jax.tree.leaves(rules)[0])
    return type(item).__name__, item.task.shape, item.seeds, width


def task_keys(task: Task, seeds: int, run_seed: int) -> jax.Array:
    """The PRNG keys of a task's seeds: the same for every candidate and the baseline, so
    candidates are compared on the same data and initialisations."""
    base = jax.random.fold_in(jax.random.PRNGKey(run_seed), zlib.crc32(task.key.encode()))
    return jax.random.split(base, seeds)


class Evaluator:
    """Callable run on each actor: `evaluator(item)` -> the item's WorkResult (numpy leaves).

    `compilation_cache`: a folder for JAX's persistent compilation cache (compile_cache.py),
    set before this process compiles anything; None leaves JAX's setting alone."""

    def __init__(self, max_statements: int, compilation_cache: str | None = None) -> None:
        compile_cache.enable(compilation_cache)
        self.encoding = Encoding(max_statements=max_statements)

    def __call__(self, item: WorkItem) -> WorkResult:
        keys = task_keys(item.task, item.seeds, item.run_seed)
        if isinstance(item, RulesItem):
            result = evaluate_rules(item.task, item.kind, item.shape, item.params, item.agent,
                                    keys)
            return RLScores(*(np.asarray(value) for value in result))
        if isinstance(item, RLBaselineItem):
            return rl_baseline(item.task, item.agent, item.lrs, keys)
        lrs = np.asarray(item.lrs, np.float32)
        if isinstance(item, BaselineItem):
            tuned = tuned_adamw(item.task, lrs, item.weight_decays, keys, item.scored_seeds,
                                item.schedules, PAST_EDGE)
            return tuned._replace(curve=np.asarray(tuned.curve))
        result = evaluate_population(item.task, self.encoding, item.programs, lrs, keys,
                                     item.schedules)
        return TrainResult(*(np.asarray(value) for value in result))
