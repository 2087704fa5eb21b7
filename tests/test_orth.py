"""`orth`, Muon's orthogonalisation as an op: it is optax's Newton-Schulz iteration scaled to
an RMS of about 1, every evaluator gives it the tensor's own shape (the numpy reference, the
JAX interpreter's segments of a flat parameter vector, every export format), and the shipped
`muon` program trains exactly as `optax.contrib.muon` does."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from optax.contrib import MuonDimensionNumbers, muon
from optax.contrib._muon import orthogonalize_via_newton_schulz  # not re-exported in 0.2.8

from disco_rules.dsl import library
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.interpreter import (Encoding, EncodingError, apply_optimizer_tree, run,
                                         uses_matrix_ops)
from disco_rules.dsl.parser import parse
from disco_rules.dsl.slots import OPTIMIZER
from disco_rules.export import export
from tests.test_export import load

COEFFICIENTS = (3.4445, -4.7750, 2.0315)  # Jordan's quintic, optax's default
STEPS = 5
EPS = 1e-7  # Jordan's; optax's muon adds 1e-8 (it changes nothing at these norms)
# The shapes a parameter tree holds: a wide and a tall matrix, an HWIO convolution kernel
# (an (H*W*I) x O matrix to orth), a bias and a scalar.
SHAPES = {"wide": (6, 10), "tall": (12, 5), "kernel": (3, 3, 4, 8), "bias": (7,), "scale": ()}
ORTH = parse("def orth_g(w, g, lr):\n    update = lr * orth(g)\n    return update\n")
ENCODING = Encoding(max_statements=32)


def tensors(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=shape).astype(np.float32) for name, shape in SHAPES.items()}


def orth(x: np.ndarray) -> np.ndarray:
    """The reference evaluator's `orth` of one tensor."""
    return np.asarray(evaluate(ORTH, {"w": x, "g": x, "lr": np.float32(1.0)})[0])


def optax_orth(x: np.ndarray) -> np.ndarray:
    """optax.contrib's Newton-Schulz orthogonalisation of `x` as orth sees it (its last axis
    the columns, the others the rows), times sqrt(max(rows, cols))."""
    matrix = x.reshape(-1, x.shape[-1] if x.ndim else 1)
    if x.ndim > 2:  # optax's own view of a kernel: reduction axes, then the output axis
        numbers = MuonDimensionNumbers(reduction_axis=tuple(range(x.ndim - 1)),
                                       output_axis=x.ndim - 1)
        result = orthogonalize_via_newton_schulz(jnp.asarray(x), jnp.asarray(COEFFICIENTS),
                                                 STEPS, eps=EPS, dimension_numbers=numbers)
    else:
        result = orthogonalize_via_newton_schulz(jnp.asarray(matrix), jnp.asarray(COEFFICIENTS),
                                                 STEPS, eps=EPS)
    return np.asarray(result).reshape(x.shape) * math.sqrt(max(matrix.shape))


# --- what orth computes ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SHAPES))
def test_orth_is_optaxs_newton_schulz_of_the_tensor_as_a_matrix_times_sqrt_of_its_larger_side(
        name):
    x = tensors(0)[name]
    got = orth(x)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, optax_orth(x), rtol=1e-4, atol=2e-5)


def test_a_vector_gives_about_x_over_its_rms_and_a_scalar_about_its_sign():
    # a vector (one row) has one singular value, 1 after normalising: the quintic's image of
    # 1 after five steps, times x / |x| * sqrt(n) = x / rms(x)
    image = 1.0  # EPS moves it by less than the tolerances below
    for _ in range(STEPS):
        image = COEFFICIENTS[0] * image + COEFFICIENTS[1] * image ** 3 \
            + COEFFICIENTS[2] * image ** 5
    assert 0.6 < image < 1.3
    rng = np.random.default_rng(1)
    for x in (rng.normal(size=100) * 1.0, rng.normal(size=100) * 1e-3):
        rms = np.sqrt(np.mean(x * x))
        np.testing.assert_allclose(orth(x.astype(np.float32)), image * x / rms, rtol=2e-3,
                                   atol=1e-5)
    for value in (-3.0, 0.25):
        np.testing.assert_allclose(orth(np.float32(value)), image * np.sign(value), rtol=1e-3)
    assert orth(np.zeros((4, 3), np.float32)).tolist() == np.zeros((4, 3)).tolist()


