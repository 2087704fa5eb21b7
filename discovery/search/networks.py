"""An evosax strategy over rule-network weights (LPO / TA-LPO drifts, LPG / TA-LPG), as the
engine drives it.

Each generation the strategy asks for a population; it is scored with the strategy's mean (the
rule it would export) as agents on every training task (PPO with the drift; LPG's
actor-predictor), each by its return normalised by the tuned hand-designed algorithm's, and
told back. Training seeds change every generation (drawn from (seed, generation)), so a rule
cannot overfit a fixed set of initialisations; members of one generation share them.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import jax
import numpy as np

from disco_rules.discovery.config import Config, ConfigError
from disco_rules.discovery.inner.rl_train import AgentConfig
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.scoring import Pool, TaskScore, outcome, score_rules, with_seeds
from disco_rules.discovery.search.engine import Told
from disco_rules.discovery.search.kinds import network_text, population_kind
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import BaselineRecord, CandidateRecord, RunStore
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.tasks.kinds import task_kind
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.program import Program, ProgramError
from disco_rules.dsl.slots import OBJECTIVE
from disco_rules.populations.rule_network import RuleNetwork
from disco_rules.populations.strategy import Strategy, StrategySpec

_INIT_STREAM = 0x1A17  # the initial network's key, apart from the generations' streams


def network_of(config: Config) -> RuleNetwork:
    """The rule network of the config's population kind."""
    population = config.population
    return population_kind(population.kind).network(population.hidden,
                                                    config.lpg.prediction_size)


def agent_of(config: Config) -> AgentConfig:
    """The agent config the kind's rules train ([ppo] for drifts, [lpg] for LPG)."""
    return getattr(config, population_kind(config.population.kind).agent)


def weights_hash(weights: np.ndarray) -> str:
    return hashlib.sha256(np.asarray(weights, "<f4").tobytes()).hexdigest()[:16]


@dataclass
class _Proposal:
    ids: list[int]
    weights: np.ndarray  # [1 + P, D]: the strategy's mean, then the population
    population: np.ndarray
    state: Any  # the strategy's state after ask
    tell_key: jax.Array
    run_seed: int  # the generation's training seed


