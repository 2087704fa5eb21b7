"""Every kind of thing is one entry in one registry: a toy task family, task kind, population
kind, scheduler and export format, registered from this file without editing the package,
are looked up by name, dispatched on, and run a one-generation search together."""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import pytest

from disco_rules import api
from disco_rules.discovery import footprint
from disco_rules.discovery.baselines import ensure_baselines
from disco_rules.discovery.config import ConfigError, TasksConfig, parse_config
from disco_rules.discovery.footprint import WorkItem
from disco_rules.discovery.levels import Levels
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.registry import Registry
from disco_rules.discovery.scheduler import RegretScheduler
from disco_rules.discovery.scheduler_kinds import SCHEDULERS, SchedulerKind, scheduler_kind
from disco_rules.discovery.scoring import TaskScore, score_programs, task_score
from disco_rules.discovery.search.engine import Told
from disco_rules.discovery.search.kinds import KINDS, PopulationKind, population_kind
from disco_rules.discovery.store import BaselineRecord, CandidateRecord, ScoreRecord
from disco_rules.discovery.tasks import FAMILIES, Family, Problem, Task, family
from disco_rules.discovery.tasks.kinds import TASK_KINDS, TaskKind, task_kind
from disco_rules.discovery.tasks.rl import ENVIRONMENTS
from disco_rules.dsl import library
from disco_rules.dsl.identity import canonical_hash
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.slots import OPTIMIZER
from disco_rules.export import FORMATS, ExportFormat, export, formats_help

TOY_BASELINE_SCORE = 0.5


@dataclass(frozen=True)
class ToyItem:
    """A toy work item: a baseline, or `count` programs to score on `task`."""

    task: Task
    what: str
    count: int = 1


class ToyPool:
    """Answers toy work items in this process: program j of an item scores j."""

    def __init__(self) -> None:
        self.items: list[ToyItem] = []

    def map(self, items: Sequence[ToyItem]) -> list[dict]:
        self.items += items
        return [{"scores": [float(j) for j in range(item.count)], "loss": 1.0}
                for item in items]


def _toy_score(result: dict, j: int, task: Task, baseline: BaselineRecord,
               tasks: TasksConfig) -> TaskScore:
    value = result["scores"][j]
    return TaskScore(value, None, ScoreRecord(candidate_id=-1, task=task.key, score=value))


def _toy_baseline_record(task: Task, result: dict, config: Any) -> BaselineRecord | None:
    return BaselineRecord(task=task.key, score=TOY_BASELINE_SCORE, loss=result["loss"],
                          seeds=config.tasks.seeds) if math.isfinite(result["loss"]) else None


TOY_KIND = TaskKind(
    "toy", builds=Problem, slot=OPTIMIZER, baseline_score=TOY_BASELINE_SCORE,
    trains_agents=False,
    programs_item=lambda task, encoding, encoded, config: ToyItem(
        task, "programs", len(encoded.length)),
    score=_toy_score,
    baseline_item=lambda task, config, agent: ToyItem(task, "baseline"),
    baseline_record=_toy_baseline_record,
    work_items=lambda task, config, held_out: [WorkItem(7 if held_out else 5, task.key)])


def _toy_family() -> Family:
    """The quadratic family's problems under another name and the toy kind."""
    quadratic = FAMILIES.get("quadratic")
    return Family("toy_bowl", quadratic.ranges, quadratic.defaults, quadratic.build, kind="toy")


class ToyScheduler(RegretScheduler):
    """Draws new levels only, and keeps the regrets it is told."""

    told: list[list[float]] = []

    def _replay_prob(self) -> float:
        return 0.0

    def update(self, state: Any, levels: Sequence[Task], regrets: Any) -> Any:
        ToyScheduler.told.append([float(r) for r in regrets])
        return super().update(state, levels, regrets)


