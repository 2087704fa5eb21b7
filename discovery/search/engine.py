"""The search loop, one for every population kind: generations, baselines, the level
scheduler, meta-validation, leaders, reports, archive transactions, checkpoints and resume.

A population (`Population`) says what its candidates are and how they vary: `ask` proposes a
generation, `evaluate` scores it through the pool, `tell` takes the scores and returns the
archive rows. The engine does everything else, the same way for programs and networks.
Every random choice derives from (seed, generation) and results return in submission order,
so a run resumed from its checkpoint ends where the uninterrupted run ends.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np

from disco_rules.discovery.baselines import ensure_baselines
from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.inner.rl_train import AgentConfig
from disco_rules.discovery.levels import Levels, regret_by_family
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.scheduler_kinds import scheduler_kind
from disco_rules.discovery.scoring import FITNESS_CAP, WORST, Pool, TaskScore, mean_scores
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import (BaselineRecord, CandidateRecord, RunStore, ScoreRecord,
                                         ValidationRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.kinds import TaskKind


@dataclass(frozen=True)
class GenerationReport:
    """What one generation did, for the progress display and the metrics."""

    generation: int
    candidates: int
    evaluated: int
    cache_hits: int
    screened: int
    failed: int
    best: float
    median: float
    seconds: float
    total_evaluated: int
    total_cache_hits: int
    validated: tuple[tuple[int, float], ...] = ()
    regret: tuple[tuple[str, float], ...] = ()  # mean regret of the levels, by family


@dataclass(frozen=True)
class Told:
    """What a population's `tell` hands back to the engine for one generation."""

    candidates: list[CandidateRecord]  # every candidate of the generation, for the archive
    scores: list[ScoreRecord]  # their score rows (and re-scored earlier candidates')
    evaluated: int  # candidates trained this generation
    cache_hits: int  # candidates that reused an earlier candidate's scores
    fitness: list[float]  # the fitness of each population member, for best and median
    # (fitness, id) of candidates that may be validated; an id's entry replaces its earlier
    # one (with levels a member's fitness changes as it is scored on each generation's)
    leaders: list[tuple[float, int]]
    level_scores: list[list[float]] = field(default_factory=list)  # member x level score
    events: dict[str, float] = field(default_factory=dict)  # extra figures for the archive


ProposalT = TypeVar("ProposalT")  # what `ask` proposes (opaque to the engine)
EvaluatedT = TypeVar("EvaluatedT")  # what `evaluate` returns for `tell`
RuleT = TypeVar("RuleT", contravariant=True)  # a rule it can score: a Program, a network


