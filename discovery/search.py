"""The search driver: one generation = ask, dedupe, screen, evaluate, tell, archive.

The driver is deterministic given the config: each generation draws from its own RNG
(seeded by (seed, generation)), candidate ids are sequential, and work results come back in
submission order. After each generation the archive rows land in one transaction and then a
checkpoint is written, so `resume` rolls the archive back to the checkpoint and reruns the
same generations to the same rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from cluster.pool import Failed
from discovery.config import Config, ConfigError
from discovery.evaluator import BaselineItem, ProgramsItem
from discovery.store import (BaselineRecord, CandidateRecord, RunStore, ScoreRecord,
                             ValidationRecord)
from discovery.tasks import Task
from discovery.train import TrainResult, fitness, lr_scores
from dsl.identity import canonical_hash, fingerprint
from dsl.interpreter import Encoding
from dsl.mutate import MutationConfig
from dsl.parser import parse
from dsl.printer import to_text
from dsl.program import Program, ProgramError
from dsl.simplify import simplify
from populations.evolution import (EvolutionState, Member, RegularizedEvolution,
                                   state_from_data, state_to_data)

WORST = float("-inf")
FITNESS_CAP = 5.0  # a task solved to the loss floor must not outweigh all the others


class Pool(Protocol):
    """Anything that maps work items to results in order (a Ray pool, or in-process)."""

    def map(self, items: Sequence[Any]) -> list[Any]: ...


@dataclass(frozen=True)
class GenerationReport:
    """What one generation did, for the progress display."""

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


@dataclass(frozen=True)
class Scored:
    """The outcome of evaluating one unique candidate."""

    fitness: float
    status: str
    reason: str | None
    scores: tuple[ScoreRecord, ...] = ()


@dataclass
class _Counters:
    next_id: int = 0
    evaluated: int = 0
    cache_hits: int = 0
    leaders: list = field(default_factory=list)  # [fitness, id, program text], best first
    validated: list = field(default_factory=list)  # ids already meta-validated


def tasks_from(tables: Sequence[dict], key: str) -> list[Task]:
    """Tasks of a config list; a bad family or parameter is a ConfigError naming the key."""
    tasks = []
    for i, table in enumerate(tables):
        params = {k: v for k, v in table.items() if k != "family"}
        try:
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
        """Tasks built from the config; ConfigError names a bad family, parameter or overlap."""
        train = tasks_from(config.tasks.train, "tasks.train")
        heldout = tasks_from(config.tasks.heldout, "tasks.heldout")
        overlap = {t.key for t in train} & {t.key for t in heldout}
        if overlap:
            raise ConfigError(f"tasks.heldout: {sorted(overlap)[0]} is also a training task; "
                              "held-out tasks must differ from tasks.train")
        screen = tasks_from([config.screen.task], "screen.task")[0] if config.screen.task \
            else None
        return cls(tuple(train), tuple(heldout), screen)

    def all(self) -> list[Task]:
        return list(dict.fromkeys(self.train + self.heldout + ((self.screen,) if self.screen
                                                                else ())))


def load_warm_start(paths: Sequence[Path], encoding: Encoding) -> list[Program]:
    """Warm-start programs from files; ConfigError if one does not parse or fit the slot."""
    programs = []
    for path in paths:
        try:
            program = parse(path.read_text())
            encoding.encode(program)
        except ProgramError as error:
            raise ConfigError(f"population.warm_start: {path}: {error}") from None
        programs.append(program)
    return programs


class Search:
    """A program search over one run directory."""

    def __init__(self, config: Config, store: RunStore, pool: Pool,
                 warm_start: Sequence[Program],
                 on_generation: Callable[[GenerationReport], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.pool = pool
        self.on_generation = on_generation or (lambda report: None)
        self.tasks = TaskPlan.from_config(config)
        self.warm_start = list(warm_start)
        self.encoding = Encoding(max_statements=config.population.max_statements)
        self.evolution = RegularizedEvolution(
            size=config.population.size, tournament=config.population.tournament,
            mutation=MutationConfig(max_statements=config.population.max_statements))
        self.population = EvolutionState()
        self.counters = _Counters()
        self.generation = 0  # the next generation to run
        self._hashes: dict[str, int] = {}
        self._fingerprints: dict[str, int] = {}
        self._fitness: dict[int, tuple[float, str]] = {}

    # -- state ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Continue from the newest intact checkpoint; archive rows after it are rolled back."""
        checkpoint = self.store.load_checkpoint()
        last = -1 if checkpoint is None else checkpoint[0]
        self.store.rollback_after(last)
        if checkpoint is not None:
            state = checkpoint[1]
            self.population = state_from_data(state["population"])
            self.counters = _Counters(**state["counters"])
            self.generation = last + 1
        # only evaluated candidates are sources, as in an uninterrupted run
        self._hashes = self.store.known_hashes(exclude_status="cached")
        self._fingerprints = self.store.known_fingerprints(exclude_status="cached")
        self._fitness = {}
        for source in set(self._hashes.values()) | set(self._fingerprints.values()):
            record = self.store.candidate(source)
            self._fitness[source] = (record.fitness, record.status)

    def _checkpoint(self, generation: int) -> None:
        counters = self.counters
        self.store.save_checkpoint(generation, {
            "population": state_to_data(self.population),
            "counters": {"next_id": counters.next_id, "evaluated": counters.evaluated,
                         "cache_hits": counters.cache_hits, "leaders": counters.leaders,
                         "validated": counters.validated},
        })

    # -- evaluation ----------------------------------------------------------------------

    def _ensure_baselines(self, generation: int) -> dict[str, float]:
        tasks = self.tasks.all()
        missing = [t for t in tasks if self.store.baseline(t.key) is None]
        items = [BaselineItem(t, self.config.tasks.lr_grid, self.config.tasks.seeds,
                              self.config.seed) for t in missing]
        for task, result in zip(missing, self.pool.map(items)):
            if isinstance(result, Failed) or not np.isfinite(result["loss"]):
                reason = result.reason if isinstance(result, Failed) else "a non-finite loss"
                raise RuntimeError(f"the AdamW baseline on {task.key} failed: {reason}")
            self.store.add_baseline(BaselineRecord(
                task=task.key, score=0.0, loss=result["loss"], lr=result["lr"],
                curve=result["curve"]), generation)
        return {t.key: self.store.baseline(t.key).loss for t in tasks}

    def _score(self, programs: list[Program], tasks: Sequence[Task],
               baselines: dict[str, float]) -> list[list[TaskScore]]:
        return score_programs(self.pool, self.config, self.encoding, programs, tasks, baselines)

    def _evaluate(self, programs: list[Program], baselines: dict[str, float]) -> list[Scored]:
        """Screen, then score on the training tasks; never raises for a bad candidate."""
        outcomes: list[Scored | None] = [None] * len(programs)
        passing = list(range(len(programs)))
        if self.tasks.screen is not None and programs:
            screened = self._score(programs, [self.tasks.screen], baselines)
            passing = []
            for i, ((value, reason, _),) in enumerate(screened):
                if value >= self.config.screen.min_fitness:
                    passing.append(i)
                else:
                    outcomes[i] = Scored(WORST, "screened",
                                         reason or f"screen fitness {value:.3g} < "
                                                   f"{self.config.screen.min_fitness}")
        full = self._score([programs[i] for i in passing], self.tasks.train, baselines)
        for i, per_task in zip(passing, full):
            values = [value for value, _, _ in per_task]
            reasons = [reason for _, reason, _ in per_task if reason]
            rows = tuple(row for _, _, row in per_task)
            if reasons:
                status = reasons[0] if reasons[0] in ("nan", "diverged") else "failed"
                outcomes[i] = Scored(WORST, status, reasons[0], rows)
            else:
                outcomes[i] = Scored(float(np.mean(values)), "ok", None, rows)
        return [o for o in outcomes if o is not None]

    # -- one generation ------------------------------------------------------------------

    def step(self) -> GenerationReport:
        """Run the next generation and archive it."""
        started = time.perf_counter()
        g = self.generation
        rng = np.random.default_rng([self.config.seed, g])
        baselines = self._ensure_baselines(g)
        if g == 0:
            children = self.evolution.initial(self.warm_start, rng)
        else:
            children = self.evolution.ask(self.population, rng, self.config.population.children)

        records: list[dict[str, Any]] = []
        new: dict[str, int] = {}  # hash -> index in `unique` of this generation's new ones
        unique: list[Program] = []
        cache_hits = 0
        for child in children:
            cid = self.counters.next_id
            self.counters.next_id += 1
            h, fp = canonical_hash(child.program), fingerprint(child.program)
            row = {"id": cid, "parent": child.parent_id, "program": child.program,
                   "hash": h, "fingerprint": fp}
            source = self._hashes.get(h, self._fingerprints.get(fp))
            if source is not None:
                row["source"] = source
                cache_hits += 1
            elif h in new or fp in new:
                row["same_as"] = new.get(h, new.get(fp))
                cache_hits += 1
            else:
                new[h] = new[fp] = len(unique)
                row["unique"] = len(unique)
                unique.append(simplify(child.program))
            records.append(row)

        outcomes = self._evaluate(unique, baselines)
        candidates, scores = [], []
        firsts: dict[int, int] = {}
        for row in records:
            if "unique" in row:
                outcome = outcomes[row["unique"]]
                firsts[row["unique"]] = row["id"]
                fit, status, reason = outcome.fitness, outcome.status, outcome.reason
                scores += [ScoreRecord(candidate_id=row["id"], task=s.task, score=s.score,
                                       loss=s.loss, lr=s.lr, curve=s.curve)
                           for s in outcome.scores]
                self._hashes.setdefault(row["hash"], row["id"])
                self._fingerprints.setdefault(row["fingerprint"], row["id"])
                self._fitness[row["id"]] = (fit, status)
            else:
                source = row.get("source", None)
                if source is None:
                    source = firsts[row["same_as"]]
                fit, source_status = self._fitness[source]
                status, reason = "cached", f"same function as candidate {source} " \
                                           f"({source_status})"
            row["fitness"] = fit
            candidates.append(CandidateRecord(
                id=row["id"], generation=g, parent_id=row["parent"], kind="program",
                text=to_text(row["program"]), hash=row["hash"], fingerprint=row["fingerprint"],
                fitness=fit, status=status, reason=reason))
            if status == "ok":
                self._note_leader(fit, row["id"], unique[row["unique"]])

        self.population = self.evolution.tell(
            self.population, [Member(r["id"], r["program"], r["fitness"]) for r in records])
        validation, validation_scores = self._validate(g, baselines)
        scores += validation_scores
        fitnesses = np.array([m.fitness for m in self.population.members])
        finite = fitnesses[np.isfinite(fitnesses)]
        self.counters.evaluated += len(unique)
        self.counters.cache_hits += cache_hits
        report = GenerationReport(
            generation=g, candidates=len(records), evaluated=len(unique), cache_hits=cache_hits,
            screened=sum(c.status == "screened" for c in candidates),
            failed=sum(c.status in ("nan", "diverged", "failed") for c in candidates),
            best=float(finite.max()) if finite.size else WORST,
            median=float(np.median(finite)) if finite.size else WORST,
            seconds=time.perf_counter() - started,
            total_evaluated=self.counters.evaluated, total_cache_hits=self.counters.cache_hits,
            validated=_mean_scores(validation))
        self.store.add_generation(g, candidates, scores, validation, events={
            "candidates": report.candidates, "evaluated": report.evaluated,
            "cache_hits": report.cache_hits, "screened": report.screened,
            "failed": report.failed, "best": report.best, "median": report.median})
        self._checkpoint(g)
        self.generation = g + 1
        self.on_generation(report)
        return report

    def _note_leader(self, fit: float, cid: int, program: Program) -> None:
        leaders = self.counters.leaders + [[fit, cid, to_text(program)]]
        leaders.sort(key=lambda entry: (-entry[0], entry[1]))
        self.counters.leaders = leaders[: 4 * self.config.validation.top]

    def _validate(self, g: int, baselines: dict[str, float]
                  ) -> tuple[list[ValidationRecord], list[ScoreRecord]]:
        """Meta-validation: the best not-yet-validated candidates on the held-out tasks, as
        validation rows and as score rows (which keep the loss curves)."""
        last = g == self.config.generations - 1
        if not (g == 0 or last or (g + 1) % self.config.validation.every == 0):
            return [], []
        chosen = [e for e in self.counters.leaders
                  if e[1] not in self.counters.validated][: self.config.validation.top]
        if g == 0:  # the warm starts too, as the reference the winners must beat
            chosen += [[0.0, m.id, to_text(simplify(m.program))]
                       for m in self.population.members[: len(self.warm_start)]
                       if m.id in self._fitness and m.id not in {e[1] for e in chosen}]
        if not chosen:
            return [], []
        programs = [parse(text) for _, _, text in chosen]
        table = self._score(programs, self.tasks.heldout, baselines)
        records, curves = [], []
        for (_, cid, _), per_task in zip(chosen, table):
            self.counters.validated.append(cid)
            records += [ValidationRecord(candidate_id=cid, task=row.task, score=value)
                        for value, _, row in per_task]
            curves += [ScoreRecord(candidate_id=cid, task=row.task, score=value, loss=row.loss,
                                   lr=row.lr, curve=row.curve) for value, _, row in per_task]
        return records, curves

    def run(self, generations: int) -> None:
        """Run until `generations` generations exist (counting from 0)."""
        while self.generation < generations:
            self.step()


