"""Regularized evolution over programs, as the engine drives it: children are deduplicated
(canonical hash, then functional fingerprint) against the archive and each other, screened
(optimizer programs first for numerical stability and for a schedule counted in steps,
without training; then on a cheap task, where `screen.keep` < 1 lets only the best few by
screen fitness go on: successive halving),
scored on the training tasks, and told to the population. With `population.near_duplicate`
an optimizer child whose rollout (dsl.identity.rollout) is that close to a working
candidate's is a cached copy of it too: the search neither trains nor validates clones that
differ by a constant no training could feel.

On RL tasks programs fill the objective slot and are scored as PPO's drift; on optimizer tasks
the optimizer slot. With a level scheduler, every surviving member is also scored on the
generation's levels it has not seen, and its fitness is its running fitness: the mean over
every training task and level it has been scored on, so that the longer a member lives the
surer its rank (docs/architecture.md, "How the scheduler drives the search").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Collection, Sequence

import numpy as np

from disco_rules.discovery.config import Config
from disco_rules.discovery.plan import TaskPlan, load_warm_start, program_encoding
from disco_rules.discovery.scoring import (WORST, Pool, TaskScore, chosen_size, fitness_of,
                                           outcome, score_groups, score_programs, status_of,
                                           with_seeds)
from disco_rules.discovery.search.engine import Told
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import (WARM_START_DIR, BaselineRecord, CandidateRecord,
                                         RunStore, ScoreRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.identity import canonical_hash, fingerprint, nearest_rollout, rollout
from disco_rules.dsl.mutate import MutationConfig
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER
from disco_rules.dsl.stability import instability
from disco_rules.dsl.stationarity import step_schedules
from disco_rules.populations.evolution import (EvolutionState, Member, RegularizedEvolution,
                                               state_from_data, state_to_data)

@dataclass(frozen=True)
class Scored:
    """The outcome of evaluating one unique candidate."""

    fitness: float
    status: CandidateStatus
    reason: str | None
    scores: tuple[ScoreRecord, ...] = ()


def screen_reasons(programs: Sequence[Program]) -> list[str | None]:
    """Why each optimizer-slot program is refused before training (`instability`, then
    `step_schedules` for the stable, all at once), or None."""
    reasons = [f"unstable: {reason}" if (reason := instability(p)) else None for p in programs]
    stable = [i for i, reason in enumerate(reasons) if reason is None]
    for i, reason in zip(stable, step_schedules([programs[i] for i in stable])):
        reasons[i] = reason
    return reasons


def survivors(screen_fitness: Sequence[float], keep: float, min_fitness: float,
              new: int | None = None, exempt: Collection[int] = ()
              ) -> tuple[list[int], dict[int, str]]:
    """Who goes on from the screen task to the training tasks (successive halving): the
    positions at or above `min_fitness`, and of those not `exempt` only the best
    ceil(keep * new) by screen fitness (`new`: the generation's new children, default all
    here; ties go to the earlier position). The exempt pass on the threshold alone.
    Returns (kept positions in order, reason for each position dropped)."""
    new = len(screen_fitness) if new is None else new
    slots = max(1, math.ceil(round(keep * new, 9)))  # 0.1 * 30 is 3, not 3.0000000000000004
    reasons, ranked = {}, []
    for i, value in enumerate(screen_fitness):
        if not value >= min_fitness:  # NaN too
            reasons[i] = f"screen fitness {value:.3g} < {min_fitness}"
        elif i not in exempt:
            ranked.append(i)
    ranked.sort(key=lambda i: (-screen_fitness[i], i))
    for rank, i in enumerate(ranked[slots:], start=slots + 1):
        reasons[i] = (f"screen rank {rank} of {len(ranked)} (screen.keep {keep:g} trains the "
                      f"best {slots} of {new} new children)")
    return [i for i in range(len(screen_fitness)) if i not in reasons], reasons


@dataclass
class _Proposal:
    """A generation's children: one row each (id, parent, program, hash, fingerprint, and
    `source`/`same_as`/`unique` saying whose scores it gets) and the unique new programs, the
    first `warm` of which are warm starts."""

    rows: list[dict[str, Any]]
    unique: list[Program]
    warm: int = 0


@dataclass
class _Evaluated:
    outcomes: list[Scored]  # per unique program
    sources: dict[int, int]  # surviving member id -> its source (with levels only)
    running: dict[int, float]  # source -> its running fitness (with levels only)
    level_scores: dict[int, dict[str, float]]  # source -> task key -> score
    rescored: list[ScoreRecord]  # rows of earlier candidates on this generation's levels


class ProgramPopulation:
    """Regularized evolution over programs of the slot the run's tasks call for."""

    def __init__(self, config: Config, pool: Pool) -> None:
        self.config = config
        self.pool = pool
        plan = TaskPlan.from_config(config)
        self.screen = plan.screen
        self.heldout = {task.key for task in plan.heldout}  # their rows are validation's
        self.task_kind = plan.kind()
        self.slot = self.task_kind.slot
        self.agent = config.ppo  # the RL baseline of drift programs is PPO
        self.scored_as = ("final return as PPO's drift, normalised by tuned PPO's (1: as good)"
                          if self.slot == OBJECTIVE
                          else "log(tuned baseline loss / program loss), each at its best lr")
        self.encoding = program_encoding(self.task_kind, config)
        self.evolution = RegularizedEvolution(
            size=config.population.size, tournament=config.population.tournament,
            mutation=MutationConfig(max_statements=config.population.max_statements,
                                    ops=config.population.ops),
            elite=config.population.elite)
        self.state = EvolutionState()
        self.warm_start: list[Program] = []
        self.store: RunStore | None = None
        self._hashes: dict[str, int] = {}
        self._fingerprints: dict[str, int] = {}
        # evaluated id -> (fitness, status)
        self._fitness: dict[int, tuple[float, CandidateStatus]] = {}
        self._fresh: dict[int, Program] = {}  # this generation's simplified programs by id
        # near duplicates (optimizer programs only): working source -> its rollout, and member
        # -> the source it is a near copy of (checkpointed: the archive keeps no such link)
        self._near = config.population.near_duplicate if self.slot == OPTIMIZER else 0.0
        self._rollouts: dict[int, np.ndarray] = {}
        self._near_sources: dict[int, int] = {}

    # -- state ---------------------------------------------------------------------------

    def load(self, store: RunStore, data: dict[str, Any] | None) -> None:
        """The warm starts from the run directory; the population from `data` if given; the
        dedupe tables from the archive (only evaluated candidates are sources)."""
        self.store = store
        self.warm_start = load_warm_start(
            sorted((store.run_dir / WARM_START_DIR).glob("*.py")), self.encoding)
        if data is not None:
            self.state = state_from_data(data["population"])
            self._near_sources = {child: source for child, source in data.get("near", [])}
        self._hashes = store.known_hashes(exclude_status=CandidateStatus.CACHED)
        self._fingerprints = store.known_fingerprints(exclude_status=CandidateStatus.CACHED)
        self._fitness = {}
        for source in set(self._hashes.values()) | set(self._fingerprints.values()):
            record = store.candidate(source)
            self._fitness[source] = (record.fitness, record.status)
        self._rollouts = {}
        if self._near:
            for source, (_, status) in sorted(self._fitness.items()):
                trace = rollout(simplify(parse(store.candidate(source).text))) \
                    if status == CandidateStatus.OK else None
                if trace is not None:
                    self._rollouts[source] = trace

    def to_data(self) -> dict[str, Any]:
        return {"population": state_to_data(self.state),
                "near": [[child, source] for child, source in sorted(self._near_sources.items())]}

    # -- ask -----------------------------------------------------------------------------

    def ask(self, generation: int, first_id: int) -> _Proposal:
        """Children (the warm starts and their mutants in generation 0), deduplicated."""
        rng = np.random.default_rng([self.config.seed, generation])
        if generation == 0:
            children = self.evolution.initial(self.warm_start, rng)
        else:
            children = self.evolution.ask(self.state, rng, self.config.population.children)
        # generation 0 starts with the warm starts (RegularizedEvolution.initial)
        warm_starts = min(len(self.warm_start), self.config.population.size) \
            if generation == 0 else 0
        rows: list[dict[str, Any]] = []
        new: dict[str, int] = {}  # hash or fingerprint -> index in `unique`
        unique: list[Program] = []
        for cid, child in enumerate(children, start=first_id):
            h = canonical_hash(child.program, self.slot)
            fp = fingerprint(child.program, self.slot)
            row = {"id": cid, "parent": child.parent_id, "program": child.program,
                   "hash": h, "fingerprint": fp}
            source = self._hashes.get(h, self._fingerprints.get(fp))
            simplified = None
            if source is None and h not in new and fp not in new and self._near:
                simplified = simplify(child.program)
                row["rollout"] = rollout(simplified)
                source, distance = nearest_rollout(row["rollout"], self._rollouts, self._near)
                if source is not None:
                    row["near"] = distance
            if source is not None:
                row["source"] = source
            elif h in new or fp in new:
                row["same_as"] = new.get(h, new.get(fp))
            else:
                new[h] = new[fp] = len(unique)
                row["unique"] = len(unique)
                unique.append(simplify(child.program) if simplified is None else simplified)
            rows.append(row)
        return _Proposal(rows, unique, sum("unique" in row for row in rows[:warm_starts]))

    # -- evaluate ------------------------------------------------------------------------

    def evaluate(self, proposal: _Proposal, train: Sequence[Task], levels: Sequence[Task],
                 baselines: dict[str, BaselineRecord]) -> _Evaluated:
        """Screen and score the new programs; with levels, re-score the members."""
        outcomes = self._evaluate(proposal.unique, train, baselines, proposal.warm)
        if not levels:
            return _Evaluated(outcomes, {}, {}, {}, [])
        # every member, as the children's fitness on these tasks decides who leaves
        sources = {m.id: self._source(m) for m in self.state.members}
        running, level_scores, rescored = self._rescore(
            set(sources.values()) | {row["source"] for row in proposal.rows if "source" in row},
            train, baselines)
        return _Evaluated(outcomes, sources, running, level_scores, rescored)

    def _score(self, programs: list[Program], tasks: Sequence[Task],
               baselines: dict[str, BaselineRecord]) -> list[list[TaskScore]]:
        return score_programs(self.pool, self.config, self.encoding, programs, tasks, baselines)

    def _evaluate(self, programs: list[Program], train: Sequence[Task],
                  baselines: dict[str, BaselineRecord], warm: int = 0) -> list[Scored]:
        """Screen (numerical stability, a schedule counted in steps, then the screen task:
        `survivors`), then score on the training tasks; never raises for a bad candidate. The
        first `warm` programs are warm starts: they face the stability and step-count checks
        and `screen.min_fitness` but not `screen.keep`'s cut,
        and take none of its places (ceil(keep * the other new programs)), so a user's warm
        starts are always scored and mutants compete only with mutants."""
        outcomes: list[Scored | None] = [None] * len(programs)
        passing = list(range(len(programs)))
        if self.slot == OPTIMIZER:  # drift programs have no such check
            passing = []
            for i, reason in enumerate(screen_reasons(programs)):
                if reason is None:
                    passing.append(i)
                else:
                    outcomes[i] = Scored(WORST, CandidateStatus.SCREENED, reason)
        if self.screen is not None and passing:
            screened = [score for (score,) in
                        self._score([programs[i] for i in passing], [self.screen], baselines)]
            kept, reasons = survivors(
                [score.value for score in screened], self.config.screen.keep,
                self.config.screen.min_fitness, new=len(programs) - warm,
                exempt={k for k, i in enumerate(passing) if i < warm})
            for k, reason in reasons.items():
                why = screened[k].reason
                status = CandidateStatus.TIMEOUT if why and \
                    status_of(why) == CandidateStatus.TIMEOUT else CandidateStatus.SCREENED
                outcomes[passing[k]] = Scored(WORST, status, why or reason)
            passing = [passing[k] for k in kept]
        full = self._score([programs[i] for i in passing], train, baselines)
        for i, per_task in zip(passing, full):
            outcomes[i] = Scored(*outcome(per_task, self.config.tasks.fitness_cap),
                                 tuple(score.row for score in per_task))
        return [o for o in outcomes if o is not None]

    def _source(self, member: Member) -> int:
        """The evaluated candidate whose scores a member has: itself, or the one it is a
        cached copy of."""
        if member.id in self._fitness:
            return member.id
        if member.id in self._near_sources:
            return self._near_sources[member.id]
        program = member.program
        return self._hashes.get(canonical_hash(program, self.slot),
                                self._fingerprints.get(fingerprint(program, self.slot)))

    def _rescore(self, sources: set[int], train: Sequence[Task],
                 baselines: dict[str, BaselineRecord]
                 ) -> tuple[dict[int, float], dict[int, dict[str, float]], list[ScoreRecord]]:
        """Earlier candidates on this generation's tasks, so that every member is compared on
        the same tasks: (running fitness and per-task scores of each source, new score rows).
        Only tasks a source was never scored on are trained; screened and timed-out sources
        (which would likely hang again) stay the worst."""
        skipped = (CandidateStatus.SCREENED, CandidateStatus.TIMEOUT)
        known = {s: {row.task: row.score for row in self.store.scores_of(s)}
                 for s in sorted(sources) if self._fitness[s][1] not in skipped}
        groups = [(task, [s for s in known if task.key not in known[s]]) for task in train]
        groups = [(task, chosen) for task, chosen in groups if chosen]
        programs = {s: simplify(parse(self.store.candidate(s).text))
                    for _, chosen in groups for s in chosen}
        table = score_groups(self.pool, self.config, self.encoding,
                             [(task, [programs[s] for s in chosen]) for task, chosen in groups],
                             baselines)
        rows = []
        for (task, chosen), per_source in zip(groups, table):
            for s, score in zip(chosen, per_source):
                known[s][task.key] = score.value
                rows.append(replace(score.row, candidate_id=s))
        fitness = {s: WORST for s in sources}
        for s, scores in known.items():  # every training score it has, none of validation's
            values = [score for task, score in scores.items() if task not in self.heldout]
            fitness[s] = fitness_of(values, self.config.tasks.fitness_cap) \
                if all(map(math.isfinite, values)) else WORST
        return fitness, known, rows

    # -- tell ----------------------------------------------------------------------------

    def tell(self, proposal: _Proposal, evaluated: _Evaluated, generation: int,
             levels: Sequence[Task]) -> Told:
        """Archive rows of the children; the population takes them in (oldest out)."""
        rows, outcomes = proposal.rows, evaluated.outcomes
        sources = dict(evaluated.sources)  # members of this generation join below
        level_scores = dict(evaluated.level_scores)
        scores = list(evaluated.rescored)
        candidates, leaders = [], []
        firsts: dict[int, int] = {}  # index in unique -> id of its first candidate
        self._fresh = {}
        for row in rows:
            if "unique" in row:
                outcome = outcomes[row["unique"]]
                firsts[row["unique"]] = row["id"]
                fit, status, reason = outcome.fitness, outcome.status, outcome.reason
                scores += [replace(s, candidate_id=row["id"]) for s in outcome.scores]
                level_scores[row["id"]] = {s.task: s.score for s in outcome.scores}
                self._hashes.setdefault(row["hash"], row["id"])
                self._fingerprints.setdefault(row["fingerprint"], row["id"])
                self._fitness[row["id"]] = (fit, status)
                self._fresh[row["id"]] = proposal.unique[row["unique"]]
                sources[row["id"]] = row["id"]
                if status == CandidateStatus.OK and row.get("rollout") is not None:
                    self._rollouts[row["id"]] = row["rollout"]
                if status == CandidateStatus.OK and not levels:
                    leaders.append((fit, row["id"]))
            else:
                source = row.get("source")
                if source is None:
                    source = firsts[row["same_as"]]
                fit, source_status = self._fitness[source]
                fit = evaluated.running.get(source, fit)  # with levels: its running fitness
                status = CandidateStatus.CACHED
                reason = f"same function as candidate {source} ({source_status})"
                if "near" in row:
                    reason = (f"nearly the same function as candidate {source}: updates "
                              f"within {row['near']:.2g} of a step ({source_status})")
                    self._near_sources[row["id"]] = source
                sources[row["id"]] = source
            row["fitness"] = fit
            candidates.append(CandidateRecord(
                id=row["id"], generation=generation, parent_id=row["parent"], kind="programs",
                text=to_text(row["program"]), hash=row["hash"], fingerprint=row["fingerprint"],
                fitness=fit, status=status, reason=reason))
        if levels:
            # every member takes its running fitness, this generation's levels included,
            # before the children join: the elite is chosen by it (a cached child has it
            # already), and members keep the last one they had when they leave
            self.state = EvolutionState(tuple(
                replace(m, fitness=evaluated.running[sources[m.id]])
                if sources[m.id] in evaluated.running else m for m in self.state.members))
        self.state = self.evolution.tell(
            self.state, [Member(r["id"], r["program"], r["fitness"]) for r in rows])
        members = self.state.members
        living = {m.id for m in members}
        self._near_sources = {c: s for c, s in self._near_sources.items() if c in living}
        table: list[list[float]] = []
        if levels:
            # the leaders are the members scored on two generations' levels or more, by
            # their running fitness (a newborn's mean over one generation's few levels ranks
            # it poorly: docs/results.md, "Validating members scored on two generations")
            leaders = sorted({(m.fitness, sources[m.id]) for m in members
                              if math.isfinite(m.fitness) and sources[m.id] not in self._fresh})
            table = [[level_scores.get(sources[m.id], {}).get(level.key, math.nan)
                      for level in levels] for m in members]
        return Told(candidates=candidates, scores=scores, evaluated=len(proposal.unique),
                    cache_hits=len(rows) - len(proposal.unique),
                    fitness=[m.fitness for m in members], leaders=leaders,
                    level_scores=table)

    # -- meta-validation -----------------------------------------------------------------

    def validation_extras(self, generation: int) -> list[int]:
        """In generation 0, the warm starts: the reference the winners must beat."""
        if generation != 0:
            return []
        # generation 0's ids start at 0, the warm starts first (RegularizedEvolution.initial)
        count = min(len(self.warm_start), self.config.population.size)
        return [cid for cid in range(count) if cid in self._fitness]

    def program(self, cid: int) -> Program:
        """Candidate `cid`'s simplified program (this generation's, or from the archive)."""
        if cid in self._fresh:
            return self._fresh[cid]
        return simplify(parse(self.store.candidate(cid).text))

    def score(self, ids: Sequence[int], tasks: Sequence[Task],
              baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        return self.score_rules([self.program(cid) for cid in ids], tasks, baselines, seeds)

    def check_rule(self, rule: Any) -> None:
        """ValueError (ProgramError) unless `rule` is a program of the run's slot that fits
        its encoding."""
        if not isinstance(rule, Program):
            raise ValueError(f"a {rule[0].kind} network; this run's candidates are programs")
        self.encoding.encode(rule)

    def score_rules(self, rules: Sequence[Program], tasks: Sequence[Task],
                    baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        return score_programs(self.pool, with_seeds(self.config, seeds), self.encoding,
                              list(rules), tasks, baselines, chosen_size(self.config))
