"""RL evaluation of learned objectives: a population of drift networks trained as PPO agents on
one environment in one compiled call, PPO's own score as the baseline, and the meta-fitness
that compares them.

Compiled functions are cached per (environment, horizon, PPO config, network shape and
population size), so an evaluator actor compiles each once and reuses it for every level of
the same environment (env params are traced arguments).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from discovery.config import PPOConfig
from discovery.ppo import PPOResult, lpo_objective, make_train, ppo_clip_drift
from discovery.tasks import Environment, Task
from populations.drift_network import DriftNetwork

_COMPILED: dict[tuple, Callable[..., PPOResult]] = {}


def _environment(task: Task) -> Environment:
    if task.kind != "rl":
        raise ValueError(f"{task.key} is not an RL task")
    return task.build()


def _horizon(config: PPOConfig, env: Environment) -> PPOConfig:
    return dataclasses.replace(config, total_timesteps=env.total_timesteps)


def _compiled(key: tuple, make: Callable[[], Callable[..., PPOResult]]
              ) -> Callable[..., PPOResult]:
    if key not in _COMPILED:
        _COMPILED[key] = make()
    return _COMPILED[key]


def evaluate_drift_networks(task: Task, network: DriftNetwork, params: np.ndarray,
                            config: PPOConfig, keys: jax.Array) -> PPOResult:
    """PPO agents with each drift network of `params` [P, D] on `task`, one per key [S]:
    results [P, S, ...] (params of the trained agents dropped)."""
    env = _environment(task)
    config = _horizon(config, env)

    def make() -> Callable[..., PPOResult]:
        train = make_train(config, env.name, lpo_objective(network.apply))

        def population(params: jax.Array, env_params: Any, keys: jax.Array) -> PPOResult:
            per_seed = jax.vmap(train, in_axes=(None, None, 0))
            result = jax.vmap(per_seed, in_axes=(0, None, None))(params, env_params, keys)
            return result._replace(params=())

        return jax.jit(population)

    run = _compiled(("drift", env.name, config, network, params.shape), make)
    return run(jnp.asarray(params, jnp.float32), env.params, keys)


def ppo_baseline(task: Task, config: PPOConfig, lrs: tuple[float, ...], keys: jax.Array
                 ) -> tuple[float, float, float, np.ndarray]:
    """PPO (its clip as the drift) at each learning rate, seeds [S]: (best lr, its mean final
    return, the mean return of its first update, its mean curve)."""
    env = _environment(task)
    best = None
    for lr in lrs:
        lr_config = dataclasses.replace(_horizon(config, env), lr=float(lr))

        def make(c: PPOConfig = lr_config) -> Callable[..., PPOResult]:
            train = make_train(c, env.name, lpo_objective(ppo_clip_drift(c.clip_eps)))
            return jax.jit(jax.vmap(lambda p, k: train(None, p, k)._replace(params=()),
                                    in_axes=(None, 0)))

        result = _compiled(("ppo", env.name, lr_config), make)(env.params, keys)
        curve = np.nanmean(np.asarray(result.curve), axis=0)
        final = float(curve[-1])
        if best is None or final > best[1]:
            best = (float(lr), final, first_finite(curve), curve)
    return best


def first_finite(curve: np.ndarray) -> float:
    """The first finite value of a return curve (NaN where none is): the untrained agent's."""
    finite = curve[np.isfinite(curve)]
    return float(finite[0]) if finite.size else float("nan")


def normalised_return(final_return: np.ndarray, start: float, target: float) -> np.ndarray:
    """Meta-fitness on one task: 0 where the agent ends as it began, 1 where it ends as tuned
    PPO does; NaN (a diverged agent) stays NaN."""
    span = max(target - start, 1e-6 * max(abs(start), 1.0))
    return (np.asarray(final_return, np.float64) - start) / span
