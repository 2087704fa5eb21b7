"""The run's choice and its verdict, on seeds no tuning or selection saw.

A run validates candidates on the held-out tasks' validation seeds, where they and the tuned
baseline were also tuned: the best of many candidates on those seeds looks better there than
it is. So after the last generation its shortlist, the `validation.shortlist` validated
programs most surely ahead (`pareto.shortlist`), is trained again on each held-out task at the
points they were tuned to (lr and schedule), beside tuned AdamW at its own (lr, schedule,
weight decay), on fresh keys (`task_keys(task, S, seed + SHORTLIST_SEED)`, S =
`validation.confirmation_seeds`); the winner is the surest there (`pareto.chosen_winner`).
It is then confirmed the same way on other fresh keys (seed + CONFIRMATION_SEED), and the
run's verdict (cli/summary.py) is judged on those. A task's score is log(AdamW loss / the
candidate's loss), each the geometric mean over the fresh seeds, as a validation score is.
The work goes through the run's pool as one-point work items per task (the task kind's own
items, at that point and seed): the baseline's once, each candidate's.
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

CONFIRMATION_SEED = 1  # the winner's fresh keys: the run's seed + this (`disco transfer`
# tunes on them); the shortlist's: + SHORTLIST_SEED, which no other stage trains on
# (validation: + 0, transfer's scoring: + 2)
SHORTLIST_SEED = 3


def at_point(config: Config, lr: float, schedule: str, weight_decay: float | None = None,
             offset: int = CONFIRMATION_SEED) -> Config:
    """`config` whose grids hold one point (`lr`, `schedule` and, for the baseline,
    `weight_decay`), trained on `validation.confirmation_seeds` fresh seeds from the run's
    seed + `offset` (as many for the baseline)."""
    seeds = config.validation.confirmation_seeds
    tasks = dataclasses.replace(
        config.tasks, lr_grid=(lr,), schedule=schedule, baseline_schedules=(schedule,),
        seeds=seeds, baseline_seeds=seeds,
        wd_grid=config.tasks.wd_grid if weight_decay is None else (weight_decay,))
    return dataclasses.replace(config, tasks=tasks, seed=config.seed + offset)


def confirm(pool: Pool, config: Config, store: RunStore, candidate_id: int,
            tasks: Sequence[Task], agent: Any) -> list[ConfirmationRecord]:
    """Candidate `candidate_id` (a validated program) and each task's tuned baseline, each at
    its tuned point (archived: `pareto.awaiting_confirmation`), on the confirmation's fresh
    seeds: one row per task of `tasks` (the held-out tasks, at least one)."""
    return fresh_scores(pool, config, *_archived(store, [candidate_id], tasks), tasks, agent,
                        CONFIRMATION_SEED)


def shortlist(pool: Pool, config: Config, store: RunStore, candidate_ids: Sequence[int],
              tasks: Sequence[Task], agent: Any) -> list[ConfirmationRecord]:
    """The shortlisted candidates (`pareto.awaiting_shortlist`) and each task's tuned
    baseline, each at its tuned point, on the shortlist's fresh seeds: one row per candidate
    and task."""
    return fresh_scores(pool, config, *_archived(store, candidate_ids, tasks), tasks, agent,
                        SHORTLIST_SEED)


def _archived(store: RunStore, candidate_ids: Sequence[int], tasks: Sequence[Task]
              ) -> tuple[dict[int, Program], dict[int, dict[str, ScoreRecord]],
                         dict[str, BaselineRecord]]:
    """The candidates' simplified programs, their tuned points on `tasks`, and the tasks'
    tuned baselines, as the run archived them."""
    programs, points = {}, {}
    for cid in candidate_ids:
        programs[cid] = simplify(parse(store.candidate(cid).text))
        tuned = {row.task: row for row in store.scores_of(cid)}
        points[cid] = {task.key: tuned[task.key] for task in tasks}
    return programs, points, {task.key: store.baseline(task.key) for task in tasks}


def fresh_scores(pool: Pool, config: Config, programs: Mapping[int, Program],
                 points: Mapping[int, Mapping[str, ScoreRecord]],
                 baselines: Mapping[str, BaselineRecord], tasks: Sequence[Task], agent: Any,
                 offset: int) -> list[ConfirmationRecord]:
    """Each program (by candidate id) at its tuned point on each task (`points`: its lr and
    schedule) and the task's tuned baseline at its own (`baselines`), on fresh seeds from the
    run's seed + `offset`: one row per candidate and task, by candidate then task. A task where
    the baseline has no finite loss there scores NaN, which a verdict counts against the
    candidate (it never claims a margin it could not measure)."""
    encoding = program_encoding(task_kind(tasks[0].kind), config)
    ids = list(programs)
    # each program's encoding is the same for every task
    encoded = {cid: encoding.encode_population([programs[cid]]) for cid in ids}
    items, settings = [], []
    for task in tasks:
        kind = task_kind(task.kind)
        baseline = baselines[task.key]
        theirs = at_point(config, baseline.lr, baseline.schedule or "constant",
                          baseline.weight_decay, offset=offset)
        items.append(kind.baseline_item(task, theirs, agent))
        mine = []
        for cid in ids:
            point = points[cid][task.key]
            mine.append(at_point(config, point.lr,
                                 point.schedule or config.tasks.schedule_names[0],
                                 offset=offset))
            items.append(kind.programs_item(task, encoding, encoded[cid], mine[-1]))
        settings.append((theirs, mine))
    results = iter(pool.map(items))
    rows: dict[int, list[ConfirmationRecord]] = {cid: [] for cid in ids}
    for task, (theirs, mine) in zip(tasks, settings):
        kind = task_kind(task.kind)
        result = next(results)
        baseline = None if isinstance(result, Failed) else \
            kind.baseline_record(task, result, theirs)
        for cid, at in zip(ids, mine):
            result = next(results)
            if baseline is None:
                score, loss, baseline_loss = math.nan, math.nan, math.nan
            else:
                scored = task_score(result, 0, task, baseline, at.tasks)
                score, loss, baseline_loss = scored.value, scored.row.loss, baseline.loss
            rows[cid].append(ConfirmationRecord(
                candidate_id=cid, task=task.key, score=score, loss=loss,
                baseline_loss=baseline_loss, seed=at.seed, seeds=at.tasks.seeds))
    return [row for cid in ids for row in rows[cid]]
