"""The tasks of a search (training, held-out, screen) and the warm-start programs, from a config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from disco_rules.cluster.deadlines import DeadlineRule
from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.tasks import Task, family
from disco_rules.discovery.tasks.kinds import TaskKind, task_kind
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program, ProgramError


def driver_deadline_s(config: Config) -> float:
    """How long the driver waits for a user's task code ([cluster] deadline_s, or the floor
    of a first work item): checking a family, building a task for the memory estimate."""
    return config.cluster.deadline_s or DeadlineRule().first_s


def tasks_from(tables: Sequence[dict], key: str, check_within: float | None = None
               ) -> list[Task]:
    """Tasks of a config list; a bad family or parameter is a ConfigError naming the key. A
    user's family is checked once, abandoned after `check_within` seconds if given."""
    tasks = []
    for i, table in enumerate(tables):
        params = {k: v for k, v in table.items() if k != "family"}
        try:
            family(table["family"], check_within)
            tasks.append(Task.make(table["family"], **params))
        except ValueError as error:
            raise ConfigError(f"{key}[{i}]: {error}") from None
    return tasks


@dataclass(frozen=True)
class TaskPlan:
    """The tasks of a search: training, held-out (meta-validation) and the screen."""

    train: tuple[Task, ...]
    heldout: tuple[Task, ...]
    screen: Task | None

    @classmethod
    def from_config(cls, config: Config) -> "TaskPlan":
        """Tasks built from the config; ConfigError names a bad family, parameter or overlap,
        or a user's family whose check outlives the deadline ([cluster] deadline_s, or that
        of a first work item)."""
        check_within = driver_deadline_s(config)
        train = tasks_from(config.tasks.train, "tasks.train", check_within)
        heldout = tasks_from(config.tasks.heldout, "tasks.heldout", check_within)
        overlap = {t.key for t in train} & {t.key for t in heldout}
        if overlap:
            raise ConfigError(f"tasks.heldout: {sorted(overlap)[0]} is also a training task; "
                              "held-out tasks must differ from tasks.train")
        screen = tasks_from([config.screen.task], "screen.task", check_within)[0] \
            if config.screen.task else None
        return cls(tuple(train), tuple(heldout), screen)

    def all(self) -> list[Task]:
        return list(dict.fromkeys(self.train + self.heldout + ((self.screen,) if self.screen
                                                                else ())))

    def kind(self) -> TaskKind:
        """The one task kind of every task of the plan; ConfigError if the plan has no task
        or mixes kinds."""
        kinds = list(dict.fromkeys(task.kind for task in self.all()))
        if not kinds:
            raise ConfigError("tasks: no task to score on (tasks.train is empty)")
        if len(kinds) > 1:
            raise ConfigError(f"tasks: a search is scored on tasks of one kind, not on "
                              f"{' and '.join(kinds)} tasks together")
        return task_kind(kinds[0])


def program_encoding(kind: TaskKind, config: Config) -> Encoding:
    """How a run's programs are encoded: in the slot of its tasks' kind (the optimizer slot
    on optimizer tasks, the objective slot, PPO's drift, on RL tasks), up to the population's
    `max_statements`."""
    return Encoding(slot=kind.slot, max_statements=config.population.max_statements)


def load_warm_start(paths: Sequence[Path], encoding: Encoding, all_inputs: bool = False
                    ) -> list[Program]:
    """Warm-start programs from files (with `all_inputs`, each also declaring the slot inputs
    it does not: `Slot.with_all_inputs`); ConfigError if one does not parse or fit the slot."""
    programs = []
    for path in paths:
        try:
            program = parse(path.read_text())
            if all_inputs:
                program = encoding.slot.with_all_inputs(program)
            encoding.encode(program)
        except ProgramError as error:
            raise ConfigError(f"population.warm_start: {path}: {error}") from None
        programs.append(program)
    return programs
