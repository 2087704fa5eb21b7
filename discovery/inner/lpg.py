"""LPG and TA-LPG: a backward recurrent network that tells an actor-predictor agent how to
update, and the agent trained by it; A2C on the same agent as the hand-designed baseline.

LPG (Oh et al. 2020, "Discovering Reinforcement Learning Algorithms") reads a trajectory
backwards and outputs, per step, a scalar pi_hat that replaces the advantage in the policy
gradient and a categorical target y_hat for the agent's prediction vector y(s). TA-LPG
(Jackson et al. 2024, "Discovering Temporally-Aware Reinforcement Learning Algorithms") also
sees the training progress n/N, log N and the agent's normalised return. Each inner loop is
one pure function of (rule parameters, env parameters, key), PureJaxRL style: jit it once,
vmap it over a population, layouts and seeds.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from gymnax.environments import environment, spaces

from disco_rules.discovery.config import LPGTrainConfig
from disco_rules.populations.layers import mlp, mlp_init
from disco_rules.populations.lpg_network import LPGInputs, LPGParams, is_temporally_aware, lpg_apply

class LPGResult(NamedTuple):
    """One run's returns (with leading axes, many runs'). An update in which no episode ends
    repeats the previous value; NaN before the first episode ends and once the agent's
    parameters are not finite."""

    curve: Any  # [num_updates]: mean return of the episodes completed in each update
    final_return: Any  # []: the curve's last value
    rule_l2: Any  # []: LPG's output regulariser, mean over updates of
    # pi_hat_l2 * mean(pi_hat^2) + y_hat_l2 * mean(|y_hat|^2); the fitness pays it
    # to penalise large targets as LPG's meta-objective does (0 for A2C)


def _flat(obs: jax.Array, leading: int) -> jax.Array:
    return obs.reshape(obs.shape[:leading] + (-1,)).astype(jnp.float32)


def _entropy(log_probs: jax.Array) -> jax.Array:
    return -jnp.sum(jnp.exp(log_probs) * log_probs, axis=-1)


def _all_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def _sizes(env: environment.Environment, env_params: Any, config: LPGTrainConfig
           ) -> tuple[list[int], int]:
    """The agent's MLP sizes up to the heads, and the number of actions, for these params."""
    obs_size = math.prod(env.observation_space(env_params).shape)
    return [obs_size, config.hidden, config.hidden], env.action_space(env_params).n


