"""The search driver: one generation = ask, dedupe, screen, evaluate, tell, archive.

The driver is deterministic given the config: each generation draws from its own RNG
(seeded by (seed, generation)), candidate ids are sequential, and work results come back in
submission order. After each generation the archive rows land in one transaction and then a
checkpoint is written, so `resume` rolls the archive back to the checkpoint and reruns the
same generations to the same rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

import numpy as np

from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.baselines import ensure_baselines
from disco_rules.discovery.levels import Levels, regret_by_family
from disco_rules.discovery.plan import TaskPlan, program_slot
from disco_rules.discovery.store import (BaselineRecord, CandidateRecord, RunStore, SampledLevelRecord,
                             ScoreRecord, ValidationRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.scoring import (BASELINE_SCORE, FITNESS_CAP, WORST, Pool, TaskScore,
                                          mean_scores, score_groups, score_programs)
from disco_rules.dsl.identity import canonical_hash, fingerprint
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.mutate import MutationConfig
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OBJECTIVE
from disco_rules.populations.evolution import (EvolutionState, Member, RegularizedEvolution,
                                   state_from_data, state_to_data)



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
    regret: tuple[tuple[str, float], ...] = ()  # mean regret of the levels, by family


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
        self.slot = program_slot(self.tasks)
        task_kind = "rl" if self.slot == OBJECTIVE else "optimizer"
        for family in config.scheduler.families if config.scheduler.kind != "none" else ():
            if Task.make(family).kind != task_kind:
                raise ConfigError(f"scheduler.families.{family}: not an {task_kind} family, "
                                  f"as the run's tasks are")
        # levels never repeat a fixed task: the training set of a generation has no duplicates
        # and held-out tasks stay held out
        self.levels = Levels.from_config(config, FITNESS_CAP, exclude=self.tasks.all())
        self.warm_start = list(warm_start)
        self.encoding = Encoding(slot=self.slot, max_statements=config.population.max_statements)
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
        checkpoint = self.store.rewind()
        if checkpoint is not None:
            last, state = checkpoint
            self.population = state_from_data(state["population"])
            self.counters = _Counters(**state["counters"])
            if self.levels is not None:
                self.levels.load(state["levels"])
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
        state = {
            "population": state_to_data(self.population),
            "counters": {"next_id": counters.next_id, "evaluated": counters.evaluated,
                         "cache_hits": counters.cache_hits, "leaders": counters.leaders,
                         "validated": counters.validated},
        }
        if self.levels is not None:
            state["levels"] = self.levels.to_data()
        self.store.save_checkpoint(generation, state)

    # -- evaluation ----------------------------------------------------------------------

    def _ensure_baselines(self, generation: int, levels: Sequence[Task] = ()
                          ) -> dict[str, BaselineRecord]:
        tasks = list(dict.fromkeys(self.tasks.all() + list(levels)))
        return ensure_baselines(self.pool, self.store, self.config, self.config.ppo, tasks,
                                generation)

    def _score(self, programs: list[Program], tasks: Sequence[Task],
               baselines: dict[str, BaselineRecord]) -> list[list[TaskScore]]:
        return score_programs(self.pool, self.config, self.encoding, programs, tasks, baselines)

    def _evaluate(self, programs: list[Program], train: Sequence[Task],
                  baselines: dict[str, BaselineRecord]) -> list[Scored]:
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
        full = self._score([programs[i] for i in passing], train, baselines)
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

    def _source(self, member: Member) -> int:
        """The evaluated candidate whose scores a member has: itself, or the one it is a
        cached copy of."""
        if member.id in self._fitness:
            return member.id
        program = member.program
        return self._hashes.get(canonical_hash(program, self.slot),
                                self._fingerprints.get(fingerprint(program, self.slot)))

    def _rescore(self, sources: set[int], train: Sequence[Task], baselines: dict[str, BaselineRecord]
                 ) -> tuple[dict[int, float], dict[int, dict[str, float]], list[ScoreRecord]]:
        """Earlier candidates on this generation's tasks, so that every member is compared on
        the same tasks: (fitness and per-task scores of each source, new score rows). Only
        tasks a source was never scored on are trained; screened sources stay the worst."""
        known = {s: {row.task: row.score for row in self.store.scores_of(s)}
                 for s in sorted(sources) if self._fitness[s][1] != "screened"}
        groups = [(task, [s for s in known if task.key not in known[s]]) for task in train]
        groups = [(task, chosen) for task, chosen in groups if chosen]
        programs = {s: simplify(parse(self.store.candidate(s).text))
                    for _, chosen in groups for s in chosen}
        table = score_groups(self.pool, self.config, self.encoding,
                             [(task, [programs[s] for s in chosen]) for task, chosen in groups],
                             baselines)
        rows = []
        for (task, chosen), per_source in zip(groups, table):
            for s, (value, _, row) in zip(chosen, per_source):
                known[s][task.key] = value
                rows.append(replace(row, candidate_id=s))
        fitness = {s: WORST for s in sources}
        for s, scores in known.items():
            values = [scores[task.key] for task in train]
            fitness[s] = float(np.mean(values)) if all(map(math.isfinite, values)) else WORST
        return fitness, known, rows

    # -- one generation ------------------------------------------------------------------

    def step(self) -> GenerationReport:
        """Run the next generation and archive it."""
        started = time.perf_counter()
        g = self.generation
        rng = np.random.default_rng([self.config.seed, g])
        levels = self.levels.sample() if self.levels is not None else []
        train = list(self.tasks.train) + levels
        baselines = self._ensure_baselines(g, levels)
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
            h, fp = canonical_hash(child.program, self.slot), fingerprint(child.program, self.slot)
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

        outcomes = self._evaluate(unique, train, baselines)
        old = self.population.members
        survivors = old[max(0, len(old) - (self.config.population.size - len(records))):]
        sources = {m.id: self._source(m) for m in survivors} if levels else {}
        current: dict[int, float] = {}  # source -> fitness on `train`, with levels only
        level_scores: dict[int, dict[str, float]] = {}  # source -> task key -> score
        scores: list[ScoreRecord] = []
        if levels:
            current, level_scores, scores = self._rescore(
                set(sources.values()) | {row["source"] for row in records if "source" in row},
                train, baselines)
        candidates = []
        firsts: dict[int, int] = {}
        for row in records:
            if "unique" in row:
                outcome = outcomes[row["unique"]]
                firsts[row["unique"]] = row["id"]
                fit, status, reason = outcome.fitness, outcome.status, outcome.reason
                scores += [ScoreRecord(candidate_id=row["id"], task=s.task, score=s.score,
                                       loss=s.loss, lr=s.lr, curve=s.curve)
                           for s in outcome.scores]
                level_scores[row["id"]] = {s.task: s.score for s in outcome.scores}
                self._hashes.setdefault(row["hash"], row["id"])
                self._fingerprints.setdefault(row["fingerprint"], row["id"])
                self._fitness[row["id"]] = (fit, status)
                sources[row["id"]] = row["id"]
            else:
                source = row.get("source", None)
                if source is None:
                    source = firsts[row["same_as"]]
                fit, source_status = self._fitness[source]
                fit = current.get(source, fit)  # with levels: on this generation's tasks
                status, reason = "cached", f"same function as candidate {source} " \
                                           f"({source_status})"
                sources[row["id"]] = source
            row["fitness"] = fit
            candidates.append(CandidateRecord(
                id=row["id"], generation=g, parent_id=row["parent"], kind="program",
                text=to_text(row["program"]), hash=row["hash"], fingerprint=row["fingerprint"],
                fitness=fit, status=status, reason=reason))
            if status == "ok" and not levels:
                self._note_leader(fit, row["id"], unique[row["unique"]])

        self.population = self.evolution.tell(
            self.population, [Member(r["id"], r["program"], r["fitness"]) for r in records])
        level_rows = []
        if levels:
            level_rows = self._rank_on_levels(g, levels, sources, current, level_scores)
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
            validated=mean_scores(validation), regret=regret_by_family(level_rows))
        self.store.add_generation(g, candidates, scores, validation, events={
            "candidates": report.candidates, "evaluated": report.evaluated,
            "cache_hits": report.cache_hits, "screened": report.screened,
            "failed": report.failed, "best": report.best, "median": report.median,
            **({"regret": float(np.mean([r.regret for r in level_rows]))} if level_rows else {})},
            levels=level_rows)
        self._checkpoint(g)
        self.generation = g + 1
        self.on_generation(report)
        return report

    def _rank_on_levels(self, g: int, levels: list[Task], sources: dict[int, int],
                        current: dict[int, float], level_scores: dict[int, dict[str, float]]
                        ) -> list[SampledLevelRecord]:
        """With levels: the surviving members take their fitness on this generation's tasks,
        the leaders are the population's best on them, and the scheduler gets the
        population's regret on each level; the archive rows of the levels."""
        members = tuple(replace(m, fitness=current[sources[m.id]]) if sources[m.id] in current
                        else m for m in self.population.members)
        self.population = EvolutionState(members)
        best: dict[int, list] = {}
        for m in sorted(members, key=lambda m: (-m.fitness, sources[m.id])):
            if math.isfinite(m.fitness) and sources[m.id] not in best:
                best[sources[m.id]] = [m.fitness, sources[m.id], to_text(simplify(m.program))]
        self.counters.leaders = list(best.values())[: 4 * self.config.validation.top]
        table = [[level_scores.get(sources[m.id], {}).get(level.key, math.nan)
                  for level in levels] for m in members]
        kind = "rl" if self.slot == OBJECTIVE else "optimizer"
        regrets = self.levels.regrets(table, baseline_score=BASELINE_SCORE[kind])
        self.levels.update(levels, regrets)
        return self.levels.rows(g, levels, regrets)

    def _note_leader(self, fit: float, cid: int, program: Program) -> None:
        leaders = self.counters.leaders + [[fit, cid, to_text(program)]]
        leaders.sort(key=lambda entry: (-entry[0], entry[1]))
        self.counters.leaders = leaders[: 4 * self.config.validation.top]

    def _validate(self, g: int, baselines: dict[str, BaselineRecord]
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



