"""The driver of a network search: meta-training a learned rule (an LPO / TA-LPO drift network
or an LPG / TA-LPG network) with an evosax strategy, through the same pool, run store and
reports as programs.

One generation: ask the strategy for a population, evaluate it with the current mean (the rule
the strategy would export) as agents on every training task (PPO with the drift; the
actor-predictor with LPG), score each by its return normalised by the tuned hand-designed
algorithm's (PPO; A2C for LPG), tell the strategy, archive every member with its weights, and
checkpoint the strategy's state. Keys come from (seed, generation), so a resumed run ends
where the uninterrupted run ends.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from typing import Callable, Sequence

import jax
import numpy as np

from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.inner.rl_train import AgentConfig, Network
from disco_rules.discovery.levels import Levels, regret_by_family
from disco_rules.discovery.scoring import (BASELINE_SCORE, FITNESS_CAP, WORST, Pool, TaskScore,
                                          mean_scores, score_rules)
from disco_rules.discovery.baselines import ensure_baselines
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.search import GenerationReport
from disco_rules.discovery.store import (BaselineRecord, CandidateRecord, RunStore, ScoreRecord,
                             ValidationRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.populations.drift_network import DRIFT_KINDS, DriftNetwork
from disco_rules.populations.lpg_network import LPGNetwork
from disco_rules.populations.strategy import Strategy, StrategySpec

_INIT_STREAM = 0x1A17  # the initial network's key, apart from the generations' streams


def network_of(config: Config) -> tuple[Network, AgentConfig]:
    """The rule network of the config's population kind and the agent config it trains with."""
    kind, hidden = config.population.kind, config.population.hidden
    if kind in DRIFT_KINDS:
        return DriftNetwork.of_kind(kind, hidden), config.ppo
    return LPGNetwork.of_kind(kind, hidden, config.lpg.prediction_size), config.lpg


def network_text(network: Network) -> str:
    """What the archive's text column holds for a network candidate: its shape, as JSON."""
    shape = {"network": network.kind, "hidden": network.hidden}
    if isinstance(network, LPGNetwork):
        shape["prediction_size"] = network.prediction_size
    return json.dumps(shape)


def network_from_text(text: str) -> Network:
    """The network shape of an archived candidate; ValueError if it is not a network."""
    try:
        data = json.loads(text)
        if data["network"] in DRIFT_KINDS:
            return DriftNetwork.of_kind(data["network"], int(data["hidden"]))
        return LPGNetwork.of_kind(data["network"], int(data["hidden"]),
                                  int(data["prediction_size"]))
    except (ValueError, KeyError, TypeError):
        raise ValueError("not a network candidate") from None


def weights_hash(weights: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(weights, "<f4").tobytes()).hexdigest()[:16]