TaskScore = tuple[float, "str | None", ScoreRecord]
"""(fitness, failure reason or None, archive row without its candidate id) on one task."""


def score_programs(pool: Pool, config: Config, encoding: Encoding, programs: Sequence[Program],
                   tasks: Sequence[Task], baselines: dict[str, float]) -> list[list[TaskScore]]:
    """Per program, per task: its score against the baseline, via work items on `pool`."""
    size = config.cluster.batch_size
    chunks = [list(programs[i:i + size]) for i in range(0, len(programs), size)]
    items = []
    for task in tasks:
        for chunk in chunks:
            padded = chunk + [chunk[0]] * (size - len(chunk))  # one compiled shape
            items.append(ProgramsItem(task, encoding.encode_population(padded),
                                      config.tasks.lr_grid, config.tasks.seeds, config.seed))
    results = iter(pool.map(items))
    table: list[list[TaskScore]] = [[] for _ in programs]
    for task in tasks:
        start = 0
        for chunk in chunks:
            result = next(results)
            for j in range(len(chunk)):
                table[start + j].append(
                    _task_score(result, j, task, baselines[task.key], config))
            start += len(chunk)
    return table


def _mean_scores(records: list[ValidationRecord]) -> tuple[tuple[int, float], ...]:
    """(candidate id, mean validation score) in order of first appearance."""
    by_id: dict[int, list[float]] = {}
    for record in records:
        by_id.setdefault(record.candidate_id, []).append(record.score)
    return tuple((cid, float(np.mean(values))) for cid, values in by_id.items())


def _task_score(result: Any, j: int, task: Task, baseline_loss: float,
                config: Config) -> tuple[float, str | None, ScoreRecord]:
    """Fitness of program `j` of a work result on `task`, and its archive row."""
    if isinstance(result, Failed):
        row = ScoreRecord(candidate_id=-1, task=task.key, score=WORST)
        return WORST, f"failed: {result.reason}", row
    mine = TrainResult(*(np.asarray(result[name][j]) for name in TrainResult._fields))
    with np.errstate(all="ignore"):  # NaN and Inf are expected here and scored as failures
        value, reason = fitness(mine, baseline_loss)
        value = min(value, FITNESS_CAP)
        per_lr = lr_scores(mine)
        best = int(np.argmin(per_lr))
        curve = np.mean(mine.curve[best], axis=0)
    row = ScoreRecord(candidate_id=-1, task=task.key, score=value,
                      loss=float(np.exp(per_lr[best])), lr=config.tasks.lr_grid[best],
                      curve=curve)
    return value, reason, row
