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
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from gymnax.environments import environment, spaces

LPGParams = dict[str, Any]
"""The rule's parameters: {"embed", "gru", "pi_hat", "y_hat"}, each {"w", "b"} (the GRU's
{"wx", "wh", "b"}); a population has a leading axis on every leaf."""

_BASE_INPUTS = 3  # reward, discount, pi(a|s); then the two embeddings of y
_TEMPORAL_INPUTS = 3  # n/N, log N, normalised return


@dataclass(frozen=True)
class LPGTrainConfig:
    """The agent's hyperparameters, shared by LPG and A2C. Sized for the gridworlds: A2C at
    step size 3e-3 learns the small layout in 100 updates of 8 envs x 20 steps.

    return_scale is per environment: TA-LPG's return input is the mean return of the
    episodes completed in the latest update that had any (0 before the first) divided by
    it, so pick about a good agent's return, e.g. 500 for CartPole-v1 (its maximum) and
    20 for the small gridworld (A2C's return there is 12-18).
    """

    num_envs: int = 16
    num_steps: int = 20  # rollout length T: LPG reads T steps backwards
    total_timesteps: int = 64_000
    gamma: float = 0.99
    lr: float = 5e-3  # the LPG agent's Adam step size (A2C's is train's argument)
    max_grad_norm: float = 0.5
    hidden: int = 32  # width of the agent's two tanh MLPs (two hidden layers each)
    prediction_size: int = 30  # m, the size of the prediction vector y(s)
    prediction_coef: float = 0.5  # alpha_y: weight of KL(y_hat || y(s)) in the agent's loss
    policy_entropy_coef: float = 0.01  # beta_0: entropy bonus of pi (A2C's too)
    prediction_entropy_coef: float = 0.001  # beta_1: entropy bonus of y
    pi_hat_l2: float = 0.001  # beta_2: weight of mean pi_hat^2 in LPGResult.rule_l2
    y_hat_l2: float = 0.001  # beta_3: weight of mean |y_hat|^2 in LPGResult.rule_l2
    gae_lambda: float = 0.95  # A2C only
    vf_coef: float = 0.5  # A2C only
    return_scale: float = 1.0  # TA-LPG only; see above

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


class LPGResult(NamedTuple):
    """One run's returns (with leading axes, many runs'). An update in which no episode ends
    repeats the previous value; NaN before the first episode ends and once the agent's
    parameters are not finite."""

    curve: Any  # [num_updates]: mean return of the episodes completed in each update
    final_return: Any  # []: the curve's last value
    rule_l2: Any  # []: LPG's output regulariser, mean over updates of
    # pi_hat_l2 * mean(pi_hat^2) + y_hat_l2 * mean(|y_hat|^2); subtract it from a fitness
    # to penalise large targets as LPG's meta-objective does (0 for A2C)


class LPGInputs(NamedTuple):
    """What LPG reads of a rollout, each [T, B] (the predictions [T, B, m])."""

    reward: jax.Array
    discount: jax.Array  # gamma * (1 - terminated)
    done: jax.Array  # 1 where an episode ended (terminated or truncated): LPG's memory resets
    pi_taken: jax.Array  # pi(a_t | s_t) of the action taken
    y: jax.Array  # y(s_t)
    y_next: jax.Array  # y(s_{t+1}), of the state reached before any auto-reset