def _loop(config: LPGTrainConfig, env: environment.Environment) -> Callable:
    """`run(update, agent, optimizer, env_params, key) -> (curve, extras)`: the rollouts and
    update loop of an actor with a second head on a discrete-action env."""
    if not isinstance(env.action_space(env.default_params), spaces.Discrete):
        raise ValueError(f"{env.name} has continuous actions; this agent handles discrete ones")
    if config.num_updates < 1:
        raise ValueError("need total_timesteps >= num_envs * num_steps")
    env_reset = jax.vmap(env.reset, in_axes=(0, None))
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout(policy: Any, runner: tuple, env_params: Any) -> tuple[tuple, dict]:
        """num_steps steps of every env; `runner` is (env state, obs, episode return, key)."""

        def step(runner: tuple, _: None) -> tuple[tuple, dict[str, jax.Array]]:
            env_state, obs, episode_return, key = runner
            key, k_action, k_step = jax.random.split(key, 3)
            action = jax.random.categorical(k_action, mlp(policy, _flat(obs, 1)))
            next_obs, env_state, reward, terminated, truncated, info = env_step(
                jax.random.split(k_step, config.num_envs), env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            episode_return = episode_return + reward
            record = {"obs": obs, "action": action, "reward": reward.astype(jnp.float32),
                      "final_obs": info["final_observation"],
                      "terminated": terminated.astype(jnp.float32),
                      "done": done.astype(jnp.float32), "episode_return": episode_return}
            episode_return = jnp.where(done, 0.0, episode_return)
            return (env_state, next_obs, episode_return, key), record

        return jax.lax.scan(step, runner, None, config.num_steps)

    def run(update: Callable, agent: Any, optimizer: optax.GradientTransformation,
            env_params: Any, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """num_updates of `update(agent, opt_state, steps, index, last_mean) -> (agent,
        opt_state, extra)`; returns the return curve and the extras."""
        k_reset, k_rollout = jax.random.split(key)
        obs, env_state = env_reset(jax.random.split(k_reset, config.num_envs), env_params)
        runner = (env_state, obs, jnp.zeros(config.num_envs), k_rollout)

        def body(carry: tuple, index: jax.Array) -> tuple[tuple, tuple]:
            agent, opt_state, runner, last_mean = carry
            runner, steps = rollout(agent["policy"], runner, env_params)
            agent, opt_state, extra = update(agent, opt_state, steps, index, last_mean)
            completed = steps["done"].sum()
            mean_return = jnp.where(
                completed > 0,
                (steps["done"] * steps["episode_return"]).sum() / jnp.maximum(completed, 1.0),
                last_mean)
            mean_return = jnp.where(_all_finite(agent), mean_return, jnp.nan)
            return (agent, opt_state, runner, mean_return), (mean_return, extra)

        carry = (agent, optimizer.init(agent), runner, jnp.float32(jnp.nan))
        _, (curve, extra) = jax.lax.scan(body, carry, jnp.arange(config.num_updates))
        return curve, extra

    return run


def make_lpg_train(config: LPGTrainConfig, env: environment.Environment,
                   temporally_aware: bool
                   ) -> Callable[[LPGParams, Any, jax.Array], LPGResult]:
    """`train(lpg_params, env_params, key) -> LPGResult`: an actor-predictor agent updated by
    the rule after each rollout. Pure, so jit- and vmap-able over rules, layouts and keys.

    Loss per step: -pi_hat log pi(a|s) + alpha_y KL(y_hat || y(s)) - beta_0 H(pi) - beta_1
    H(y), with pi_hat and y_hat held fixed (LPG's update, with entropy bonuses on the agent).
    """
    run = _loop(config, env)
    log_total = math.log(config.num_updates)
    optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                            optax.adam(config.lr))

    def loss(agent: Any, steps: dict, pi_hat: jax.Array, y_hat: jax.Array) -> jax.Array:
        log_pi = jax.nn.log_softmax(mlp(agent["policy"], _flat(steps["obs"], 2)))
        log_pi_taken = jnp.take_along_axis(log_pi, steps["action"][..., None], -1)[..., 0]
        log_y = jax.nn.log_softmax(mlp(agent["prediction"], _flat(steps["obs"], 2)))
        kl = jnp.sum(jax.scipy.special.xlogy(y_hat, y_hat) - y_hat * log_y, axis=-1)
        return jnp.mean(-pi_hat * log_pi_taken + config.prediction_coef * kl
                        - config.policy_entropy_coef * _entropy(log_pi)
                        - config.prediction_entropy_coef * _entropy(log_y))

    def train(lpg_params: LPGParams, env_params: Any, key: jax.Array) -> LPGResult:
        if is_temporally_aware(lpg_params) != temporally_aware:
            raise ValueError("the rule's parameters do not match temporally_aware")
        k_policy, k_prediction, k_run = jax.random.split(key, 3)
        sizes, n_actions = _sizes(env, env_params, config)
        agent = {"policy": mlp_init(k_policy, sizes + [n_actions], 0.01),
                 "prediction": mlp_init(k_prediction, sizes + [config.prediction_size], 1.0)}

        def update(agent: Any, opt_state: Any, steps: dict, index: jax.Array,
                   last_mean: jax.Array) -> tuple[Any, Any, jax.Array]:
            log_pi = jax.nn.log_softmax(mlp(agent["policy"], _flat(steps["obs"], 2)))
            pi_taken = jnp.exp(jnp.take_along_axis(log_pi, steps["action"][..., None],
                                                   -1)[..., 0])
            y = jax.nn.softmax(mlp(agent["prediction"], _flat(steps["obs"], 2)))
            y_next = jax.nn.softmax(mlp(agent["prediction"], _flat(steps["final_obs"], 2)))
            inputs = LPGInputs(reward=steps["reward"],
                               discount=config.gamma * (1.0 - steps["terminated"]),
                               done=steps["done"], pi_taken=pi_taken, y=y, y_next=y_next)
            normalised_return = jnp.nan_to_num(last_mean, nan=0.0) / config.return_scale
            pi_hat, y_hat = lpg_apply(lpg_params, inputs, index / config.num_updates,
                                      log_total, normalised_return)
            grads = jax.grad(loss)(agent, steps, pi_hat, y_hat)
            updates, opt_state = optimizer.update(grads, opt_state, agent)
            rule_l2 = (config.pi_hat_l2 * jnp.mean(pi_hat ** 2)
                       + config.y_hat_l2 * jnp.mean(jnp.sum(y_hat ** 2, axis=-1)))
            return optax.apply_updates(agent, updates), opt_state, rule_l2

        curve, rule_l2 = run(update, agent, optimizer, env_params, k_run)
        return LPGResult(curve, curve[-1], rule_l2.mean())

    return train


def make_a2c_train(config: LPGTrainConfig, env: environment.Environment
                   ) -> Callable[[Any, Any, jax.Array], LPGResult]:
    """`train(lr, env_params, key) -> LPGResult`: advantage actor-critic with GAE on the same
    agent (the value head in place of the prediction head): the baseline that normalises
    LPG's fitness. Pure, so jit- and vmap-able over step sizes, layouts and keys."""
    run = _loop(config, env)

    def advantages(value: jax.Array, next_value: jax.Array, steps: dict) -> jax.Array:
        """GAE; terminations cut the bootstrap, truncations only the trace."""

        def back(advantage: jax.Array, t: tuple) -> tuple[jax.Array, jax.Array]:
            reward, value, next_value, terminated, done = t
            advantage = (reward + config.gamma * (1.0 - terminated) * next_value - value
                         + config.gamma * config.gae_lambda * (1.0 - done) * advantage)
            return advantage, advantage

        return jax.lax.scan(back, jnp.zeros(config.num_envs),
                            (steps["reward"], value, next_value, steps["terminated"],
                             steps["done"]), reverse=True)[1]

    def loss(agent: Any, steps: dict, advantage: jax.Array, target: jax.Array) -> jax.Array:
        obs = _flat(steps["obs"], 2)
        log_pi = jax.nn.log_softmax(mlp(agent["policy"], obs))
        log_pi_taken = jnp.take_along_axis(log_pi, steps["action"][..., None], -1)[..., 0]
        value = mlp(agent["value"], obs)[..., 0]
        return jnp.mean(-advantage * log_pi_taken
                        + config.vf_coef * 0.5 * jnp.square(value - target)
                        - config.policy_entropy_coef * _entropy(log_pi))

    def train(lr: Any, env_params: Any, key: jax.Array) -> LPGResult:
        k_policy, k_value, k_run = jax.random.split(key, 3)
        sizes, n_actions = _sizes(env, env_params, config)
        agent = {"policy": mlp_init(k_policy, sizes + [n_actions], 0.01),
                 "value": mlp_init(k_value, sizes + [1], 1.0)}
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                                optax.adam(lr))

        def update(agent: Any, opt_state: Any, steps: dict, index: jax.Array,
                   last_mean: jax.Array) -> tuple[Any, Any, jax.Array]:
            value = mlp(agent["value"], _flat(steps["obs"], 2))[..., 0]
            next_value = mlp(agent["value"], _flat(steps["final_obs"], 2))[..., 0]
            advantage = advantages(value, next_value, steps)
            grads = jax.grad(loss)(agent, steps, advantage, advantage + value)
            updates, opt_state = optimizer.update(grads, opt_state, agent)
            return optax.apply_updates(agent, updates), opt_state, jnp.float32(0.0)

        curve, _ = run(update, agent, optimizer, env_params, k_run)
        return LPGResult(curve, curve[-1], jnp.float32(0.0))

    return train