class NetworkPopulation:
    """Meta-training of a rule network's weights with an evosax strategy."""

    scored_as = "final return normalised by the tuned baseline's (1: as good)"

    def __init__(self, config: Config, pool: Pool) -> None:
        self.config = config
        self.pool = pool
        plan = TaskPlan.from_config(config)
        for task in plan.all():
            if not task_kind(task.kind).trains_agents:
                raise ConfigError(f"tasks: {task.family} is not an RL family; a "
                                  f"{config.population.kind} population trains RL agents")
        self.task_kind = plan.kind()
        self.network = network_of(config)
        self.agent = agent_of(config)
        spec = StrategySpec(config.es.strategy, config.population.size, config.es.sigma,
                            config.es.learning_rate)
        key = jax.random.PRNGKey(config.seed)
        self.strategy = Strategy(spec, self.network.init(jax.random.fold_in(key, _INIT_STREAM)))
        self.state = self.strategy.init(jax.random.fold_in(key, _INIT_STREAM + 1))
        self.mean_id: int | None = None  # the archived candidate of the current mean
        self.store: RunStore | None = None
        self._fresh: dict[int, np.ndarray] = {}  # this generation's weights by id

    # -- state ---------------------------------------------------------------------------

    def load(self, store: RunStore, data: dict[str, Any] | None) -> None:
        """The strategy state from `data` (restored into a fresh state's structure)."""
        self.store = store
        if data is not None:
            self.state = self.strategy.state_from_data(data["strategy"])
            # checkpoints written before one engine kept the mean's id among the counters
            self.mean_id = data.get("mean_id", data["counters"].get("mean_id"))

    def to_data(self) -> dict[str, Any]:
        return {"strategy": self.strategy.state_to_data(self.state), "mean_id": self.mean_id}

    # -- ask, evaluate, tell -------------------------------------------------------------

    def ask(self, generation: int, first_id: int) -> _Proposal:
        """The strategy's population, with its mean first."""
        key = jax.random.fold_in(jax.random.PRNGKey(self.config.seed), generation)
        k_ask, k_tell = jax.random.split(key)
        mean = self.strategy.mean(self.state)
        population, state = self.strategy.ask(k_ask, self.state)
        weights = np.concatenate([mean[None], population])
        run_seed = int(np.random.default_rng([self.config.seed, generation]).integers(2 ** 31))
        return _Proposal(list(range(first_id, first_id + len(weights))), weights, population,
                         state, k_tell, run_seed)

    def evaluate(self, proposal: _Proposal, train: Sequence[Task], levels: Sequence[Task],
                 baselines: dict[str, BaselineRecord]) -> list[list[TaskScore]]:
        """Every rule (the mean too) on every training task, with the generation's seeds."""
        return score_rules(self.pool, self.config, self.network.kind, self.network, self.agent,
                           proposal.weights, train, baselines, proposal.run_seed)

    def tell(self, proposal: _Proposal, table: list[list[TaskScore]], generation: int,
             levels: Sequence[Task]) -> Told:
        """The members' fitness to the strategy; every rule and its weights to the archive."""
        candidates, scores, fitness, leaders = [], [], [], []
        ids = proposal.ids
        for i, (cid, weights, per_task) in enumerate(zip(ids, proposal.weights, table)):
            fit, status, reason = outcome(per_task, self.config.tasks.fitness_cap)
            fitness.append(fit)
            candidates.append(CandidateRecord(
                id=cid, generation=generation, kind=self.network.kind,
                text=network_text(self.network), hash=weights_hash(weights), fitness=fit,
                status=status, reason=reason or ("the strategy's mean" if i == 0 else None),
                parent_id=self.mean_id if i == 0 else ids[0], weights=weights))
            scores += [dataclasses.replace(score.row, candidate_id=cid) for score in per_task]
            if status == CandidateStatus.OK:
                leaders.append((fit, cid))
        self.state = self.strategy.tell(proposal.tell_key, proposal.population,
                                        np.array(fitness[1:]), proposal.state)
        self.mean_id = ids[0]
        self._fresh = dict(zip(ids, proposal.weights))
        first = len(table[0]) - len(levels)
        level_scores = [[score.value if score.reason is None else -np.inf
                         for score in per_task[first:]] for per_task in table[1:]]
        return Told(candidates=candidates, scores=scores, evaluated=len(ids), cache_hits=0,
                    fitness=fitness[1:], leaders=leaders, level_scores=level_scores,
                    events={"mean": fitness[0]})

    # -- meta-validation -----------------------------------------------------------------

    def validation_extras(self, generation: int) -> list[int]:
        """The strategy's current mean, each time: the rule it would export."""
        return [self.mean_id] if self.mean_id is not None else []

    def weights(self, cid: int) -> np.ndarray:
        """Candidate `cid`'s weights (this generation's, or from the archive)."""
        return self._fresh[cid] if cid in self._fresh else self.store.candidate(cid).weights

    def score(self, ids: Sequence[int], tasks: Sequence[Task],
              baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        return self.score_rules([(self.network, self.weights(cid)) for cid in ids], tasks,
                                baselines, seeds)

    def check_rule(self, rule: Any) -> None:
        """ValueError unless `rule` is (shape, weights) of the run's network or, in a drift
        run, a drift program (PPO trains with either)."""
        drift = population_kind(self.network.kind).drift
        if isinstance(rule, Program) and drift:
            try:
                OBJECTIVE.check(rule)
            except ProgramError as error:
                raise ValueError(f"not a drift program: {error}") from None
        elif isinstance(rule, Program) or rule[0] != self.network:
            raise ValueError(f"not a {self.network.kind} network of this run's shape "
                             f"({network_text(self.network)})"
                             + (" or a drift program" if drift else ""))

    def score_rules(self, rules: Sequence[Any], tasks: Sequence[Task],
                    baselines: dict[str, BaselineRecord], seeds: int) -> list[list[TaskScore]]:
        """Networks as `score` scores candidates; drift programs trained as the same PPO."""
        config = with_seeds(self.config, seeds)
        networks = {i: rule[1] for i, rule in enumerate(rules) if not isinstance(rule, Program)}
        programs = {i: rule for i, rule in enumerate(rules) if isinstance(rule, Program)}
        table: list[list[TaskScore]] = [[] for _ in rules]
        if networks:
            rows = score_rules(self.pool, config, self.network.kind, self.network, self.agent,
                               np.stack(list(networks.values())), tasks, baselines,
                               self.config.seed)
            for i, row in zip(networks, rows):
                table[i] = row
        if programs:
            encoding = Encoding(slot=OBJECTIVE,
                                max_statements=max(len(p.body) for p in programs.values()))
            rows = score_rules(self.pool, config, "programs", encoding, self.agent,
                               encoding.encode_population(list(programs.values())), tasks,
                               baselines, self.config.seed)
            for i, row in zip(programs, rows):
                table[i] = row
        return table
