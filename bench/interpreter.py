"""Vectorized interpreter vs one `jax.jit` per program, on the same programs and seeds.

256 random valid programs (mutation chains from the example optimizers, simplified as the
search simplifies every candidate before evaluating it) each train a small
MLP for 200 steps on a fixed regression task. Prints programs per second of each way, the
ratio (goal: >= 100x) and the interpreter's run time against the natively jitted programs'
run time without compilation (goal: within 2x).

    python bench/interpreter.py [--programs 256] [--native 16] [--batch-size 1]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from common import random_programs
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.interpreter import Encoding, apply_optimizer_tree, flat_size
from disco_rules.dsl.program import Program
from disco_rules.dsl.slots import OPTIMIZER

STEPS, LR, MAX_STATE, MAX_STATEMENTS = 200, 0.01, OPTIMIZER.max_state, 24


def regression_task(key: jax.Array) -> tuple[dict, jax.Array, jax.Array]:
    """A teacher MLP's outputs to fit with an 8-16-1 student MLP."""
    k_x, k_teacher, k_student = jax.random.split(key, 3)
    x = jax.random.normal(k_x, (64, 8))
    teacher = jax.random.normal(k_teacher, (8, 1))
    y = jnp.tanh(x @ teacher)
    k1, k2 = jax.random.split(k_student)
    params = {"w1": jax.random.normal(k1, (8, 16)) / jnp.sqrt(8.0), "b1": jnp.zeros(16),
              "w2": jax.random.normal(k2, (16, 1)) / 4.0, "b2": jnp.zeros(1)}
    return params, x, y


def loss_fn(params: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    hidden = jnp.tanh(x @ params["w1"] + params["b1"])
    return jnp.mean((hidden @ params["w2"] + params["b2"] - y) ** 2)


def make_train(rule):
    """A 200-step training run calling `rule(args, params, grads, state, lr, step, progress)`."""

    def train(rule_args, key: jax.Array) -> jax.Array:
        params, x, y = regression_task(key)
        state = jnp.zeros((MAX_STATE, flat_size(params)))

        def step(carry, t):
            params, state = carry
            grads = jax.grad(loss_fn)(params, x, y)
            step_no = (t + 1).astype(jnp.float32)
            updates, state = rule(rule_args, params, grads, state, LR, step_no, step_no / STEPS)
            params = jax.tree.map(lambda p, u: p - u, params, updates)
            return (params, state), None

        (params, _), _ = jax.lax.scan(step, (params, state), jnp.arange(STEPS))
        return loss_fn(params, x, y)

    return train


def native_rule(program: Program):
    """The program traced op by op into its own XLA computation, tensor by tensor."""
    state_names = OPTIMIZER.state_names(program)

    def rule(_, params, grads, state, lr, step, progress):
        leaves, treedef = jax.tree.flatten(params)
        sizes = [leaf.size for leaf in leaves]
        states = jnp.split(state, np.cumsum(sizes)[:-1], axis=1)
        updates, new_states = [], []
        for w, g, s in zip(leaves, jax.tree.leaves(grads), states):
            inputs = {"w": w, "g": g, "lr": lr, "step": step, "progress": progress}
            inputs.update({n: s[k].reshape(w.shape) for k, n in enumerate(state_names)})
            outputs = evaluate(program, {p: inputs[p] for p in program.params}, jnp)
            updates.append(outputs[0])
            new = [o.reshape(-1) for o in outputs[1:]]
            new_states.append(s.at[: len(new)].set(jnp.stack(new)) if new else s)
        return jax.tree.unflatten(treedef, updates), jnp.concatenate(new_states, axis=1)

    return rule


def timed(fn, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=256)
    parser.add_argument("--native", type=int, default=16,
                        help="how many of the programs to also run with one jit each")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="lax.map batch size over programs (1: one at a time, "
                             "programs: all in one vmap)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    programs = random_programs(args.programs, args.seed, MAX_STATEMENTS, max_chain=15)
    key = jax.random.PRNGKey(args.seed)
    population = Encoding(max_statements=MAX_STATEMENTS).encode_population(programs)
    interpreted = make_train(apply_optimizer_tree)
    train_population = jax.jit(
        lambda pop, key: jax.lax.map(lambda p: interpreted(p, key), pop,
                                     batch_size=args.batch_size if args.batch_size > 1
                                     else None))  # lax.map(batch_size=1) would vmap a size-1
                                                  # batch, making each switch a select
    losses, first = timed(train_population, population, key)
    _, interp_run = timed(train_population, population, key)
    interp_rate = args.programs / first

    native_first, native_run, mismatches = 0.0, 0.0, 0
    for i, program in enumerate(programs[: args.native]):
        train = jax.jit(make_train(native_rule(program)))
        loss, t_first = timed(train, None, key)
        _, t_run = timed(train, None, key)
        native_first += t_first
        native_run += t_run
        same = np.isclose(loss, losses[i], rtol=1e-3, atol=1e-6) or \
            (not np.isfinite(loss) and not np.isfinite(losses[i]))
        mismatches += not same
    native_rate = args.native / native_first

    print(f"programs: {args.programs} interpreted, {args.native} natively jitted "
          f"(same programs and task), {STEPS} steps each, lax.map batch size {args.batch_size}")
    print(f"interpreter: {interp_rate:10.1f} programs/s  (compile+run {first:.2f} s, "
          f"run {interp_run:.2f} s)")
    print(f"jit each:    {native_rate:10.1f} programs/s  (compile+run "
          f"{native_first / args.native * 1e3:.0f} ms/program, run "
          f"{native_run / args.native * 1e3:.2f} ms/program)")
    print(f"throughput ratio (goal >= 100x): {interp_rate / native_rate:.1f}x")
    print(f"run time per program, interpreter / native (goal <= 2x): "
          f"{(interp_run / args.programs) / (native_run / args.native):.2f}x")
    print(f"final losses that disagree (rtol 1e-3): {mismatches} of {args.native}")


if __name__ == "__main__":
    main()