class ToyPopulation:
    """Proposes the library's sgd and momentum each generation, scored on the pool."""

    agent = None

    def __init__(self, config: Any, pool: Any) -> None:
        self.config = config
        self.pool = pool
        self.task_kind = TaskPlan.from_config(config).kind()
        self.encoding = Encoding(slot=self.task_kind.slot,
                                 max_statements=config.population.max_statements)
        self.programs: dict[int, Any] = {}

    def load(self, store: Any, data: dict | None) -> None:
        self.programs = {} if data is None else {int(cid): library.program(name)
                                                 for cid, name in data["programs"].items()}

    def to_data(self) -> dict:
        return {"programs": {str(cid): p.name for cid, p in self.programs.items()}}

    def ask(self, generation: int, first_id: int) -> list[int]:
        ids = [first_id, first_id + 1]
        self.programs.update(zip(ids, (library.program("sgd"), library.program("momentum"))))
        return ids

    def evaluate(self, ids: list[int], train: Sequence[Task], levels: Sequence[Task],
                 baselines: dict[str, BaselineRecord]) -> list[list[TaskScore]]:
        return self.score(ids, train, baselines, self.config.tasks.seeds)

    def tell(self, ids: list[int], evaluated: list[list[TaskScore]], generation: int,
             levels: Sequence[Task]) -> Told:
        level_keys = {level.key for level in levels}
        fitness = [float(np.mean([s.value for s in per_task])) for per_task in evaluated]
        candidates = [CandidateRecord(id=cid, generation=generation, kind="programs",
                                      text=to_text(self.programs[cid]),
                                      hash=canonical_hash(self.programs[cid]), fitness=fit,
                                      status="ok") for cid, fit in zip(ids, fitness)]
        rows = [dataclasses.replace(s.row, candidate_id=cid)
                for cid, per_task in zip(ids, evaluated) for s in per_task]
        return Told(candidates, rows, evaluated=len(ids), cache_hits=0, fitness=fitness,
                    leaders=list(zip(fitness, ids)),
                    level_scores=[[s.value for s in per_task if s.row.task in level_keys]
                                  for per_task in evaluated])

    def validation_extras(self, generation: int) -> list[int]:
        return []

    def score(self, ids: Sequence[int], tasks: Sequence[Task],
              baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        return score_programs(self.pool, self.config, self.encoding,
                              [self.programs[cid] for cid in ids], tasks, baselines)


def _write_toy(program: Any, slot: Any, name: str) -> str:
    return f"# {name} at the {slot.name} slot\n{to_text(program)}"


@contextlib.contextmanager
def registered(registry: Registry, item: Any) -> Iterator[Any]:
    """`item` in `registry` for the block, gone after."""
    registry.register(item)
    try:
        yield item
    finally:
        registry.remove(item.name)


@pytest.fixture
def toys() -> Iterator[None]:
    """The toy task kind, family, population kind, schedulers and export format."""
    ToyScheduler.told.clear()
    with registered(TASK_KINDS, TOY_KIND), registered(FAMILIES, _toy_family()), \
            registered(KINDS, PopulationKind("toy", ToyPopulation)), \
            registered(SCHEDULERS, SchedulerKind("toy", ToyScheduler)), \
            registered(SCHEDULERS, SchedulerKind("off", None)), \
            registered(FORMATS, ExportFormat("toy", "a comment and the program", _write_toy)):
        yield


TOY_CONFIG = """
generations = 1
[population]
kind = "toy"
[tasks]
train = [{ family = "toy_bowl" }]
heldout = [{ family = "toy_bowl", dim = 8 }]
[validation]
top = 1
[scheduler]
kind = "toy"
levels = 1
families = { toy_bowl = { dim = 4 } }
"""


def test_a_registry_finds_lists_and_refuses_names() -> None:
    @dataclass(frozen=True)
    class Thing:
        name: str

    things: Registry[Thing] = Registry("thing")
    first = things.register(Thing("a"))
    things.register(Thing("b"))
    assert things.get("a") is first and things.names() == ("a", "b") == tuple(things)
    assert "a" in things and "c" not in things and ["x"] not in things and len(things) == 2
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        things.register(Thing("a"))
    assert things.remove("a") is first and things.names() == ("b",)
    with pytest.raises(ValueError, match=r"^unknown thing 'a'; valid things: b$"):
        things.get("a")
    with pytest.raises(ValueError, match="unknown thing"):
        things.get(["a"])  # an unhashable name from a config


@pytest.mark.parametrize("registry, lookup", [
    (FAMILIES, family), (TASK_KINDS, task_kind), (KINDS, population_kind),
    (SCHEDULERS, scheduler_kind), (FORMATS, FORMATS.get), (ENVIRONMENTS, ENVIRONMENTS.get),
])
def test_every_registry_answers_an_unknown_name_alike(registry: Registry, lookup: Any) -> None:
    with pytest.raises(ValueError) as error:
        lookup("nope")
    assert str(error.value).startswith(
        f"unknown {registry.what} 'nope'; valid {registry.plural}: {', '.join(registry)}")
    with pytest.raises(ValueError, match="is already registered"):
        registry.register(registry.get(registry.names()[0]))


def test_an_unknown_name_in_a_config_is_the_registry_error() -> None:
    with pytest.raises(ConfigError, match=r"^population.kind: unknown population kind 'x'; "
                                          r"valid population kinds: programs, lpo"):
        parse_config('[population]\nkind = "x"')
    with pytest.raises(ConfigError, match=r"^scheduler.kind: unknown scheduler 'x'; "
                                          r"valid schedulers: none, regret, uniform"):
        parse_config('[scheduler]\nkind = "x"')
    with pytest.raises(ValueError, match="unknown export format 'x'; valid export formats: "
                                         "numpy, jax, optax, torch"):
        export(library.program("sgd"), "x")


def test_an_export_goes_through_the_registered_format(toys: None) -> None:
    source = export(library.program("sgd"), "toy", name="mine")
    assert source == f"# mine at the optimizer slot\n{to_text(library.program('sgd'))}"
    assert "toy: a comment and the program" in formats_help()
    with pytest.raises(ValueError, match="a network exports as jax or numpy, not 'toy'"):
        export((object(), np.zeros(3)), "toy")
    FORMATS.remove("toy")
    with pytest.raises(ValueError, match="unknown export format 'toy'"):
        export(library.program("sgd"), "toy")
    FORMATS.register(ExportFormat("toy", "a comment and the program", _write_toy))


def test_a_scheduler_is_picked_by_its_name_in_the_config(toys: None) -> None:
    config = parse_config(TOML_SCHEDULER.format(kind="toy"))
    levels = Levels.from_config(config, cap=5.0)
    assert type(levels.scheduler) is ToyScheduler and levels.summary().startswith("toy levels")
    drawn = levels.sample()
    assert [level.family for level in drawn] == ["toy_bowl"] and drawn[0].get("dim") == 4
    levels.update(drawn, [0.25])
    assert ToyScheduler.told == [[0.25]]
    assert type(Levels.from_config(parse_config(TOML_SCHEDULER.format(kind="uniform")),
                                   cap=5.0).scheduler) is not ToyScheduler
    off = parse_config(TOML_SCHEDULER.format(kind="off"))
    assert Levels.from_config(off, cap=5.0) is None  # a kind that draws no levels
    assert footprint.estimated_tasks(off, TaskPlan.from_config(off)) == \
        TaskPlan.from_config(off).all()


TOML_SCHEDULER = """
[tasks]
train = [{{ family = "toy_bowl" }}]
[scheduler]
kind = "{kind}"
levels = 1
families = {{ toy_bowl = {{ dim = 4 }} }}
"""


def test_the_task_kind_decides_slot_scores_baselines_and_memory(toys: None) -> None:
    config = parse_config(TOY_CONFIG)
    plan = TaskPlan.from_config(config)
    assert plan.kind() is TOY_KIND and plan.kind().slot is OPTIMIZER
    task = plan.train[0]
    assert task.kind == "toy" and isinstance(task.build(), Problem)
    # the training task, the held-out one and the largest level the scheduler can draw
    assert [item.bytes for item in footprint.work_items(config, plan)] == [5, 7, 5]
    result = {"scores": [0.0, 3.0], "loss": 1.0}
    baseline = BaselineRecord(task=task.key, score=TOY_BASELINE_SCORE)
    assert task_score(result, 1, task, baseline, config.tasks).value == 3.0

    class Store:
        rows: dict[str, BaselineRecord] = {}

        def baseline(self, key: str) -> BaselineRecord | None:
            return self.rows.get(key)

        def add_baseline(self, record: BaselineRecord, generation: int) -> None:
            self.rows[record.task] = record

    pool = ToyPool()
    made = ensure_baselines(pool, Store(), config, config.ppo, plan.all(), 0)
    assert [item.what for item in pool.items] == ["baseline", "baseline"]
    assert {record.score for record in made.values()} == {TOY_BASELINE_SCORE}
    assert made[task.key].seeds == config.tasks.seeds

    mixed = dataclasses.replace(config, tasks=dataclasses.replace(
        config.tasks, heldout=({"family": "quadratic"},)))
    with pytest.raises(ConfigError, match="not on toy and optimizer tasks together"):
        TaskPlan.from_config(mixed).kind()
    networks = dataclasses.replace(config, population=dataclasses.replace(
        config.population, kind="lpo"))
    with pytest.raises(ConfigError, match="toy_bowl is an toy task family; a 'lpo' "
                                          "population needs RL tasks"):
        api.check(networks, Path.cwd())


def test_a_one_generation_search_of_toys_only(toys: None, tmp_path: Any) -> None:
    pool = ToyPool()
    run = api.launch(TOY_CONFIG, tmp_path / "run", pool=pool, progress=False)
    # baselines on the training task, the held-out task and the drawn level, then programs
    assert [item.what for item in pool.items[:3]] == ["baseline"] * 3
    assert {item.task.get("dim") for item in pool.items[:3]} == {16, 8, 4}
    # the level's regret: the toy kind's baseline score less the best program's score (1.0)
    assert ToyScheduler.told == [[TOY_BASELINE_SCORE - 1.0]]
    best = run.candidate(1)
    assert best.program.name == "momentum" and best.fitness == 1.0
    assert best.export("toy").startswith(f"# {best.name} at the optimizer slot\n")
