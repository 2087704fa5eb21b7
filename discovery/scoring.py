"""A candidate's score on one task, from a work result: the same rules for every driver.

Optimizer tasks: log(AdamW's tuned loss / the candidate's loss at its best lr). RL tasks: the
final return normalised by the tuned hand-designed algorithm's (PPO, or A2C for LPG): 0 where
the agent ends as it began, 1 where it ends as the baseline does. Both are capped at
FITNESS_CAP so one solved task cannot outweigh all the others; a failure scores WORST with a
reason and never raises.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from disco_rules.cluster.pool import Failed
from disco_rules.discovery.inner.rl_train import first_finite, normalised_return
from disco_rules.discovery.store import BaselineRecord, ScoreRecord, ValidationRecord
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.inner.train import TrainResult, fitness, lr_scores

WORST = float("-inf")
FITNESS_CAP = 5.0
BASELINE_SCORE = {"optimizer": 0.0, "rl": 1.0}  # the baseline's own score, by task kind

TaskScore = tuple[float, "str | None", ScoreRecord]
"""(fitness, failure reason or None, archive row without its candidate id) on one task."""


def task_score(result: Any, j: int, task: Task, baseline: BaselineRecord,
               lr_grid: Sequence[float]) -> TaskScore:
    """Candidate `j` of a work result on `task`, against the task's baseline."""
    if isinstance(result, Failed):
        return WORST, f"failed: {result.reason}", ScoreRecord(candidate_id=-1, task=task.key,
                                                             score=WORST)
    if task.kind == "rl":
        return _rl_score(result, j, task, baseline)
    return _optimizer_score(result, j, task, baseline.loss, lr_grid)


def _optimizer_score(result: Any, j: int, task: Task, baseline_loss: float,
                     lr_grid: Sequence[float]) -> TaskScore:
    mine = TrainResult(*(np.asarray(result[name][j]) for name in TrainResult._fields))
    with np.errstate(all="ignore"):  # NaN and Inf are expected here and scored as failures
        value, reason = fitness(mine, baseline_loss)
        value = min(value, FITNESS_CAP)
        per_lr = lr_scores(mine)
        best = int(np.argmin(per_lr))
        curve = np.mean(mine.curve[best], axis=0)
    row = ScoreRecord(candidate_id=-1, task=task.key, score=value,
                      loss=float(np.exp(per_lr[best])), lr=lr_grid[best], curve=curve)
    return value, reason, row


def _rl_score(result: Any, j: int, task: Task, baseline: BaselineRecord) -> TaskScore:
    """Normalised return (mean over seeds) less the rule's regulariser (LPG's); a non-finite
    return (NaN agent weights) is a failure."""
    final = np.asarray(result["final_return"][j], np.float64)
    if not np.all(np.isfinite(final)):
        return WORST, "nan", ScoreRecord(candidate_id=-1, task=task.key, score=WORST)
    start = first_finite(np.asarray(baseline.curve, np.float64))
    value = float(np.mean(normalised_return(final, start, baseline.score))
                  - np.mean(result["penalty"][j]))
    value = min(value, FITNESS_CAP)
    curve = np.mean(np.asarray(result["curve"][j], np.float64), axis=0)
    return value, None, ScoreRecord(candidate_id=-1, task=task.key, score=value, curve=curve)


def mean_scores(records: Sequence[ValidationRecord]) -> tuple[tuple[int, float], ...]:
    """(candidate id, mean validation score) in order of first appearance."""
    by_id: dict[int, list[float]] = {}
    for record in records:
        by_id.setdefault(record.candidate_id, []).append(record.score)
    return tuple((cid, float(np.mean(values))) for cid, values in by_id.items())
