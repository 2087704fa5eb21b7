"""A candidate's score on one task, from a work result: the same rules for every driver.

Optimizer tasks: log(AdamW's tuned loss / the candidate's loss at its best lr). RL tasks: the
final return normalised by the tuned hand-designed algorithm's (PPO, or A2C for LPG): 0 where
the agent ends as it began, 1 where it ends as the baseline does. Both are capped at
FITNESS_CAP so one solved task cannot outweigh all the others; a failure scores WORST with a
reason and never raises.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Protocol, Sequence

import jax
import numpy as np

from disco_rules.cluster.results import Failed, TimedOut
from disco_rules.discovery.config import FITNESS_CAP, Config, TasksConfig
from disco_rules.discovery.evaluator import ProgramsItem, RulesItem
from disco_rules.discovery.inner.rl_train import (AgentConfig, RLScores, RuleShape, first_finite,
                                                  normalised_return)
from disco_rules.discovery.selection import MIN_SAMPLES_FOR_SE, standard_error
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import BaselineRecord, ScoreRecord, ValidationRecord
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.kinds import task_kind
from disco_rules.discovery.inner.schedules import lr_of, schedule_of
from disco_rules.discovery.inner.train import LOSS_FLOOR, TrainResult, fitness, lr_scores
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.program import Program

WORST = float("-inf")


class TaskScore(NamedTuple):
    """A candidate's score on one task: the mean over seeds, why it failed (or None; a reason
    starts with its status, `status_of`), its archive row (without its candidate id) and the
    score's standard error over seeds."""

    value: float
    reason: str | None
    row: ScoreRecord
    se: float = math.nan  # nan below MIN_SAMPLES_FOR_SE seeds or for a failure


def task_score(result: Any, j: int, task: Task, baseline: BaselineRecord,
               tasks: TasksConfig) -> TaskScore:
    """Candidate `j` of a work result on `task`, against the task's baseline, as the task's
    kind scores it."""
    if isinstance(result, Failed):
        what = CandidateStatus.TIMEOUT if isinstance(result, TimedOut) else CandidateStatus.FAILED
        return TaskScore(WORST, f"{what}: {result.reason}",
                         ScoreRecord(candidate_id=-1, task=task.key, score=WORST))
    return task_kind(task.kind).score(result, j, task, baseline, tasks)


def optimizer_score(result: TrainResult, j: int, task: Task, baseline: BaselineRecord,
                    tasks: TasksConfig) -> TaskScore:
    """An optimizer task's score: log(baseline loss / the candidate's loss at its best point
    of tasks.lr_grid x tasks.candidate_schedules)."""
    mine = TrainResult(*(np.asarray(value[j]) for value in result))
    with np.errstate(all="ignore"):  # NaN and Inf are expected here and scored as failures
        value, reason = fitness(mine, baseline.loss)
        value = min(value, FITNESS_CAP)
        per_lr = lr_scores(mine)
        best = int(np.argmin(per_lr))
        curve = np.mean(mine.curve[best], axis=0)
        per_seed = -np.log(np.maximum(np.asarray(mine.final_loss[best], np.float64), LOSS_FLOOR))
    grid = tasks.candidate_schedules
    row = ScoreRecord(candidate_id=-1, task=task.key, score=value,
                      loss=float(np.exp(per_lr[best])), lr=lr_of(best, tasks.lr_grid, grid),
                      schedule=schedule_of(best, grid).name, curve=curve)
    return TaskScore(value, reason, row, math.nan if reason else _seed_error(per_seed))


