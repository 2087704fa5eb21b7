"""What a learned objective costs PPO, and what gymnax's vectorization buys.

1. Environment steps per second of `--agents` PPO agents on CartPole-v1 trained in one
   vmapped call: with PPO's clip drift in JAX (plain PPO); with a population of distinct
   learned drift networks (TA-LPO, one per agent, as meta-training evaluates them); with one
   drift program (DPO) through the interpreter for all agents; and with a population of
   distinct drift programs (DPO, PPO's clip and mutants of them), whose drifts run one
   program after another inside the vmapped call. Prints the cost of each against plain PPO
   (goal for the learned drift: under 25%).
2. Random-action CartPole steps per second: gymnax vmapped over 1024 envs against
   gymnasium's CartPole stepped from Python, for context.

With `--scaling N ...`, only: plain PPO's seconds per agent at each agent count, all agents
vmapped in one call and in vmapped chunks (`--chunks`) run one after another.

Timings are the best of `--repeats` calls after compilation; about 1-2 minutes on 2 cores.

    python bench/rl.py [--agents 8] [--timesteps 50000] [--repeats 3]
    python bench/rl.py --scaling 8 64 256 --chunks 8 64 --timesteps 5120
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, Callable

import gymnasium
import gymnax
import jax
import numpy as np

from disco_rules.discovery.config import PPOConfig
from disco_rules.discovery.inner.ppo import lpo_objective, make_train, ppo_clip_drift, program_drift
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.mutate import MutationConfig, mutation_chain
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program
from disco_rules.dsl.slots import OBJECTIVE
from disco_rules.populations.drift_network import DriftNetwork

ENV = "CartPole-v1"
PROGRAMS = Path(__file__).resolve().parent.parent / "dsl" / "programs"
ENCODING = Encoding(slot=OBJECTIVE, max_statements=24)


def best_time(fn: Callable[..., Any], *args: Any, repeats: int) -> float:
    """Fastest of `repeats` calls, after one untimed call that compiles."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return min(times)


def drift_population(n: int, seed: int) -> list[Program]:
    """DPO, PPO's clip, then mutation chains of them: `n` objective-slot programs."""
    starts = [parse((PROGRAMS / f"{name}.py").read_text()) for name in ("dpo", "ppo_clip")]
    rng = np.random.default_rng(seed)
    config = MutationConfig(max_statements=ENCODING.max_statements)
    mutants = [mutation_chain(starts[i % 2], rng, int(rng.integers(1, 6)), config)
               for i in range(max(n - 2, 0))]
    return (starts + mutants)[:n]


def ppo_steps_per_second(agents: int, timesteps: int, repeats: int, seed: int) -> None:
    config = PPOConfig(total_timesteps=timesteps)
    steps = agents * config.num_updates * config.num_envs * config.num_steps
    keys = jax.random.split(jax.random.PRNGKey(seed), agents)
    env_params = gymnax.make(ENV)[1]
    clip_train = jax.jit(jax.vmap(make_train(config, ENV, lpo_objective(ppo_clip_drift(0.2))),
                                  in_axes=(None, None, 0)))
    network = DriftNetwork(temporally_aware=True, hidden=16)
    network_train = jax.jit(jax.vmap(make_train(config, ENV, lpo_objective(network.apply)),
                                     in_axes=(0, None, 0)))
    weights = 0.1 * jax.random.normal(jax.random.PRNGKey(seed), (agents, network.num_params))
    program_train = make_train(config, ENV, lpo_objective(program_drift(ENCODING)))
    one_program = jax.jit(jax.vmap(program_train, in_axes=(None, None, 0)))
    population = jax.jit(jax.vmap(program_train, in_axes=(0, None, 0)))
    programs = drift_population(agents, seed)
    dpo = ENCODING.encode(programs[0])
    clip_s = best_time(clip_train, None, env_params, keys, repeats=repeats)
    network_s = best_time(network_train, weights, env_params, keys, repeats=repeats)
    one_s = best_time(one_program, dpo, env_params, keys, repeats=repeats)
    population_s = best_time(population, ENCODING.encode_population(programs), env_params,
                             keys, repeats=repeats)
    print(f"PPO on {ENV}, {agents} agents x {config.num_updates * config.num_envs * config.num_steps}"
          f" steps, one vmapped call each (best of {repeats}):")
    for what, seconds in (("plain PPO (clip drift)", clip_s),
                          (f"{agents} TA-LPO drift networks", network_s),
                          ("one drift program (DPO)", one_s),
                          (f"{agents} distinct drift programs", population_s)):
        cost = (seconds - clip_s) / clip_s
        note = "" if seconds is clip_s else f"   cost vs plain PPO {cost:+.0%}"
        print(f"  {what:28s} {steps / seconds:12,.0f} env steps/s{note}")