class Population(Protocol[ProposalT, EvaluatedT, RuleT]):
    """A kind of candidate and how it varies, as the engine drives it: generic over its
    proposal, its evaluated results and its rules (ProgramPopulation: its proposals, the
    screen's and full evaluation's results, Program; NetworkPopulation: its proposals,
    per-task scores, (shape, weights))."""

    agent: AgentConfig  # the agent RL baselines train (PPO or LPG's actor-predictor)
    task_kind: TaskKind  # the kind of its tasks: what its fitness is normalised against
    scored_as: str  # what a score is, in words (for a table of scores)

    def load(self, store: RunStore, data: dict[str, Any] | None) -> None:
        """Start afresh (data None: initialise or warm-start) or from checkpoint data."""

    def to_data(self) -> dict[str, Any]:
        """The population's state as plain data (msgpack-able) for a checkpoint."""

    def ask(self, generation: int, first_id: int) -> ProposalT:
        """The candidates of `generation`, with ids from `first_id` (an opaque proposal)."""

    def evaluate(self, proposal: ProposalT, train: Sequence[Task], levels: Sequence[Task],
                 baselines: dict[str, BaselineRecord]) -> EvaluatedT:
        """The proposal's candidates scored on `train` (the fixed tasks and this generation's
        `levels`) through the pool."""

    def tell(self, proposal: ProposalT, evaluated: EvaluatedT, generation: int,
             levels: Sequence[Task]) -> Told:
        """Update the population with the scores; the generation's archive rows."""

    def validation_extras(self, generation: int) -> list[int]:
        """Ids meta-validated this generation besides the leaders (warm starts, the mean)."""

    def score(self, ids: Sequence[int], tasks: Sequence[Task],
              baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        """Per candidate id (this generation's or archived), per task: its score over `seeds`
        of the run's fixed seeds (meta-validation)."""

    def check_rule(self, rule: RuleT) -> None:
        """ValueError saying why `rule` (a program, or a network's (shape, weights)) is not
        one this population trains."""

    def score_rules(self, rules: Sequence[RuleT], tasks: Sequence[Task],
                    baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        """`score` for rules given directly (each passing `check_rule`), from anywhere: a
        file, another run; scored as the run scores its candidates."""


@dataclass
class Counters:
    """The engine's running totals, checkpointed with the population."""

    next_id: int = 0
    evaluated: int = 0
    cache_hits: int = 0
    leaders: list = field(default_factory=list)  # [fitness, id], best first
    validated: list = field(default_factory=list)  # ids already meta-validated

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "Counters":
        """Counters of a checkpoint, including those written before the engine was one
        (program leaders then carried their text, network counters no cache hits)."""
        return cls(next_id=data["next_id"], evaluated=data["evaluated"],
                   cache_hits=data.get("cache_hits", 0),
                   leaders=[list(entry[:2]) for entry in data["leaders"]],
                   validated=list(data["validated"]))


class Engine:
    """A search over one run directory, for any population kind."""

    def __init__(self, config: Config, store: RunStore, pool: Pool, population: Population,
                 on_generation: Callable[[GenerationReport], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.pool = pool
        self.population = population
        self.on_generation = on_generation or (lambda report: None)
        self.tasks = TaskPlan.from_config(config)
        levels_from = config.scheduler.families \
            if scheduler_kind(config.scheduler.kind).draws_levels else ()
        for family in levels_from:
            if Task.make(family).kind != population.task_kind.name:
                raise ConfigError(f"scheduler.families.{family}: not an "
                                  f"{population.task_kind.name} family, as the run's tasks are")
        # levels never repeat a fixed task: held-out tasks stay held out
        self.levels = Levels.from_config(config, FITNESS_CAP, exclude=self.tasks.all())
        self.counters = Counters()
        self.generation = 0  # the next generation to run

    # -- state ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Continue from the newest intact checkpoint (archive rows after it are rolled back),
        or start afresh."""
        checkpoint = self.store.rewind()
        data = None
        if checkpoint is not None:
            self._check_tasks_unchanged()
            last, data = checkpoint
            self.counters = Counters.from_data(data["counters"])
            if self.levels is not None:
                self.levels.load(data["levels"])
            self.generation = last + 1
        try:
            self.population.load(self.store, data)
        except (KeyError, ValueError) as error:
            raise ConfigError(f"the checkpoint does not fit this config: {error}") from None

    def _check_tasks_unchanged(self) -> None:
        """ConfigError if a task of the plan has no archived baseline in a run past its first
        generation (which archives every plan task's): this code builds the run's stored config
        into other tasks than it started with, and resuming would mix the two."""
        changed = [task.key for task in self.tasks.all() if self.store.baseline(task.key) is None]
        if changed:
            raise ConfigError(f"{changed[0]}: the run never trained this task, which this code "
                              "builds from its config (a task family's defaults or code changed "
                              "since the run started); resume it with the code that started it, "
                              "or launch a new run")

    def _checkpoint(self, generation: int) -> None:
        state = {**self.population.to_data(), "counters": dataclasses.asdict(self.counters)}
        if self.levels is not None:
            state["levels"] = self.levels.to_data()
        self.store.save_checkpoint(generation, state)

    # -- one generation ------------------------------------------------------------------

    def step(self) -> GenerationReport:
        """Run the next generation and archive it."""
        started = time.perf_counter()
        g = self.generation
        levels = self.levels.sample() if self.levels is not None else []
        train = list(self.tasks.train) + levels
        baselines = ensure_baselines(self.pool, self.store, self.config, self.population.agent,
                                     list(dict.fromkeys(self.tasks.all() + levels)), g)
        proposal = self.population.ask(g, self.counters.next_id)
        evaluated = self.population.evaluate(proposal, train, levels, baselines)
        told = self.population.tell(proposal, evaluated, g, levels)
        self.counters.next_id += len(told.candidates)
        self._note_leaders(told)
        level_rows = []
        if levels:
            regrets = self.levels.regrets(
                told.level_scores, baseline_score=self.population.task_kind.baseline_score)
            self.levels.update(levels, regrets)
            level_rows = self.levels.rows(g, levels, regrets)
        validation, validation_scores = self._validate(g, baselines)
        self.counters.evaluated += told.evaluated
        self.counters.cache_hits += told.cache_hits
        finite = np.array([f for f in told.fitness if math.isfinite(f)])
        report = GenerationReport(
            generation=g, candidates=len(told.candidates), evaluated=told.evaluated,
            cache_hits=told.cache_hits,
            screened=sum(c.status == CandidateStatus.SCREENED for c in told.candidates),
            failed=sum(c.status.is_failure for c in told.candidates),
            best=float(finite.max()) if finite.size else WORST,
            median=float(np.median(finite)) if finite.size else WORST,
            seconds=time.perf_counter() - started,
            total_evaluated=self.counters.evaluated, total_cache_hits=self.counters.cache_hits,
            validated=mean_scores(validation), regret=regret_by_family(level_rows))
        events = {"candidates": report.candidates, "evaluated": report.evaluated,
                  "cache_hits": report.cache_hits, "screened": report.screened,
                  "failed": report.failed, "best": report.best, "median": report.median,
                  **told.events}
        if level_rows:
            events["regret"] = float(np.mean([row.regret for row in level_rows]))
        self.store.add_generation(g, told.candidates, told.scores + validation_scores,
                                  validation, events=events, levels=level_rows)
        self._checkpoint(g)
        self.generation = g + 1
        self.on_generation(report)
        return report

    def _note_leaders(self, told: Told) -> None:
        """The best candidates so far by their latest fitness, the pool meta-validation draws
        from."""
        latest = {cid: fit for fit, cid in self.counters.leaders}
        latest.update((cid, fit) for fit, cid in told.leaders)
        entries = sorted(([fit, cid] for cid, fit in latest.items()),
                         key=lambda entry: (-entry[0], entry[1]))
        self.counters.leaders = entries[: 4 * self.config.validation.top]

    def _validate(self, g: int, baselines: dict[str, BaselineRecord]
                  ) -> tuple[list[ValidationRecord], list[ScoreRecord]]:
        """Meta-validation every `validation.every` generations (and the first and last): the
        best not-yet-validated candidates, and the population's extras, on the held-out tasks;
        validation rows and score rows (which keep the curves)."""
        last = g == self.config.generations - 1
        if not (g == 0 or last or (g + 1) % self.config.validation.every == 0):
            return [], []
        validated = set(self.counters.validated)
        chosen = [cid for _, cid in self.counters.leaders
                  if cid not in validated][: self.config.validation.top]
        chosen += [cid for cid in self.population.validation_extras(g)
                   if cid not in chosen and cid not in validated]
        if not chosen:
            return [], []
        table = self.population.score(chosen, self.tasks.heldout, baselines,
                                      self.config.validation_seeds)
        records, rows = [], []
        for cid, per_task in zip(chosen, table):
            self.counters.validated.append(cid)
            records += [ValidationRecord(candidate_id=cid, task=score.row.task, score=score.value)
                        for score in per_task]
            rows += [dataclasses.replace(score.row, candidate_id=cid, score=score.value)
                     for score in per_task]
        return records, rows

    def run(self, generations: int) -> None:
        """Run until `generations` generations exist (counting from 0)."""
        while self.generation < generations:
            self.step()

    def confirm(self) -> None:
        """Score the run's shortlist, then its chosen winner, again on fresh seeds
        (discovery/confirmation.py) and archive each at the last generation, where it awaits
        that (`pareto.awaiting_shortlist`, `pareto.awaiting_confirmation`: not yet scored, so
        a resume redoes what a kill cut off, and the tuned points archived) and its task kind
        confirms."""
        from disco_rules.discovery import confirmation
        from disco_rules.discovery.pareto import awaiting_confirmation, awaiting_shortlist

        heldout = list(self.tasks.heldout)
        if self.generation == 0 or not heldout or not self.population.task_kind.confirms:
            return
        pending = awaiting_shortlist(self.store)
        if pending:
            rows = confirmation.shortlist(self.pool, self.config, self.store,
                                          [c.id for c in pending], heldout,
                                          self.population.agent)
            self.store.add_shortlist(rows, self.generation - 1)
        chosen = awaiting_confirmation(self.store)
        if chosen is not None:
            rows = confirmation.confirm(self.pool, self.config, self.store, chosen.id, heldout,
                                        self.population.agent)
            self.store.add_confirmation(rows, self.generation - 1)


def make_engine(config: Config, store: RunStore, pool: Pool,
                on_generation: Callable[[GenerationReport], None] | None = None) -> Engine:
    """The engine of the config's population kind (looked up in the registry)."""
    from disco_rules.discovery.search.kinds import population_kind

    population = population_kind(config.population.kind).population(config, pool)
    return Engine(config, store, pool, population, on_generation)