@pytest.mark.parametrize("shape", [(8, 32), (32, 8), (16, 24), (3, 100), (128, 16)])
def test_the_singular_values_of_a_rectangular_matrix_end_near_one(shape):
    """Five quintic steps map every singular value of X / |X|_F into about 0.68 .. 1.14 for
    these Gaussian matrices; a square one keeps some small singular values (about n^-1.5 of
    |X|_F times 3.4445^5 stays below 1), which the iteration's five steps do not lift."""
    rng = np.random.default_rng(2)
    for _ in range(5):
        x = rng.normal(size=shape).astype(np.float32)
        values = np.linalg.svd(orth(x) / math.sqrt(max(shape)), compute_uv=False)
        assert 0.6 < values.min() and values.max() < 1.3, values


def test_a_square_matrix_keeps_its_singular_values_below_the_band_top():
    x = np.random.default_rng(3).normal(size=(32, 32)).astype(np.float32)
    values = np.linalg.svd(orth(x) / math.sqrt(32), compute_uv=False)
    assert values.max() < 1.3 and np.median(values) > 0.6


# --- every evaluator gives orth the tensor's shape -------------------------------------------

def test_the_interpreter_orthogonalises_each_segment_of_the_flat_vector_as_its_tensor():
    params = tensors(4)
    grads = tensors(5)
    state = jnp.zeros((OPTIMIZER.max_state, sum(x.size for x in params.values())))
    updates, _ = jax.jit(apply_optimizer_tree)(ENCODING.encode(ORTH), params, grads, state,
                                               jnp.float32(1.0), jnp.float32(1.0),
                                               jnp.float32(0.0))
    for name, g in grads.items():
        assert updates[name].shape == g.shape
        np.testing.assert_allclose(updates[name], orth(g), rtol=1e-4, atol=2e-5, err_msg=name)


def test_under_vmap_as_the_trainers_run_it_each_example_is_orthogonalised_alone():
    params, first, second = tensors(4), tensors(10), tensors(11)
    grads = {name: np.stack([first[name], second[name]]) for name in SHAPES}
    state = jnp.zeros((OPTIMIZER.max_state, sum(x.size for x in params.values())))
    updates, _ = jax.jit(jax.vmap(
        lambda g: apply_optimizer_tree(ENCODING.encode(ORTH), params, g, state, 1.0, 1.0, 0.0)
    ))(grads)
    for name in SHAPES:
        for k, g in enumerate((first[name], second[name])):
            np.testing.assert_allclose(updates[name][k], orth(g), rtol=1e-4, atol=2e-5,
                                       err_msg=name)


def test_an_encoding_without_matrix_ops_refuses_them_and_computes_the_rest_alike():
    adam, muon_program = library.program("adam"), library.program("muon")
    assert uses_matrix_ops(ENCODING.encode_population([adam, muon_program]))
    assert not uses_matrix_ops(ENCODING.encode_population([adam, library.program("lion")]))
    plain = Encoding(max_statements=32, matrix_ops=False)
    with pytest.raises(EncodingError, match="uses orth; this encoding has no matrix ops"):
        plain.encode(muon_program)
    params, grads = tensors(12), tensors(13)
    state = jnp.ones((OPTIMIZER.max_state, sum(x.size for x in params.values())))
    step = jax.jit(apply_optimizer_tree, static_argnums=7)
    args = (params, grads, state, jnp.float32(0.1), jnp.float32(3.0), jnp.float32(0.5))
    with_matrix_ops = step(ENCODING.encode(adam), *args, True)
    without = step(plain.encode(adam), *args, False)
    for a, b in zip(jax.tree.leaves(with_matrix_ops), jax.tree.leaves(without)):
        np.testing.assert_array_equal(a, b)


def test_without_shapes_the_interpreter_orthogonalises_a_value_in_its_own_shape():
    g = tensors(6)["tall"]
    inputs = jnp.zeros((ENCODING.n_inputs,) + g.shape).at[1].set(g).at[2].set(1.0)
    update = run(ENCODING.encode(ORTH), inputs)[0]
    np.testing.assert_allclose(update, orth(g), rtol=1e-4, atol=2e-5)