class NeuralSearch:
    """Meta-training of a rule-network population over one run directory."""

    def __init__(self, config: Config, store: RunStore, pool: Pool,
                 on_generation: Callable[[GenerationReport], None] | None = None) -> None:
        self.config = config
        self.store = store
        self.pool = pool
        self.on_generation = on_generation or (lambda report: None)
        self.tasks = TaskPlan.from_config(config)
        for task in self.tasks.all():
            if task.kind != "rl":
                raise ConfigError(f"tasks: {task.family} is not an RL family; a "
                                  f"{config.population.kind} population trains RL agents")
        self.network, self.agent = network_of(config)
        for family in config.scheduler.families if config.scheduler.kind != "none" else ():
            if Task.make(family).kind != "rl":
                raise ConfigError(f"scheduler.families.{family}: not an RL family; a "
                                  f"{config.population.kind} population trains RL agents")
        # levels never repeat a fixed task: held-out tasks stay held out
        self.levels = Levels.from_config(config, FITNESS_CAP, exclude=self.tasks.all())
        spec = StrategySpec(config.es.strategy, config.population.size, config.es.sigma,
                            config.es.learning_rate)
        key = jax.random.PRNGKey(config.seed)
        initial = self.network.init(jax.random.fold_in(key, _INIT_STREAM))
        self.strategy = Strategy(spec, initial)
        self.state = self.strategy.init(jax.random.fold_in(key, _INIT_STREAM + 1))
        self.generation = 0
        self.counters = {"next_id": 0, "evaluated": 0, "mean_id": None,
                         "leaders": [], "validated": []}

    # -- state ---------------------------------------------------------------------------

    def restore(self) -> None:
        """Continue from the newest intact checkpoint; archive rows after it are rolled back."""
        checkpoint = self.store.rewind()
        if checkpoint is not None:
            last, data = checkpoint
            try:
                self.state = self.strategy.state_from_data(data["strategy"])
            except (KeyError, ValueError) as error:
                raise ConfigError(f"the checkpoint does not fit this config: {error}") from None
            self.counters = data["counters"]
            if self.levels is not None:
                self.levels.load(data["levels"])
            self.generation = last + 1

    def _checkpoint(self, generation: int) -> None:
        state = {"strategy": self.strategy.state_to_data(self.state), "counters": self.counters}
        if self.levels is not None:
            state["levels"] = self.levels.to_data()
        self.store.save_checkpoint(generation, state)

    # -- evaluation ----------------------------------------------------------------------

    def _ensure_baselines(self, generation: int, levels: Sequence[Task] = ()
                          ) -> dict[str, BaselineRecord]:
        return ensure_baselines(self.pool, self.store, self.config, self.agent,
                                self.tasks.all() + list(levels), generation)

    def score(self, weights: np.ndarray, tasks: Sequence[Task],
              baselines: dict[str, BaselineRecord], run_seed: int
              ) -> list[list[TaskScore]]:
        return score_rules(self.pool, self.config, self.network, self.agent, weights, tasks,
                           baselines, run_seed)

    # -- one generation ------------------------------------------------------------------

    def step(self) -> GenerationReport:
        """Run the next generation and archive it."""
        started = time.perf_counter()
        g = self.generation
        # with a scheduler, this generation's levels join the fixed training tasks; every
        # member is scored on them afresh, so fitnesses within a generation compare directly
        levels = self.levels.sample() if self.levels is not None else []
        train = list(self.tasks.train) + levels
        baselines = self._ensure_baselines(g, levels)
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), g)
        k_ask, k_tell = jax.random.split(key)
        mean = self.strategy.mean(self.state)
        population, state = self.strategy.ask(k_ask, self.state)
        weights = np.concatenate([mean[None], population])
        run_seed = int(np.random.default_rng([self.config.seed, g]).integers(2 ** 31))
        table = self.score(weights, train, baselines, run_seed)

        ids = list(range(self.counters["next_id"], self.counters["next_id"] + len(weights)))
        self.counters["next_id"] += len(weights)
        candidates, scores, fitness = [], [], []
        for i, (cid, row_weights, per_task) in enumerate(zip(ids, weights, table)):
            reasons = [reason for _, reason, _ in per_task if reason]
            fit = WORST if reasons else float(np.mean([value for value, _, _ in per_task]))
            fitness.append(fit)
            candidates.append(CandidateRecord(
                id=cid, generation=g, kind=self.network.kind, text=network_text(self.network),
                hash=weights_hash(row_weights), fitness=fit,
                status=("nan" if reasons[0] == "nan" else "failed") if reasons else "ok",
                reason=reasons[0] if reasons else ("the strategy's mean" if i == 0 else None),
                parent_id=self.counters["mean_id"] if i == 0 else ids[0],
                weights=row_weights))
            scores += [dataclasses.replace(row, candidate_id=cid) for _, _, row in per_task]
            if not reasons:
                self._note_leader(fit, cid)
        self.state = self.strategy.tell(k_tell, population, np.array(fitness[1:]), state)
        level_rows = self._update_levels(g, levels, table[1:]) if levels else []
        self.counters["mean_id"] = ids[0]

        validation, validation_scores = self._validate(g, baselines, dict(zip(ids, weights)))
        scores += validation_scores
        finite = np.array([f for f in fitness[1:] if np.isfinite(f)])
        self.counters["evaluated"] += len(weights)
        report = GenerationReport(
            generation=g, candidates=len(weights), evaluated=len(weights), cache_hits=0,
            screened=0, failed=sum(c.status != "ok" for c in candidates),
            best=float(finite.max()) if finite.size else WORST,
            median=float(np.median(finite)) if finite.size else WORST,
            seconds=time.perf_counter() - started,
            total_evaluated=self.counters["evaluated"], total_cache_hits=0,
            validated=mean_scores(validation), regret=regret_by_family(level_rows))
        self.store.add_generation(g, candidates, scores, validation, events={
            "candidates": report.candidates, "evaluated": report.evaluated,
            "failed": report.failed, "best": report.best, "median": report.median,
            "mean": fitness[0]}, levels=level_rows)
        self._checkpoint(g)
        self.generation = g + 1
        self.on_generation(report)
        return report

    def _update_levels(self, g: int, levels: list[Task], members: list[list[TaskScore]]
                       ) -> list:
        """The members' regret on each level (against the baseline's normalised score, 1),
        given to the scheduler; the levels' archive rows."""
        first = len(self.tasks.train)
        table = [[value if reason is None else -np.inf
                  for value, reason, _ in per_task[first:]] for per_task in members]
        regrets = self.levels.regrets(table, baseline_score=BASELINE_SCORE["rl"])
        self.levels.update(levels, regrets)
        return self.levels.rows(g, levels, regrets)

    def _note_leader(self, fit: float, cid: int) -> None:
        leaders = self.counters["leaders"] + [[fit, cid]]
        leaders.sort(key=lambda entry: (-entry[0], entry[1]))
        self.counters["leaders"] = leaders[: 4 * self.config.validation.top]

    def _validate(self, g: int, baselines: dict[str, BaselineRecord],
                  fresh: dict[int, np.ndarray]
                  ) -> tuple[list[ValidationRecord], list[ScoreRecord]]:
        """Meta-validation: the best not-yet-validated networks (and, each time, the current
        mean) on the held-out tasks, with the run's fixed seeds. `fresh`: this generation's
        weights, not archived yet."""
        last = g == self.config.generations - 1
        if not (g == 0 or last or (g + 1) % self.config.validation.every == 0):
            return [], []
        chosen = [e[1] for e in self.counters["leaders"]
                  if e[1] not in self.counters["validated"]][: self.config.validation.top]
        mean_id = self.counters["mean_id"]
        if mean_id not in chosen and mean_id not in self.counters["validated"]:
            chosen.append(mean_id)
        weights = np.stack([fresh[cid] if cid in fresh else self.store.candidate(cid).weights
                            for cid in chosen])
        table = self.score(weights, self.tasks.heldout, baselines, self.config.seed)
        records, rows = [], []
        for cid, per_task in zip(chosen, table):
            self.counters["validated"].append(cid)
            records += [ValidationRecord(candidate_id=cid, task=row.task, score=value)
                        for value, _, row in per_task]
            rows += [dataclasses.replace(row, candidate_id=cid) for _, _, row in per_task]
        return records, rows

    def run(self, generations: int) -> None:
        """Run until `generations` generations exist (counting from 0)."""
        while self.generation < generations:
            self.step()


