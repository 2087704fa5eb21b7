"""The chosen winner's verdict on seeds no tuning or selection saw.

A run chooses its winner on the held-out tasks' validation seeds, where it and the tuned
baseline were also tuned: the best of many candidates on those seeds looks better there than
it is. So after the last generation the winner is trained again on each held-out task at the
point it was tuned to (its lr and schedule), and tuned AdamW at its own (lr, schedule, weight
decay), both on the same fresh keys (`task_keys(task, S, seed + CONFIRMATION_SEED)`, S =
`validation.confirmation_seeds`). A task's score is log(AdamW loss / the winner's loss), each
the geometric mean over the fresh seeds, as a validation score is; the run's verdict
(cli/summary.py) is judged on these. The work goes through the run's pool as two one-point
work items per task (the task kind's own items, at that point and seed).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

from disco_rules.cluster.results import Failed
from disco_rules.discovery.config import Config
from disco_rules.discovery.plan import program_encoding
from disco_rules.discovery.scoring import Pool, task_score
from disco_rules.discovery.store import (BaselineRecord, ConfirmationRecord, RunStore,
                                         ScoreRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.kinds import task_kind
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify

CONFIRMATION_SEED = 1  # fresh keys: the run's seed + this (`disco transfer` tunes on them)


def at_point(config: Config, lr: float, schedule: str, weight_decay: float | None = None
             ) -> Config:
    """`config` whose grids hold one point (`lr`, `schedule` and, for the baseline,
    `weight_decay`), trained on the confirmation's fresh seeds (as many for the baseline)."""
    seeds = config.validation.confirmation_seeds
    tasks = dataclasses.replace(
        config.tasks, lr_grid=(lr,), schedule=schedule, baseline_schedules=(schedule,),
        seeds=seeds, baseline_seeds=seeds,
        wd_grid=config.tasks.wd_grid if weight_decay is None else (weight_decay,))
    return dataclasses.replace(config, tasks=tasks, seed=config.seed + CONFIRMATION_SEED)


def confirm(pool: Pool, config: Config, store: RunStore, candidate_id: int,
            tasks: Sequence[Task], agent: Any) -> list[ConfirmationRecord]:
    """Candidate `candidate_id` (a validated program) and each task's tuned baseline, each at
    its tuned point (archived: `pareto.awaiting_confirmation`), on fresh seeds: one row per
    task of `tasks` (the held-out tasks, at least one), by `confirm_at`."""
    program = simplify(parse(store.candidate(candidate_id).text))
    tuned = {row.task: row for row in store.scores_of(candidate_id)}
    return confirm_at(pool, config, program, {task.key: tuned[task.key] for task in tasks},
                      {task.key: store.baseline(task.key) for task in tasks}, tasks, agent,
                      candidate_id)


def confirm_at(pool: Pool, config: Config, program: Program, points: Mapping[str, ScoreRecord],
               baselines: Mapping[str, BaselineRecord], tasks: Sequence[Task], agent: Any,
               candidate_id: int = -1) -> list[ConfirmationRecord]:
    """`program` at its tuned point on each task (`points`: its lr and schedule) and the
    task's tuned baseline at its own (`baselines`), on fresh seeds: one row per task. A task
    where the baseline has no finite loss there scores NaN, which a verdict counts against
    the candidate (it never claims a margin it could not measure)."""
    encoding = program_encoding(task_kind(tasks[0].kind), config)
    encoded = encoding.encode_population([program])  # the same for every task
    items, settings = [], []
    for task in tasks:
        kind = task_kind(task.kind)
        point, baseline = points[task.key], baselines[task.key]
        mine = at_point(config, point.lr, point.schedule or config.tasks.schedule_names[0])
        theirs = at_point(config, baseline.lr, baseline.schedule or "constant",
                          baseline.weight_decay)
        items += [kind.programs_item(task, encoding, encoded, mine),
                  kind.baseline_item(task, theirs, agent)]
        settings.append((mine, theirs))
    results = pool.map(items)
    rows = []
    for k, (task, (mine, theirs)) in enumerate(zip(tasks, settings)):
        kind = task_kind(task.kind)
        result = results[2 * k + 1]
        baseline = None if isinstance(result, Failed) else \
            kind.baseline_record(task, result, theirs)
        if baseline is None:
            score, loss, baseline_loss = math.nan, math.nan, math.nan
        else:
            scored = task_score(results[2 * k], 0, task, baseline, mine.tasks)
            score, loss, baseline_loss = scored.value, scored.row.loss, baseline.loss
        rows.append(ConfirmationRecord(
            candidate_id=candidate_id, task=task.key, score=score, loss=loss,
            baseline_loss=baseline_loss, seed=mine.seed, seeds=mine.tasks.seeds))
    return rows
