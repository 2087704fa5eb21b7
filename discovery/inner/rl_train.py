"""RL evaluation of learned rules: a population of rules trained as agents on one environment
in one compiled call (drift networks and drift programs as PPO's objective, LPG networks as
the actor-predictor's update rule; each population kind names its trainer here), the
hand-designed baseline (PPO, or A2C for LPG) and the meta-fitness that compares them.

Compiled functions are cached per (environment, horizon, agent config, network shape and
population size), so an evaluator actor compiles each once and reuses it for every level of
the same environment and layout shape (env params are traced arguments).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.discovery.config import LPGTrainConfig, PPOConfig
from disco_rules.discovery.inner.lpg import make_a2c_train, make_lpg_train
from disco_rules.discovery.inner.ppo import lpo_objective, make_train, ppo_clip_drift, program_drift
from disco_rules.discovery.search.kinds import population_kind
from disco_rules.discovery.tasks import Environment, Task, make_env
from disco_rules.dsl.interpreter import Encoding
from disco_rules.populations.drift_network import DriftNetwork
from disco_rules.populations.lpg_network import LPGNetwork
from disco_rules.populations.rule_network import RuleNetwork

RuleShape = RuleNetwork | Encoding
"""The shape of a population's rules: a rule network (flat weights), or objective-slot
programs (encoded), which PPO runs as drifts."""
AgentConfig = PPOConfig | LPGTrainConfig
_COMPILED: dict[tuple, Callable[..., Any]] = {}


class RLScores(NamedTuple):
    """Returns of many agents: curve [..., updates], final return [...] (NaN where the
    agent's weights went non-finite), and the rule's regulariser [...] that its fitness
    pays (LPG's L2 on its targets, as in its meta-objective; 0 for drifts)."""

    curve: Any
    final_return: Any
    penalty: Any


class RLBaseline(NamedTuple):
    """The hand-designed algorithm at its best learning rate: the lr, its mean final return
    over seeds and its mean return curve."""

    lr: float
    final_return: float
    curve: np.ndarray


def _environment(task: Task) -> Environment:
    built = task.build()
    if not isinstance(built, Environment):
        raise ValueError(f"{task.key} is not an RL task")
    return built


def _horizon(config: AgentConfig, env: Environment) -> AgentConfig:
    return dataclasses.replace(config, total_timesteps=env.total_timesteps)


def _shapes(tree: Any) -> tuple:
    """What a compiled function of `tree` depends on: its leaves' shapes and dtypes."""
    return tuple((np.shape(x), jnp.result_type(x).name) for x in jax.tree.leaves(tree))


def _compiled(key: tuple, make: Callable[[], Callable[..., Any]]) -> Callable[..., Any]:
    if key not in _COMPILED:
        _COMPILED[key] = make()
    return _COMPILED[key]


def _ppo(config: AgentConfig, rules: str) -> PPOConfig:
    if not isinstance(config, PPOConfig):
        raise TypeError(f"{rules} train PPO agents: give a PPOConfig")
    return config


def drift_program_train(encoding: Encoding, config: AgentConfig, env_name: str
                        ) -> Callable[[Any, Any, jax.Array], Any]:
    """`train(encoded program, env params, key)`: PPO with the program as its drift."""
    return make_train(_ppo(config, "drift programs"), env_name,
                      lpo_objective(program_drift(encoding)))


def drift_network_train(network: DriftNetwork, config: AgentConfig, env_name: str
                        ) -> Callable[[jax.Array, Any, jax.Array], Any]:
    """`train(flat weights, env params, key)`: PPO with the network as its drift."""
    return make_train(_ppo(config, "drift networks"), env_name, lpo_objective(network.apply))


def lpg_network_train(network: LPGNetwork, config: AgentConfig, env_name: str
                      ) -> Callable[[jax.Array, Any, jax.Array], Any]:
    """`train(flat weights, env params, key)`: the actor-predictor agent the rule updates."""
    if not isinstance(config, LPGTrainConfig):
        raise TypeError("LPG networks train actor-predictor agents: give an LPGTrainConfig")
    train = make_lpg_train(config, make_env(env_name), network.temporally_aware)
    return lambda flat, env_params, key: train(network.unflatten(flat), env_params, key)


def evaluate_rules(task: Task, kind: str, shape: RuleShape, params: Any, config: AgentConfig,
                   keys: jax.Array) -> RLScores:
    """Agents trained by each rule of population kind `kind` and `shape` in `params` (flat
    weights [P, D], or encoded programs with a leading axis P) on `task`, one per key [S]:
    returns [P, S, ...]."""
    env = _environment(task)
    config = _horizon(config, env)

    def make() -> Callable[..., RLScores]:
        agent_train = population_kind(kind).agent_train
        if agent_train is None:
            raise ValueError(f"{kind} rules train no agents: {task.key} is an RL task")
        train = agent_train(shape, config, env.name)

        def population(params: jax.Array, env_params: Any, keys: jax.Array) -> RLScores:
            per_seed = jax.vmap(train, in_axes=(None, None, 0))
            result = jax.vmap(per_seed, in_axes=(0, None, None))(params, env_params, keys)
            penalty = getattr(result, "rule_l2", jnp.zeros_like(result.final_return))
            return RLScores(result.curve, result.final_return, penalty)

        return jax.jit(population)

    run = _compiled(("rule", env.name, _shapes(env.params), config, kind, shape,
                     _shapes(params)), make)
    return run(jax.tree.map(jnp.asarray, params), env.params, keys)


def _baseline_train(config: AgentConfig, env_name: str) -> Callable[..., RLScores]:
    """`run(lr, env params, keys [S])`, jitted: the hand-designed algorithm (PPO with its clip
    as the drift, or A2C) at a traced learning rate, one compile for a whole lr grid."""
    if isinstance(config, PPOConfig):
        ppo = make_train(config, env_name, lpo_objective(ppo_clip_drift(config.clip_eps)))

        def train(lr: jax.Array, env_params: Any, key: jax.Array) -> Any:
            return ppo(None, env_params, key, lr)
    else:
        train = make_a2c_train(config, make_env(env_name))
    return jax.jit(jax.vmap(lambda lr, p, k: RLScores(*train(lr, p, k)[:2], 0.0),
                            in_axes=(None, None, 0)))


def rl_baseline(task: Task, config: AgentConfig, lrs: tuple[float, ...], keys: jax.Array
                ) -> RLBaseline:
    """The hand-designed algorithm at each learning rate, seeds [S]: PPO (its clip as the
    drift) for a PPOConfig, A2C for an LPGTrainConfig; the best lr's result (its curve's
    first finite value is the untrained agent's return)."""
    env = _environment(task)
    config = _horizon(config, env)
    run = _compiled(("baseline", env.name, _shapes(env.params), config),
                    lambda: _baseline_train(config, env.name))
    results = [run(jnp.float32(lr), env.params, keys) for lr in lrs]
    candidates = []
    for lr, result in zip(lrs, results):
        curve = np.nanmean(np.asarray(result.curve), axis=0)
        final = float(np.mean(np.asarray(result.final_return)))  # NaN if any seed failed
        candidates.append(RLBaseline(float(lr), final, curve))
    return max(candidates, key=lambda c: c.final_return if np.isfinite(c.final_return)
               else -np.inf)


def first_finite(curve: np.ndarray) -> float:
    """The first finite value of a return curve (NaN where none is): the untrained agent's."""
    finite = curve[np.isfinite(curve)]
    return float(finite[0]) if finite.size else float("nan")


def normalised_return(final_return: np.ndarray, start: float, target: float) -> np.ndarray:
    """Meta-fitness on one task: 0 where the agent ends as it began, 1 where it ends as tuned
    PPO does; NaN (a diverged agent) stays NaN."""
    span = max(target - start, 1e-6 * max(abs(start), 1.0))
    return (np.asarray(final_return, np.float64) - start) / span
