"""The registry of task kinds: what a task family's `kind` names ("optimizer", "rl").

A task kind is everything the search does differently on its tasks: what its families build,
the program slot programs fill there, the work items that train the candidates' programs and
tune the hand-designed baseline, how a work result becomes a score or a baseline row, the
baseline's own score (the zero of regret), whether its tasks train agents (so rule networks
can be meta-trained on them) and the memory estimate of its work items. Adding a kind is one
`register` call; its behaviours are plain functions, imported when called (the built-in ones
live in scoring.py, baselines.py and footprint.py, which import JAX and the evaluators).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from disco_rules.discovery.registry import Registry, later
from disco_rules.discovery.tasks.family import Environment, Problem, Task
from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER, Slot

if TYPE_CHECKING:
    from disco_rules.discovery.config import Config, TasksConfig
    from disco_rules.discovery.footprint import WorkItem
    from disco_rules.discovery.inner.rl_train import AgentConfig
    from disco_rules.discovery.scoring import TaskScore
    from disco_rules.discovery.store import BaselineRecord
    from disco_rules.dsl.interpreter import Encoding


@dataclass(frozen=True)
class TaskKind:
    """One task kind.

    `builds`: what its families' `build` returns (a Problem, an Environment);
    `slot`: the slot programs fill on its tasks; `baseline_score`: the tuned baseline's own
    score, in the units of candidates' scores; `trains_agents`: rule networks can be scored
    on its tasks. Functions: `programs_item(task, encoding, encoded programs, config)` the
    work item of a chunk of programs; `score(result, j, task, baseline, tasks)` member j's
    TaskScore (`tasks`: the run's TasksConfig, its lr x schedule grid);
    `baseline_item(task, config, agent)` the baseline's work item;
    `baseline_record(task, result, config)` its archive row, None if it is not finite;
    `work_items(task, config, held_out)` the memory estimate's items (footprint.py);
    `confirms`: a run's chosen winner is scored again at its tuned point on fresh seeds
    (discovery/confirmation.py; needs scores at a tuned lr, as optimizer tasks have).
    """

    name: str
    builds: type
    slot: Slot
    baseline_score: float
    trains_agents: bool
    programs_item: Callable[[Task, "Encoding", Any, "Config"], Any]
    score: Callable[[Any, int, Task, "BaselineRecord", "TasksConfig"], "TaskScore"]
    baseline_item: Callable[[Task, "Config", "AgentConfig"], Any]
    baseline_record: Callable[[Task, Any, "Config"], "BaselineRecord | None"]
    work_items: Callable[[Task, "Config", bool], list["WorkItem"]]
    confirms: bool = False


TASK_KINDS: Registry[TaskKind] = Registry("task kind")
"""name -> kind; add one with `register`."""


def register(kind: TaskKind) -> TaskKind:
    """Add `kind` to the registry; ValueError if its name is taken."""
    return TASK_KINDS.register(kind)


def task_kind(name: str) -> TaskKind:
    """The registered kind `name` (a family's `kind`, `Task.kind`); ValueError lists the
    valid names."""
    return TASK_KINDS.get(name)


def _no_work_items(task: Task, config: "Config", held_out: bool) -> list["WorkItem"]:
    """RL work items are not estimated: their rollouts are small next to a process."""
    return []


register(TaskKind(
    "optimizer", builds=Problem, slot=OPTIMIZER, baseline_score=0.0, trains_agents=False,
    programs_item=later("discovery.scoring", "optimizer_programs_item"),
    score=later("discovery.scoring", "optimizer_score"),
    baseline_item=later("discovery.baselines", "adamw_item"),
    baseline_record=later("discovery.baselines", "loss_record"),
    work_items=later("discovery.footprint", "optimizer_work_items"), confirms=True))
register(TaskKind(
    "rl", builds=Environment, slot=OBJECTIVE, baseline_score=1.0, trains_agents=True,
    programs_item=later("discovery.scoring", "drift_programs_item"),
    score=later("discovery.scoring", "rl_score"),
    baseline_item=later("discovery.baselines", "agent_item"),
    baseline_record=later("discovery.baselines", "return_record"),
    work_items=_no_work_items))