def rl_score(result: RLScores, j: int, task: Task, baseline: BaselineRecord,
             tasks: TasksConfig) -> TaskScore:
    """An RL task's score: normalised return (mean over seeds) less the rule's regulariser
    (LPG's); a non-finite return (NaN agent weights) is a failure."""
    final = np.asarray(result.final_return[j], np.float64)
    if not np.all(np.isfinite(final)):
        return TaskScore(WORST, CandidateStatus.NAN,
                         ScoreRecord(candidate_id=-1, task=task.key, score=WORST))
    start = first_finite(np.asarray(baseline.curve, np.float64))
    per_seed = (normalised_return(final, start, baseline.score)
                - np.broadcast_to(np.asarray(result.penalty[j], np.float64), final.shape))
    value = min(float(np.mean(per_seed)), FITNESS_CAP)
    curve = np.mean(np.asarray(result.curve[j], np.float64), axis=0)
    return TaskScore(value, None,
                     ScoreRecord(candidate_id=-1, task=task.key, score=value, curve=curve),
                     _seed_error(per_seed))


def _seed_error(per_seed: np.ndarray) -> float:
    """The standard error of a score over its seeds, where there are MIN_SAMPLES_FOR_SE of
    them or more (fewer give no estimate worth printing); else NaN."""
    return standard_error(per_seed) if per_seed.size >= MIN_SAMPLES_FOR_SE else math.nan


def status_of(reason: str) -> CandidateStatus:
    """A failed task's status from its reason, which starts with it ("nan", "diverged",
    "timeout: ..."); any other reason is a failure."""
    head = reason.split(":", 1)[0]
    named = (CandidateStatus.NAN, CandidateStatus.DIVERGED, CandidateStatus.TIMEOUT)
    return CandidateStatus(head) if head in named else CandidateStatus.FAILED


class Outcome(NamedTuple):
    """A candidate's fitness over its tasks, its status and why it failed (None if it did
    not)."""

    fitness: float
    status: CandidateStatus
    reason: str | None


def fitness_of(scores: Sequence[float], cap: float) -> float:
    """A candidate's fitness from its scores on the training tasks: their mean, each counted
    at most `cap` ([tasks] fitness_cap)."""
    return float(np.mean(np.minimum(np.asarray(scores, np.float64), cap)))


def outcome(per_task: Sequence[TaskScore], cap: float) -> Outcome:
    """The fitness (`fitness_of`) over tasks with status ok; or, if a task failed, WORST with
    the status and reason of the first failure. Both populations archive their candidates by
    it."""
    failures = [score.reason for score in per_task if score.reason]
    if failures:
        return Outcome(WORST, status_of(failures[0]), failures[0])
    return Outcome(fitness_of([score.value for score in per_task], cap), CandidateStatus.OK,
                   None)


def mean_scores(records: Sequence[ValidationRecord]) -> tuple[tuple[int, float], ...]:
    """(candidate id, mean validation score) in order of first appearance."""
    by_id: dict[int, list[float]] = {}
    for record in records:
        by_id.setdefault(record.candidate_id, []).append(record.score)
    return tuple((cid, float(np.mean(values))) for cid, values in by_id.items())


class Pool(Protocol):
    """Anything that maps work items to results in order (a Ray pool, or in-process); most
    also take `on_result` (`cluster.results.map_calling`)."""

    def map(self, items: Sequence[Any]) -> list[Any]: ...


def score_programs(pool: Pool, config: Config, encoding: Encoding, programs: Sequence[Program],
                   tasks: Sequence[Task], baselines: dict[str, BaselineRecord],
                   size: int | None = None) -> list[list[TaskScore]]:
    """Per program, per task: its score against the baseline, via work items on `pool` of
    `size` programs each (default `cluster.batch_size`)."""
    by_task = score_groups(pool, config, encoding, [(task, programs) for task in tasks],
                           baselines, size)
    return [list(per_program) for per_program in zip(*by_task)] if tasks \
        else [[] for _ in programs]