def test_every_export_format_computes_orth_of_each_tensor(tmp_path):
    torch = pytest.importorskip("torch")
    grads = tensors(7)
    params = tensors(8)
    lr = 0.5
    for fmt in ("numpy", "jax"):
        source = export(ORTH, fmt)
        assert source.count("def orth(x):") == 1
        module = load(source, tmp_path, f"orth_{fmt}")
        for name, g in grads.items():
            got = module.orth_g(params[name], g if fmt == "numpy" else jnp.asarray(g), lr)
            np.testing.assert_allclose(got, lr * orth(g), rtol=1e-4, atol=2e-5,
                                       err_msg=f"{fmt} {name}")

    optimizer = load(export(ORTH, "optax"), tmp_path, "orth_optax").optimizer(lr)
    updates, _ = optimizer.update(grads, optimizer.init(params), params)
    for name, g in grads.items():
        np.testing.assert_allclose(-updates[name], lr * orth(g), rtol=1e-4, atol=2e-5,
                                   err_msg=f"optax {name}")

    weights = {name: torch.tensor(x, requires_grad=True) for name, x in params.items()}
    for name, g in grads.items():
        weights[name].grad = torch.tensor(g)
    load(export(ORTH, "torch"), tmp_path, "orth_torch").OrthG(list(weights.values()),
                                                              lr=lr).step()
    for name, g in grads.items():
        np.testing.assert_allclose(params[name] - weights[name].detach().numpy(),
                                   lr * orth(g), rtol=1e-4, atol=2e-5, err_msg=f"torch {name}")


def test_only_a_program_that_uses_orth_brings_its_helper():
    for fmt in ("numpy", "jax", "optax", "torch"):
        assert "def orth(" not in export(library.program("adamw"), fmt)
        assert "def orth(" in export(library.program("muon"), fmt)


# --- the shipped muon program is optax.contrib.muon -----------------------------------------

MATRICES = {"w1": (6, 10), "w2": (10, 10), "w3": (12, 5)}  # Muon's path only: no biases
LR, TRAINING_STEPS = 0.02, 6


def muon_run(step_fn) -> tuple[dict, dict]:
    """The first weights and the weights after TRAINING_STEPS steps of `step_fn(weights,
    grads, t)` (t from 1) on random gradients."""
    rng = np.random.default_rng(9)
    first = {name: jnp.asarray(rng.normal(size=shape), jnp.float32)
             for name, shape in MATRICES.items()}
    weights = first
    for t in range(1, TRAINING_STEPS + 1):
        grads = {name: jnp.asarray(rng.normal(size=shape), jnp.float32)
                 for name, shape in MATRICES.items()}
        weights = step_fn(weights, grads, t)
    return first, weights


def optax_steps(optimizer: optax.GradientTransformation):
    state = {}

    @jax.jit
    def one(weights, grads, state):
        updates, state = optimizer.update(grads, state, weights)
        return optax.apply_updates(weights, updates), state

    def step(weights, grads, t):
        if t == 1:
            state["s"] = optimizer.init(weights)
        weights, state["s"] = one(weights, grads, state["s"])
        return weights

    return step


def assert_same_training(weights, reference, first) -> None:
    """Each matrix where optax's Muon took it, within float32 rounding of the distance both
    moved."""
    for name in MATRICES:
        moved = np.abs(np.asarray(reference[name]) - np.asarray(first[name])).max()
        assert moved > 5e-3, "the steps must move the weights"
        error = np.abs(np.asarray(weights[name]) - np.asarray(reference[name])).max()
        assert error <= 1e-4 * moved, (name, error, moved)


def test_the_muon_program_in_the_interpreter_trains_as_optax_contrib_muon():
    reference = muon_run(optax_steps(muon(LR, weight_decay=0.01, consistent_rms=0.2)))[1]
    encoded = ENCODING.encode(library.program("muon"))
    step_fn = jax.jit(apply_optimizer_tree)
    state = {}

    def step(weights, grads, t):
        if t == 1:
            state["s"] = jnp.zeros((OPTIMIZER.max_state,
                                    sum(math.prod(s) for s in MATRICES.values())))
        updates, state["s"] = step_fn(encoded, weights, grads, state["s"], jnp.float32(LR),
                                      jnp.float32(t), jnp.float32(0.0))
        return jax.tree.map(lambda w, u: w - u, weights, updates)  # the trainer's w - update

    first, weights = muon_run(step)
    assert_same_training(weights, reference, first)


def test_the_muon_programs_optax_export_trains_as_optax_contrib_muon(tmp_path):
    reference = muon_run(optax_steps(muon(LR, weight_decay=0.01, consistent_rms=0.2)))[1]
    exported = load(export(library.program("muon"), "optax"), tmp_path, "muon_optax")
    first, weights = muon_run(optax_steps(exported.optimizer(LR)))
    assert_same_training(weights, reference, first)
