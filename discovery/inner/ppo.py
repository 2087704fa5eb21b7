"""PPO on gymnax environments whose policy objective is a pluggable rule, PureJaxRL style.

The policy maximises an objective of (ratio, advantage, progress) per sample; LPO's form is
ratio * advantage - drift, with the drift a rule at the objective slot (Lu et al. 2022,
"Discovered Policy Optimisation"). `make_train` builds one pure function of
(objective args, key): jit it once, vmap it over candidates and seeds.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import optax
from gymnax.environments import spaces

from disco_rules.discovery.config import PPOConfig
from disco_rules.discovery.tasks import make_env
from disco_rules.dsl.interpreter import EncodedProgram, Encoding, run
from disco_rules.dsl.slots import OBJECTIVE
from disco_rules.populations.layers import mlp, mlp_init

Drift = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
"""(args, ratio, advantage, progress) -> drift per sample, >= 0 and zero at ratio 1."""
Objective = Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
"""(args, ratio, advantage, progress) -> policy objective per sample, to be maximised."""


class PPOResult(NamedTuple):
    """One run's returns (with leading axes, many runs'). An update in which no episode ends
    repeats the previous value; NaN before the first episode ends."""

    curve: Any  # [num_updates]: mean return of the episodes completed in each update
    final_return: Any  # []: the curve's last value; NaN if the agent's weights are not finite
    params: Any  # the trained actor and critic


def lpo_objective(drift: Drift) -> Objective:
    """LPO's objective: ratio * advantage - drift(ratio, advantage, progress)."""

    def objective(args: Any, ratio: jax.Array, advantage: jax.Array,
                  progress: jax.Array) -> jax.Array:
        return ratio * advantage - drift(args, ratio, advantage, progress)

    return objective


def ppo_clip_drift(clip_eps: float) -> Drift:
    """The drift that turns LPO's objective into PPO's clipped one: relu((r - clip(r)) A),
    since r A - relu((r - clip(r)) A) = min(r A, clip(r) A). Ignores its args."""

    def drift(args: Any, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array) -> jax.Array:
        clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
        return jax.nn.relu((ratio - clipped) * advantage)

    return drift


@jax.custom_batching.custom_vmap
def _program_value_and_slope(encoded: EncodedProgram, ratio: jax.Array, advantage: jax.Array,
                             progress: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The program's drift on each sample alone (all inputs of one shape), and its derivative
    in the ratio."""

    def values(r: jax.Array) -> jax.Array:
        samples = jnp.stack([r, advantage, progress]).reshape(3, -1)
        return jax.vmap(lambda x: run(encoded, x)[0], in_axes=1)(samples).reshape(r.shape)

    return jax.jvp(values, (ratio,), (jnp.ones_like(ratio),))


@_program_value_and_slope.def_vmap
def _one_program_at_a_time(axis_size: int, in_batched: list, *args: Any) -> tuple[Any, Any]:
    """Different programs run one after another (lax.map): vmap would pick each statement's op
    by select, evaluating every op of the table (measured: twice PPO's time on CPU)."""

    def batch(x: jax.Array, batched: bool) -> jax.Array:
        return x if batched else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x))

    program, *data = args
    data = [batch(x, batched) for x, batched in zip(data, in_batched[1:])]
    if any(jax.tree.leaves(in_batched[0])):
        program = jax.tree.map(batch, program, in_batched[0])
        outputs = jax.lax.map(lambda a: _program_value_and_slope(*a), (program, *data))
    else:
        outputs = _program_value_and_slope(program, *data)
    return outputs, (True, True)


def program_drift(encoding: Encoding) -> Drift:
    """The drift of an encoded objective-slot program (its args), run on each sample alone.

    The value is the program's; the gradient reaches it through the ratio only, by forward
    mode, which the interpreter's loops allow. Under vmap, different programs run one after
    another and all else stays batched.
    """
    if encoding.slot != OBJECTIVE:
        raise ValueError(f"program_drift needs the objective slot, not {encoding.slot.name}")

    def drift(encoded: EncodedProgram, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array) -> jax.Array:
        fixed = jax.lax.stop_gradient(ratio)
        progress = jnp.broadcast_to(jnp.asarray(progress, ratio.dtype), ratio.shape)
        value, slope = _program_value_and_slope(encoded, fixed, advantage, progress)
        return value + slope * (ratio - fixed)

    return drift