def score_groups(pool: Pool, config: Config, encoding: Encoding,
                 groups: Sequence[tuple[Task, Sequence[Program]]], baselines: dict[str, BaselineRecord],
                 size: int | None = None) -> list[list[TaskScore]]:
    """Per group (a task and the programs to score on it), per program: its score against the
    baseline; every group's work items (`size` programs each, padded: one compiled shape;
    default `cluster.batch_size`) go to `pool` in one call."""
    size = size or config.cluster.batch_size
    items, spans = [], []
    for task, programs in groups:
        for i in range(0, len(programs), size):
            chunk = list(programs[i:i + size])
            padded = chunk + [chunk[0]] * (size - len(chunk))  # one compiled shape
            encoded = encoding.encode_population(padded)
            items.append(task_kind(task.kind).programs_item(task, encoding, encoded, config))
            spans.append(len(chunk))
    results = iter(zip(pool.map(items), spans))
    table: list[list[TaskScore]] = []
    for task, programs in groups:
        row: list[TaskScore] = []
        while len(row) < len(programs):
            result, span = next(results)
            row += [task_score(result, j, task, baselines[task.key], config.tasks)
                    for j in range(span)]
        table.append(row)
    return table


def optimizer_programs_item(task: Task, encoding: Encoding, encoded: Any,
                            config: Config) -> ProgramsItem:
    """Optimizer programs trained on `task` over the lr x schedule grid and the run's seeds."""
    return ProgramsItem(task, encoded, config.tasks.lr_grid, config.tasks.seeds, config.seed,
                        config.tasks.candidate_schedules)


def drift_programs_item(task: Task, encoding: Encoding, encoded: Any,
                        config: Config) -> RulesItem:
    """Drift programs run as PPO's objective on the RL `task`, over the run's seeds."""
    return RulesItem(task, "programs", encoding, encoded, config.ppo, config.tasks.seeds,
                     config.seed)


def split_evenly(n: int, most: int) -> list[tuple[int, int]]:
    """(start, stop) of the fewest chunks of at most `most` items, all of one size but the
    last (so a fixed population compiles one shape)."""
    chunks = math.ceil(n / most)
    size = math.ceil(n / chunks)
    return [(i, min(i + size, n)) for i in range(0, n, size)]


def score_rules(pool: Pool, config: Config, kind: str, shape: RuleShape, agent: AgentConfig,
                rules: Any, tasks: Sequence[Task], baselines: dict[str, BaselineRecord],
                run_seed: int) -> list[list[TaskScore]]:
    """Per rule, per task: (normalised return, failure reason or None, its archive row), via
    work items on `pool`. Rules of population kind `kind` and `shape`: flat weights [N, D] of
    a network, or encoded objective-slot programs with a leading axis N (`shape` their
    Encoding, `kind` "programs")."""
    n = len(jax.tree.leaves(rules)[0])
    # the training generation's item shape (one compiled function for every generation), or
    # fewer rules than that (validation, `disco score`): one more shape beats training
    # padding rules
    size = min(split_evenly(config.population.size + 1, config.cluster.batch_size)[0][1], n)
    chunks = [(i, min(i + size, n)) for i in range(0, n, size)]

    def padded(start: int, stop: int) -> Any:
        return jax.tree.map(lambda x: np.concatenate(
            [x[start:stop]] + [x[start:start + 1]] * (size - (stop - start))), rules)

    items = [RulesItem(task, kind, shape, padded(start, stop), agent, config.tasks.seeds,
                          run_seed) for task in tasks for start, stop in chunks]
    results = iter(pool.map(items))
    table: list[list[TaskScore]] = [[] for _ in range(n)]
    for task in tasks:
        for start, stop in chunks:
            result = next(results)
            for j in range(stop - start):
                table[start + j].append(task_score(result, j, task, baselines[task.key],
                                                   config.tasks))
    return table


def chosen_size(config: Config) -> int:
    """Programs per work item when scoring chosen programs (meta-validation, `disco score`):
    a validation round's `top`, at most `cluster.batch_size`. A round's programs then train
    without the padding a training batch would add (a program's result does not depend on
    it), in one compiled shape per held-out task."""
    return min(config.validation.top, config.cluster.batch_size)


def with_seeds(config: Config, seeds: int) -> Config:
    """`config` with `seeds` training seeds per candidate and task (meta-validation's)."""
    import dataclasses

    return dataclasses.replace(config, tasks=dataclasses.replace(config.tasks, seeds=seeds))