def _dense(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict[str, jax.Array]:
    # Not orthogonal init: jaxlib's CPU QR can deadlock when two run at once.
    init = jax.nn.initializers.variance_scaling(scale ** 2, "fan_in", "truncated_normal")
    return {"w": init(key, (n_in, n_out)), "b": jnp.zeros(n_out)}


def lpg_init(key: jax.Array, temporally_aware: bool, hidden: int = 16,
             prediction_size: int = 30) -> LPGParams:
    """Random rule parameters: a shared embedding of y (width `hidden`), a GRU of width
    `hidden`, and the pi_hat and y_hat heads."""
    k_embed, k_x, k_h, k_pi, k_y = jax.random.split(key, 5)
    n_in = _BASE_INPUTS + 2 * hidden + (_TEMPORAL_INPUTS if temporally_aware else 0)
    gru = {"wx": _dense(k_x, n_in, 3 * hidden, 1.0)["w"],
           "wh": _dense(k_h, hidden, 3 * hidden, 1.0)["w"], "b": jnp.zeros(3 * hidden)}
    return {"embed": _dense(k_embed, prediction_size, hidden, math.sqrt(2.0)), "gru": gru,
            "pi_hat": _dense(k_pi, hidden, 1, 1.0),
            "y_hat": _dense(k_y, hidden, prediction_size, 1.0)}


def is_temporally_aware(params: LPGParams) -> bool:
    """Whether the rule has TA-LPG's three extra inputs (read from its shapes)."""
    hidden = params["embed"]["w"].shape[-1]
    return params["gru"]["wx"].shape[-2] == _BASE_INPUTS + 2 * hidden + _TEMPORAL_INPUTS


def lpg_apply(params: LPGParams, inputs: LPGInputs, progress: Any = 0.0,
              log_total: Any = 0.0, normalised_return: Any = 0.0
              ) -> tuple[jax.Array, jax.Array]:
    """(pi_hat [T, B], y_hat [T, B, m]): the rule run backwards in time over a rollout.

    y(s_t) and y(s_{t+1}) pass through one shared dense layer, so the rule sees only what
    the predictions do, not what their coordinates mean. A GRU scans from the last step to
    the first; its memory is cleared after each episode's end. The temporal inputs (scalars
    or [B]) are read only by a TA-LPG rule: n/N, log N and the normalised return.
    """

    def embed(y: jax.Array) -> jax.Array:
        return jax.nn.relu(y @ params["embed"]["w"] + params["embed"]["b"])

    features = [inputs.reward[..., None], inputs.discount[..., None],
                inputs.pi_taken[..., None], embed(inputs.y), embed(inputs.y_next)]
    if is_temporally_aware(params):
        shape = inputs.reward.shape
        features += [jnp.broadcast_to(jnp.asarray(v, jnp.float32), shape)[..., None]
                     for v in (progress, log_total, normalised_return)]
    x = jnp.concatenate(features, axis=-1)
    gru = params["gru"]
    hidden = gru["wh"].shape[0]

    def cell(h: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x_t, done_t = step
        h = h * (1.0 - done_t)[:, None]  # what follows an episode's end is another episode
        gates_x = x_t @ gru["wx"] + gru["b"]
        gates_h = h @ gru["wh"]
        update = jax.nn.sigmoid(gates_x[:, :hidden] + gates_h[:, :hidden])
        reset = jax.nn.sigmoid(gates_x[:, hidden:2 * hidden] + gates_h[:, hidden:2 * hidden])
        candidate = jnp.tanh(gates_x[:, 2 * hidden:] + reset * gates_h[:, 2 * hidden:])
        h = update * h + (1.0 - update) * candidate
        return h, h

    h0 = jnp.zeros((x.shape[1], hidden), x.dtype)
    _, hs = jax.lax.scan(cell, h0, (x, inputs.done.astype(x.dtype)), reverse=True)
    pi_hat = (hs @ params["pi_hat"]["w"] + params["pi_hat"]["b"])[..., 0]
    y_hat = jax.nn.softmax(hs @ params["y_hat"]["w"] + params["y_hat"]["b"])
    return pi_hat, y_hat


def _mlp_init(key: jax.Array, sizes: list[int], last_scale: float) -> list[dict]:
    keys = jax.random.split(key, len(sizes) - 1)
    scales = [math.sqrt(2.0)] * (len(sizes) - 2) + [last_scale]
    return [_dense(k, n_in, n_out, s)
            for k, n_in, n_out, s in zip(keys, sizes[:-1], sizes[1:], scales)]


def _mlp(layers: list[dict], x: jax.Array) -> jax.Array:
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


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
            action = jax.random.categorical(k_action, _mlp(policy, _flat(obs, 1)))
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
        log_pi = jax.nn.log_softmax(_mlp(agent["policy"], _flat(steps["obs"], 2)))
        log_pi_taken = jnp.take_along_axis(log_pi, steps["action"][..., None], -1)[..., 0]
        log_y = jax.nn.log_softmax(_mlp(agent["prediction"], _flat(steps["obs"], 2)))
        kl = jnp.sum(jax.scipy.special.xlogy(y_hat, y_hat) - y_hat * log_y, axis=-1)
        return jnp.mean(-pi_hat * log_pi_taken + config.prediction_coef * kl
                        - config.policy_entropy_coef * _entropy(log_pi)
                        - config.prediction_entropy_coef * _entropy(log_y))

    def train(lpg_params: LPGParams, env_params: Any, key: jax.Array) -> LPGResult:
        if is_temporally_aware(lpg_params) != temporally_aware:
            raise ValueError("the rule's parameters do not match temporally_aware")
        k_policy, k_prediction, k_run = jax.random.split(key, 3)
        sizes, n_actions = _sizes(env, env_params, config)
        agent = {"policy": _mlp_init(k_policy, sizes + [n_actions], 0.01),
                 "prediction": _mlp_init(k_prediction, sizes + [config.prediction_size], 1.0)}

        def update(agent: Any, opt_state: Any, steps: dict, index: jax.Array,
                   last_mean: jax.Array) -> tuple[Any, Any, jax.Array]:
            log_pi = jax.nn.log_softmax(_mlp(agent["policy"], _flat(steps["obs"], 2)))
            pi_taken = jnp.exp(jnp.take_along_axis(log_pi, steps["action"][..., None],
                                                   -1)[..., 0])
            y = jax.nn.softmax(_mlp(agent["prediction"], _flat(steps["obs"], 2)))
            y_next = jax.nn.softmax(_mlp(agent["prediction"], _flat(steps["final_obs"], 2)))
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
        log_pi = jax.nn.log_softmax(_mlp(agent["policy"], obs))
        log_pi_taken = jnp.take_along_axis(log_pi, steps["action"][..., None], -1)[..., 0]
        value = _mlp(agent["value"], obs)[..., 0]
        return jnp.mean(-advantage * log_pi_taken
                        + config.vf_coef * 0.5 * jnp.square(value - target)
                        - config.policy_entropy_coef * _entropy(log_pi))

    def train(lr: Any, env_params: Any, key: jax.Array) -> LPGResult:
        k_policy, k_value, k_run = jax.random.split(key, 3)
        sizes, n_actions = _sizes(env, env_params, config)
        agent = {"policy": _mlp_init(k_policy, sizes + [n_actions], 0.01),
                 "value": _mlp_init(k_value, sizes + [1], 1.0)}
        optimizer = optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                                optax.adam(lr))

        def update(agent: Any, opt_state: Any, steps: dict, index: jax.Array,
                   last_mean: jax.Array) -> tuple[Any, Any, jax.Array]:
            value = _mlp(agent["value"], _flat(steps["obs"], 2))[..., 0]
            next_value = _mlp(agent["value"], _flat(steps["final_obs"], 2))[..., 0]
            advantage = advantages(value, next_value, steps)
            grads = jax.grad(loss)(agent, steps, advantage, advantage + value)
            updates, opt_state = optimizer.update(grads, opt_state, agent)
            return optax.apply_updates(agent, updates), opt_state, jnp.float32(0.0)

        curve, _ = run(update, agent, optimizer, env_params, k_run)
        return LPGResult(curve, curve[-1], jnp.float32(0.0))

    return train