def _network(params: dict[str, Any], obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(action logits, value) of flattened observations."""
    x = obs.reshape(obs.shape[0], -1).astype(jnp.float32)
    return mlp(params["actor"], x), mlp(params["critic"], x)[:, 0]


def make_train(config: PPOConfig, env_name: str, objective: Objective
               ) -> Callable[..., PPOResult]:
    """`train(objective_args, env_params, key, lr=None) -> PPOResult`: PPO on `env_name` (a
    gymnax id or "Gridworld", see tasks.make_env; discrete actions) maximising `objective` of
    minibatch-normalised advantages. Pure, so jit- and vmap-able over args, env params
    (levels), keys and the learning rate (None: `config.lr`; a traced rate compiles one
    trainer for a whole lr grid)."""
    env = make_env(env_name)
    action_space = env.action_space(env.default_params)
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"{env_name} has continuous actions; this PPO handles discrete ones")
    num_updates, batch_size = config.num_updates, config.num_envs * config.num_steps
    if num_updates < 1 or batch_size % config.num_minibatches:
        raise ValueError("need total_timesteps >= num_envs * num_steps, and num_minibatches "
                         "dividing num_envs * num_steps")
    def make_optimizer(lr: Any) -> optax.GradientTransformation:
        if config.anneal_lr:
            steps_per_update = config.update_epochs * config.num_minibatches
            lr = optax.linear_schedule(lr, 0.0, num_updates * steps_per_update)
        return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                           optax.adam(lr, eps=1e-5))

    env_reset = jax.vmap(env.reset, in_axes=(0, None))
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def loss(params: Any, args: Any, batch: dict[str, jax.Array],
             progress: jax.Array) -> jax.Array:
        logits, value = _network(params, batch["obs"])
        log_probs = jax.nn.log_softmax(logits)
        log_prob = jnp.take_along_axis(log_probs, batch["action"][:, None], axis=1)[:, 0]
        entropy = -jnp.sum(jnp.exp(log_probs) * log_probs, axis=1).mean()
        value_clipped = batch["value"] + jnp.clip(value - batch["value"], -config.clip_eps,
                                                  config.clip_eps)
        value_loss = 0.5 * jnp.maximum(jnp.square(value - batch["target"]),
                                       jnp.square(value_clipped - batch["target"])).mean()
        advantage = batch["advantage"]
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        ratio = jnp.exp(log_prob - batch["log_prob"])
        policy_loss = -objective(args, ratio, advantage, progress).mean()
        return policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy

    def rollout(params: Any, env_params: Any, runner: tuple
                ) -> tuple[tuple, dict[str, jax.Array]]:
        """num_steps steps of every env; `runner` is (env state, obs, episode return, key)."""

        def env_step_fn(runner: tuple, _: None) -> tuple[tuple, dict[str, jax.Array]]:
            env_state, obs, episode_return, key = runner
            key, k_action, k_step = jax.random.split(key, 3)
            logits, value = _network(params, obs)
            action = jax.random.categorical(k_action, logits)
            log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), action[:, None],
                                           axis=1)[:, 0]
            next_obs, env_state, reward, terminated, truncated, info = env_step(
                jax.random.split(k_step, config.num_envs), env_state, action, env_params)
            done = jnp.logical_or(terminated, truncated)
            # V of the state reached before any auto-reset: bootstraps truncated episodes.
            _, next_value = _network(params, info["final_observation"])
            episode_return = episode_return + reward
            step = {"obs": obs, "action": action, "log_prob": log_prob, "value": value,
                    "reward": reward, "next_value": next_value,
                    "terminated": terminated.astype(jnp.float32),
                    "done": done.astype(jnp.float32), "episode_return": episode_return}
            episode_return = jnp.where(done, 0.0, episode_return)
            return (env_state, next_obs, episode_return, key), step

        return jax.lax.scan(env_step_fn, runner, None, config.num_steps)

    def advantages(steps: dict[str, jax.Array]) -> jax.Array:
        """GAE over the rollout; terminations cut the bootstrap, truncations only the trace."""

        def back(advantage: jax.Array, t: dict[str, jax.Array]) -> tuple[jax.Array, jax.Array]:
            bootstrap = config.gamma * (1.0 - t["terminated"]) * t["next_value"]
            trace = config.gamma * config.gae_lambda * (1.0 - t["done"]) * advantage
            advantage = t["reward"] + bootstrap - t["value"] + trace
            return advantage, advantage

        return jax.lax.scan(back, jnp.zeros(config.num_envs), steps, reverse=True)[1]

    def learn(optimizer: optax.GradientTransformation, params: Any, opt_state: Any, args: Any,
              batch: dict[str, jax.Array], progress: jax.Array, key: jax.Array
              ) -> tuple[Any, Any]:
        """update_epochs passes over the batch in shuffled minibatches."""

        def minibatch_step(state: tuple, minibatch: dict) -> tuple[tuple, None]:
            params, opt_state = state
            grads = jax.grad(loss)(params, args, minibatch, progress)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        def epoch(state: tuple, k: jax.Array) -> tuple[tuple, None]:
            order = jax.random.permutation(k, batch_size)
            minibatches = jax.tree.map(
                lambda x: x[order].reshape((config.num_minibatches, -1) + x.shape[1:]), batch)
            return jax.lax.scan(minibatch_step, state, minibatches)[0], None

        keys = jax.random.split(key, config.update_epochs)
        return jax.lax.scan(epoch, (params, opt_state), keys)[0]

    def train(args: Any, env_params: Any, key: jax.Array, lr: Any = None) -> PPOResult:
        optimizer = make_optimizer(config.lr if lr is None else lr)
        k_actor, k_critic, k_reset, k_rollout, k_learn = jax.random.split(key, 5)
        # the observation's size may depend on the level (a gridworld's layout shape)
        obs_size = math.prod(env.observation_space(env_params).shape)
        sizes = [obs_size, config.hidden, config.hidden]
        params = {"actor": mlp_init(k_actor, sizes + [action_space.n], 0.01),
                  "critic": mlp_init(k_critic, sizes + [1], 1.0)}
        obs, env_state = env_reset(jax.random.split(k_reset, config.num_envs), env_params)
        runner = (env_state, obs, jnp.zeros(config.num_envs), k_rollout)

        def update(carry: tuple, index: jax.Array) -> tuple[tuple, jax.Array]:
            params, opt_state, runner, last_mean = carry
            runner, steps = rollout(params, env_params, runner)
            advantage = advantages(steps)
            batch = {name: steps[name] for name in ("obs", "action", "log_prob", "value")}
            batch.update(advantage=advantage, target=advantage + steps["value"])
            batch = jax.tree.map(lambda x: x.reshape((batch_size,) + x.shape[2:]), batch)
            progress = index.astype(jnp.float32) / num_updates
            params, opt_state = learn(optimizer, params, opt_state, args, batch, progress,
                                      jax.random.fold_in(k_learn, index))
            completed = steps["done"].sum()
            mean_return = jnp.where(
                completed > 0,
                (steps["done"] * steps["episode_return"]).sum() / jnp.maximum(completed, 1.0),
                last_mean)
            return (params, opt_state, runner, mean_return), mean_return

        carry = (params, optimizer.init(params), runner, jnp.float32(jnp.nan))
        (params, *_), curve = jax.lax.scan(update, carry, jnp.arange(num_updates))
        # a rule that made the agent's weights NaN still "acts" (categorical of NaN logits):
        # its return is not a score
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
        return PPOResult(curve, jnp.where(finite, curve[-1], jnp.nan), params)

    return train