def agent_scaling(counts: list[int], chunks: list[int], timesteps: int, repeats: int,
                  seed: int) -> None:
    """Seconds per agent of plain PPO with `counts` agents: all vmapped in one call, and in
    vmapped chunks of each of `chunks` agents run one after another (lax.map), whose working
    set (each agent's weights, Adam state and batch) stays the same as agents grow. Calls are
    timed round-robin, best of `repeats`, so a change of load hits every variant alike."""
    config = PPOConfig(total_timesteps=timesteps)
    train = jax.vmap(make_train(config, ENV, lpo_objective(ppo_clip_drift(0.2))),
                     in_axes=(None, None, 0))
    env_params = gymnax.make(ENV)[1]

    def run(chunk: int | None) -> Callable[[jax.Array], jax.Array]:
        if chunk is None:
            return jax.jit(lambda keys: train(None, env_params, keys).final_return)
        return jax.jit(lambda keys: jax.lax.map(
            lambda k: train(None, env_params, k).final_return,
            keys.reshape((-1, chunk) + keys.shape[1:])).reshape(-1))

    variants = [(n, chunk) for n in counts
                for chunk in [None, *(c for c in chunks if c < n and n % c == 0)]]
    calls = {v: (run(v[1]), jax.random.split(jax.random.PRNGKey(seed), v[0])) for v in variants}
    for fn, keys in calls.values():
        jax.block_until_ready(fn(keys))  # compiles
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(repeats):
        for variant, (fn, keys) in calls.items():
            start = time.perf_counter()
            jax.block_until_ready(fn(keys))
            best[variant] = min(best[variant], time.perf_counter() - start)
    print(f"PPO on {ENV}, {config.num_updates * config.num_envs * config.num_steps} steps per "
          f"agent: seconds per agent, relative to {counts[0]} agents (best of {repeats}):")
    base = best[(counts[0], None)] / counts[0]
    for n, chunk in variants:
        how = "all vmapped" if chunk is None else f"chunks of {chunk}"
        per_agent = best[(n, chunk)] / n
        print(f"  {n:5d} agents, {how:14s} {per_agent:8.4f} s  {per_agent / base:5.2f}x")


def rollout_steps_per_second(repeats: int, seed: int) -> None:
    env, params = gymnax.make(ENV)
    n_envs, n_steps = 1024, 500

    def rollout(key: jax.Array) -> jax.Array:
        k_reset, k_run = jax.random.split(key)
        _, state = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(k_reset, n_envs),
                                                           params)

        def step(state: Any, k: jax.Array) -> tuple[Any, jax.Array]:
            k_act, k_step = jax.random.split(k)
            actions = jax.random.randint(k_act, (n_envs,), 0, 2)
            _, state, reward, *_ = jax.vmap(env.step, in_axes=(0, 0, 0, None))(
                jax.random.split(k_step, n_envs), state, actions, params)
            return state, reward.sum()

        return jax.lax.scan(step, state, jax.random.split(k_run, n_steps))[1].sum()

    gymnax_s = best_time(jax.jit(rollout), jax.random.PRNGKey(seed), repeats=repeats)
    gym_env = gymnasium.make(ENV)
    gym_env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    gym_steps = 20_000
    start = time.perf_counter()
    for _ in range(gym_steps):
        _, _, terminated, truncated, _ = gym_env.step(int(rng.integers(2)))
        if terminated or truncated:
            gym_env.reset()
    gym_s = time.perf_counter() - start
    gymnax_rate, gym_rate = n_envs * n_steps / gymnax_s, gym_steps / gym_s
    print(f"Random-action {ENV} rollouts:")
    print(f"  gymnax, {n_envs} envs vmapped      {gymnax_rate:12,.0f} steps/s")
    print(f"  gymnasium, stepped from Python {gym_rate:12,.0f} steps/s"
          f"   gymnax is {gymnax_rate / gym_rate:.0f}x faster")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--timesteps", type=int, default=50_000, help="per agent")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scaling", type=int, nargs="+", metavar="AGENTS",
                        help="only time plain PPO per agent at these agent counts")
    parser.add_argument("--chunks", type=int, nargs="*", default=[64],
                        help="agents per chunk to compare with all vmapped (--scaling)")
    args = parser.parse_args()
    if args.scaling:
        agent_scaling(args.scaling, args.chunks, args.timesteps, args.repeats, args.seed)
        return
    ppo_steps_per_second(args.agents, args.timesteps, args.repeats, args.seed)
    rollout_steps_per_second(args.repeats, args.seed)


if __name__ == "__main__":
    main()
