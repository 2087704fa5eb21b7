"""The tuned hand-designed baseline of every task, computed once per task and archived."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from disco_rules.cluster.results import Failed, TimedOut
from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.evaluator import BaselineItem, RLBaselineItem
from disco_rules.discovery.inner.rl_train import AgentConfig
from disco_rules.discovery.scoring import Pool
from disco_rules.discovery.store import BaselineRecord, RunStore
from disco_rules.discovery.tasks import Task


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
    BaselineError if one cannot be computed."""
    missing = [t for t in tasks if store.baseline(t.key) is None]
    lrs, seeds = config.tasks.lr_grid, config.tasks.seeds_of_baseline
    # RL baselines are not paired seed by seed with the candidates: on the candidates' seeds
    items = [RLBaselineItem(t, agent, lrs, config.tasks.seeds, config.seed)
             if t.kind == "rl" else
             BaselineItem(t, lrs, seeds, config.seed, config.tasks.wd_grid, config.tasks.seeds,
                          config.tasks.baseline_schedule_grid)
             for t in missing]
    for task, result in zip(missing, pool.map(items)):
        value = None if isinstance(result, Failed) else \
            result["final_return"] if task.kind == "rl" else result["loss"]
        if isinstance(result, TimedOut):
            raise BaselineError(f"the baseline on {task.key} timed out: {result.reason}; "
                                "raise [cluster] deadline_s if the task needs longer")
        if value is None or not np.isfinite(value):
            reason = result.reason if isinstance(result, Failed) else "a non-finite result"
            raise BaselineError(f"the baseline on {task.key} failed: {reason}")
        store.add_baseline(BaselineRecord(
            task=task.key, score=value if task.kind == "rl" else 0.0,
            loss=result.get("loss", math.nan), lr=result["lr"], curve=result["curve"],
            optimizer=result.get("optimizer"), weight_decay=result.get("weight_decay", math.nan),
            schedule=result.get("schedule"),
            seeds=config.tasks.seeds if task.kind == "rl" else seeds),
            generation)
    return {t.key: store.baseline(t.key) for t in tasks}
