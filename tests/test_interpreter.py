"""The interpreter runs any encoded program, a population in one compiled call, and agrees
with direct op-by-op evaluation to float32 precision."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.interpreter import (Encoding, EncodingError, apply_optimizer, apply_optimizer_tree,
                             run)
from disco_rules.dsl.mutate import MutationConfig, mutate
from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Const, Program, Stmt
from disco_rules.dsl.slots import OPTIMIZER

EXAMPLES = [parse((Path(__file__).parent.parent / "dsl" / "programs" / f"{name}.py")
                  .read_text()) for name in ("adam", "adamw", "lion", "momentum", "sgd")]
ENCODING = Encoding(max_statements=80)


def every_op_program() -> Program:
    """One statement per op, reading w, g, the state and constants, all feeding the update."""
    body, last = [], "g"
    for i, name in enumerate(n for n in OP_NAMES):
        arity = OPS[name].arity
        args = (last, "m", Const(0.7))[:arity] if name != "pow" else ("w", Const(2.0))
        body.append(Stmt(f"v{i}", name, args))
        body.append(Stmt(f"c{i}", "clip", (f"v{i}", Const(3.0))))
        last = f"c{i}"
    return Program("every_op", ("w", "g", "m", "lr"), tuple(body), (last, "v1"))


def random_programs(n: int, seed: int) -> list[Program]:
    rng = np.random.default_rng(seed)
    config = MutationConfig(max_statements=32)
    programs = []
    for i in range(n):
        program = EXAMPLES[i % len(EXAMPLES)]
        for _ in range(rng.integers(1, 20)):
            program = mutate(program, rng, config)
        programs.append(program)
    return programs


def optimizer_inputs(program: Program, rng: np.random.Generator, size: int = 6):
    w, g = rng.normal(size=(2, size)).astype(np.float32)
    state = np.abs(rng.normal(size=(OPTIMIZER.max_state, size))).astype(np.float32)
    scalars = {"lr": np.float32(0.05), "step": np.float32(7.0), "progress": np.float32(0.35)}
    named = {"w": w, "g": g, **scalars}
    named.update({n: state[k] for k, n in enumerate(OPTIMIZER.state_names(program))})
    return named, (w, g, state, scalars["lr"], scalars["step"], scalars["progress"])


def reference(program: Program, named: dict) -> list[np.ndarray]:
    with np.errstate(all="ignore"):
        outs = evaluate(program, {p: named[p] for p in program.params}, jnp)
    return [np.asarray(o) for o in outs]


def assert_float32_close(actual, expected):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert np.array_equal(np.isnan(actual), np.isnan(expected))
    finite = np.isfinite(expected)
    assert np.array_equal(actual[~finite & ~np.isnan(expected)],
                          expected[~finite & ~np.isnan(expected)])
    np.testing.assert_allclose(actual[finite], expected[finite], rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("program", EXAMPLES + [every_op_program()], ids=lambda p: p.name)
def test_interpreter_matches_direct_evaluation(program):
    named, args = optimizer_inputs(program, np.random.default_rng(1))
    update, state = jax.jit(apply_optimizer)(ENCODING.encode(program), *args)
    expected = reference(program, named)
    assert_float32_close(update, expected[0])
    for k, value in enumerate(expected[1:]):
        assert_float32_close(state[k], value)


def test_a_population_of_random_programs_runs_in_one_vmapped_call():
    programs = random_programs(48, seed=3)
    named, args = optimizer_inputs(programs[0], np.random.default_rng(2))
    traces = []

    def population_step(population, *args):
        traces.append(1)
        return jax.vmap(apply_optimizer, in_axes=(0,) + (None,) * 6)(population, *args)

    step = jax.jit(population_step)
    updates, states = step(ENCODING.encode_population(programs), *args)
    for i, program in enumerate(programs):
        named, _ = optimizer_inputs(program, np.random.default_rng(2))
        expected = reference(program, named)
        assert_float32_close(updates[i], expected[0])
        for k, value in enumerate(expected[1:]):
            assert_float32_close(states[i, k], value)
    # a different population of the same size reuses the compiled computation
    step(ENCODING.encode_population(random_programs(48, seed=4)), *args)
    assert len(traces) == 1


def test_lax_map_and_vmap_agree():
    programs = random_programs(16, seed=5)
    _, args = optimizer_inputs(programs[0], np.random.default_rng(0))
    population = ENCODING.encode_population(programs)
    f = lambda p: apply_optimizer(p, *args)  # noqa: E731
    by_vmap = jax.jit(jax.vmap(f))(population)
    by_map = jax.jit(lambda pop: jax.lax.map(f, pop))(population)
    for a, b in zip(by_vmap, by_map):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_run_reads_inputs_by_register():
    program = parse("def f(w, g, m, lr):\n    u = g - m\n    return u, w\n")
    encoded = ENCODING.encode(program)
    inputs = jnp.arange(ENCODING.n_inputs, dtype=jnp.float32)[:, None] * jnp.ones((1, 3))
    out = run(encoded, inputs)
    # g is register 1, the first state variable (m) register 5, w register 0
    np.testing.assert_array_equal(out[0], np.full(3, 1.0 - 5.0))
    np.testing.assert_array_equal(out[1], np.full(3, 0.0))
    np.testing.assert_array_equal(out[2], np.full(3, 6.0)), "unused state keeps its value"


def test_too_long_a_program_is_a_clear_error():
    program = random_programs(1, seed=0)[0]
    short = Encoding(max_statements=len(program.body) - 1)
    with pytest.raises(EncodingError, match="raise max_statements"):
        short.encode(program)


def test_a_parameter_tree_in_one_call_equals_tensor_by_tensor_with_per_tensor_reductions():
    program = parse("def r(w, g, m, lr):\n    m = interp(g, m, 0.9)\n"
                    "    u = lr * m / (norm(m) + rms(g) + mean(w) + 1.0)\n    return u, m\n")
    rng = np.random.default_rng(0)
    params = {"a": rng.normal(size=(3, 4)).astype(np.float32),
              "b": rng.normal(size=(5,)).astype(np.float32)}
    grads = {k: rng.normal(size=v.shape).astype(np.float32) for k, v in params.items()}
    encoded = ENCODING.encode(program)
    state = np.abs(rng.normal(size=(OPTIMIZER.max_state, 17))).astype(np.float32)
    updates, new_state = apply_optimizer_tree(encoded, params, grads, state, 0.1, 2.0, 0.5)
    start = 0
    for name in ("a", "b"):  # pytree leaf order
        size = params[name].size
        leaf_state = state[:, start:start + size].reshape((-1,) + params[name].shape)
        update, leaf_new = apply_optimizer(encoded, params[name], grads[name], leaf_state,
                                           0.1, 2.0, 0.5)
        np.testing.assert_allclose(updates[name], update, rtol=1e-6)
        np.testing.assert_allclose(new_state[:, start:start + size],
                                   leaf_new.reshape(OPTIMIZER.max_state, -1), rtol=1e-6)
        start += size
