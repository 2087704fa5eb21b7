"""The tuned hand-designed baseline of every task, computed once per task and archived."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from disco_rules.cluster.results import Failed, TimedOut, map_calling
from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.evaluator import BaselineItem, RLBaselineItem
from disco_rules.discovery.inner.rl_train import AgentConfig, RLBaseline
from disco_rules.discovery.inner.train import TunedBaseline
from disco_rules.discovery.scoring import Pool
from disco_rules.discovery.store import BaselineRecord, RunStore
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.kinds import task_kind


class BaselineError(ConfigError):
    """A task's baseline failed, timed out or is not finite: a search cannot be scored on
    the task as configured (a one-line error, as a bad config is)."""


def ensure_baselines(pool: Pool, store: RunStore, config: Config, agent: AgentConfig,
                     tasks: Sequence[Task], generation: int) -> dict[str, BaselineRecord]:
    """The tuned baseline of every task (on optimizer tasks the loss of AdamW tuned over
    tasks.lr_grid x tasks.baseline_schedule_grid x tasks.wd_grid on tasks.baseline_seeds
    seeds, weight decay 0 being Adam,
    its loss over the candidates' tasks.seeds seeds, the first ones; on RL tasks the
    return of `agent`'s hand-designed algorithm: PPO, or A2C for LPG's agent), computed once
    per task, archived at `generation` (so rollback drops it), and returned by task key;
    BaselineError as soon as one cannot be computed (the others are not waited for: a
    family that hangs would cost a deadline per task). The work items and rows are the task
    kind's."""
    missing = [t for t in tasks if store.baseline(t.key) is None]
    items = [task_kind(t.kind).baseline_item(t, config, agent) for t in missing]
    records: dict[int, BaselineRecord] = {}

    def made(index: int, result: object) -> None:  # the first that fails ends the run at once
        records[index] = _record(missing[index], result, config)
    map_calling(pool, items, made)
    for index in range(len(missing)):  # archived in the tasks' order
        store.add_baseline(records[index], generation)
    return {t.key: store.baseline(t.key) for t in tasks}


def _record(task: Task, result: object, config: Config) -> BaselineRecord:
    """The archive row of `task`'s baseline result; BaselineError if it timed out, failed or
    is not finite."""
    if isinstance(result, TimedOut):
        raise BaselineError(f"the baseline on {task.key} timed out: {result.reason}; "
                            "raise [cluster] deadline_s if the task needs longer")
    record = None if isinstance(result, Failed) else \
        task_kind(task.kind).baseline_record(task, result, config)
    if record is None:
        reason = result.reason if isinstance(result, Failed) else "a non-finite result"
        raise BaselineError(f"the baseline on {task.key} failed: {reason}")
    return record


def adamw_item(task: Task, config: Config, agent: AgentConfig) -> BaselineItem:
    """AdamW tuned over the lr x schedule x weight-decay grid on tasks.baseline_seeds seeds."""
    return BaselineItem(task, config.tasks.lr_grid, config.tasks.seeds_of_baseline, config.seed,
                        config.tasks.wd_grid, config.tasks.seeds,
                        config.tasks.baseline_schedule_grid)


def agent_item(task: Task, config: Config, agent: AgentConfig) -> RLBaselineItem:
    """`agent`'s hand-designed algorithm tuned over the lr grid; not paired seed by seed with
    the candidates, so on the candidates' seeds."""
    return RLBaselineItem(task, agent, config.tasks.lr_grid, config.tasks.seeds, config.seed)


def loss_record(task: Task, result: TunedBaseline, config: Config) -> BaselineRecord | None:
    """The row of an optimizer baseline (it scores 0 by definition); None if its loss is not
    finite."""
    if not np.isfinite(result.loss):
        return None
    return BaselineRecord(
        task=task.key, score=0.0, loss=result.loss, lr=result.lr, curve=result.curve,
        optimizer=result.optimizer, weight_decay=result.weight_decay, schedule=result.schedule,
        seeds=config.tasks.seeds_of_baseline)


def return_record(task: Task, result: RLBaseline, config: Config) -> BaselineRecord | None:
    """The row of an RL baseline, scored by its final return; None if that is not finite."""
    if not np.isfinite(result.final_return):
        return None
    return BaselineRecord(task=task.key, score=result.final_return, lr=result.lr,
                          curve=result.curve, seeds=config.tasks.seeds)
