"""Tasks are checked, hashable levels of registered families; every family builds a Problem
of pure functions of keys whose shapes follow the task's parameters."""

import functools
import math
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disco_rules.discovery.tasks import FAMILIES, Choice, Range, Task, heldout, real
from disco_rules.discovery.tasks.plugins import is_plugin

KEY = jax.random.PRNGKey(0)


def test_make_fills_defaults_sorts_and_compares_by_value():
    task = Task.make("quadratic", dim=4)
    assert [name for name, _ in task.params] == sorted(FAMILIES.get("quadratic").ranges)
    assert task.get("dim") == 4
    assert task.get("noise") == FAMILIES.get("quadratic").defaults["noise"]
    same = Task.make("quadratic", noise=FAMILIES.get("quadratic").defaults["noise"], dim=4)
    assert same == task and hash(same) == hash(task)
    assert Task.make("quadratic", dim=5) != task
    assert pickle.loads(pickle.dumps(task)) == task


def test_key_is_a_readable_stable_string():
    assert Task.make("mlp_regression").key == (
        "mlp_regression(batch_size=32,depth=1,horizon=200,in_dim=8,noise=0.1,width=16)")
    assert Task.make("classification", dataset="gaussians").key.startswith(
        "classification(batch_size=32,dataset=gaussians,")


def test_numbers_are_normalised_so_equal_levels_share_a_key():
    assert Task.make("quadratic", condition_number=10).key == \
        Task.make("quadratic", condition_number=10.0).key
    width = Task.make("rnn", width=np.int64(8)).get("width")
    assert width == 8 and type(width) is int


def test_unknown_family_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match="'mnist'") as error:
        Task.make("mnist")
    for name in FAMILIES:
        assert name in str(error.value)


def test_unknown_parameter_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match="'lr'") as error:
        Task.make("rosenbrock", lr=0.1)
    assert "dim" in str(error.value) and "horizon" in str(error.value)


@pytest.mark.parametrize("family, params", [
    ("mlp_regression", {"width": 0}),
    ("mlp_regression", {"noise": -0.1}),
    ("mlp_regression", {"noise": math.nan}),
    ("quadratic", {"condition_number": 0.5}),
    ("rnn", {"seq_len": 1}),
    ("rosenbrock", {"horizon": 10**6}),
])
def test_out_of_range_values_are_rejected(family, params):
    with pytest.raises(ValueError, match="outside its range"):
        Task.make(family, **params)


@pytest.mark.parametrize("family, params", [
    ("mlp_regression", {"width": 16.0}),
    ("mlp_regression", {"depth": True}),
    ("quadratic", {"noise": "0.1"}),
    ("classification", {"dataset": "moons"}),
])
def test_values_of_the_wrong_kind_are_rejected(family, params):
    with pytest.raises(ValueError, match=next(iter(params))):
        Task.make(family, **params)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_defaults_cover_every_parameter_and_lie_in_range(family):
    spec = FAMILIES.get(family)
    assert set(spec.defaults) == set(spec.ranges)
    assert Task.make(family).params == tuple(sorted(spec.defaults.items()))


def in_range(spec, value) -> bool:
    if isinstance(spec, Choice):
        return value in spec.options
    kind = int if spec.integer else float
    return type(value) is kind and spec.low <= value <= spec.high


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_sample_draws_levels_in_range_deterministically_per_seed(family):
    spec = FAMILIES.get(family)
    tasks = [spec.sample(np.random.default_rng(seed)) for seed in range(40)]
    for task in tasks:
        assert task.family == family
        for name, value in task.params:
            assert in_range(spec.ranges[name], value), (name, value)
    for name in spec.ranges:
        assert len({task.get(name) for task in tasks}) > 1, f"{name} never varies"
    assert tasks == [spec.sample(np.random.default_rng(seed)) for seed in range(40)]


def test_sample_keeps_fixed_parameters():
    rng = np.random.default_rng(3)
    tasks = [FAMILIES.get("mlp_regression").sample(rng, horizon=50, batch_size=8)
             for _ in range(10)]
    assert {(t.get("horizon"), t.get("batch_size")) for t in tasks} == {(50, 8)}
    assert len({t.get("noise") for t in tasks}) > 1


def test_log_ranges_sample_across_orders_of_magnitude():
    values = [Range(1.0, 1e6, log=True).sample(np.random.default_rng(s)) for s in range(200)]
    assert min(values) < 10 and max(values) > 1e5
    assert sum(v < 1e3 for v in values) > 50  # a linear draw would put ~0.1% below 1e3


SMALL = {
    "mlp_regression": Task.make("mlp_regression", in_dim=3, width=5, depth=2, batch_size=7),
    "classification": Task.make("classification", n_classes=4, width=6, depth=1,
                                batch_size=7, dataset="gaussians"),
    "rnn": Task.make("rnn", seq_len=6, width=5, batch_size=7),
    "rosenbrock": Task.make("rosenbrock", dim=5),
    "quadratic": Task.make("quadratic", dim=5),
}


def test_every_optimizer_family_has_a_small_test_task():
    # the real-data and held-out families have their own (tests/test_real_tasks.py,
    # tests/test_heldout_tasks.py); plug-ins are the user's
    assert set(SMALL) == {family.name for family in map(FAMILIES.get, FAMILIES)
                          if family.kind == "optimizer"
                          and family.build.__module__ not in (real.__name__, heldout.__name__)
                          and not is_plugin(family.name)}


@functools.cache
def drawer(family):
    """Data, initial parameters, a batch and the two losses of a key, in one compiled call."""
    problem = SMALL[family].build()

    def draw(key):
        k_data, k_init, k_batch = jax.random.split(key, 3)
        data, params = problem.data(k_data), problem.init(k_init)
        batch = problem.train_batch(k_batch, data)
        losses = (problem.loss(params, batch), problem.validation_loss(params, data))
        return data, params, batch, losses

    return jax.jit(draw)


@pytest.mark.parametrize("family", sorted(SMALL))
def test_problem_is_pure_in_its_keys_with_finite_scalar_losses(family):
    assert SMALL[family].build().horizon == SMALL[family].get("horizon")
    drawn = drawer(family)(KEY)
    for value in drawn[-1]:
        assert jnp.shape(value) == () and np.isfinite(value)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(drawn),
                                                       jax.tree.leaves(drawer(family)(KEY))))
    params, other = drawn[1], drawer(family)(jax.random.PRNGKey(1))[1]
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params),
                                                           jax.tree.leaves(other)))


def test_shape_parameters_fix_the_network_and_batch_shapes():
    _, params, (x, y), _ = drawer("mlp_regression")(KEY)
    assert [layer["w"].shape for layer in params] == [(3, 5), (5, 5), (5, 1)]
    assert x.shape == (7, 3) and y.shape == (7, 1)

    _, params, (x, labels), _ = drawer("classification")(KEY)
    assert [layer["w"].shape for layer in params] == [(2, 6), (6, 4)]
    assert x.shape == (7, 2) and set(np.asarray(labels)) <= set(range(4))

    _, _, (inputs, targets), _ = drawer("rnn")(KEY)
    assert inputs.shape == (7, 6, 2) and targets.shape == (7, 1)
    assert np.all(np.asarray(inputs[..., 1]).sum(axis=1) == 2)  # two marked positions

    assert drawer("rosenbrock")(KEY)[1]["x"].shape == (5,)


def test_rosenbrock_is_zero_at_its_minimum_and_deterministic():
    problem = SMALL["rosenbrock"].build()
    assert float(problem.validation_loss({"x": jnp.ones(5)}, ())) == 0.0
    point = problem.init(KEY)
    assert problem.loss(point, problem.train_batch(KEY, ())) == \
        problem.loss(point, problem.train_batch(jax.random.PRNGKey(9), ()))


def test_quadratic_has_the_requested_condition_number():
    task = Task.make("quadratic", dim=6, condition_number=1000.0)
    hessian = task.build().data(KEY)["hessian"]
    eigenvalues = np.linalg.eigvalsh(np.asarray(hessian, np.float64))
    assert eigenvalues.max() / eigenvalues.min() == pytest.approx(1000.0, rel=1e-3)


def test_quadratic_basis_is_a_proper_random_rotation():
    task = Task.make("quadratic", dim=6, condition_number=1000.0)
    hessian = np.asarray(task.build().data(KEY)["hessian"], np.float64)
    eigenvalues, basis = np.linalg.eigh(hessian)
    np.testing.assert_allclose(basis.T @ basis, np.eye(6), atol=1e-5)
    # not axis-aligned: the Hessian couples coordinates
    assert np.abs(hessian - np.diag(np.diag(hessian))).max() > 1e-2
    other = np.asarray(task.build().data(jax.random.PRNGKey(7))["hessian"])
    assert not np.allclose(hessian, other)


def test_gridworld_families_build_lpg_layouts_as_env_params():
    named = Task.make("gridworld", layout="sparse").build()
    assert named.name == "Gridworld" and named.params.walls.ndim == 2
    first = Task.make("random_gridworld", size=5, objects=2, layout_seed=1).build().params
    again = Task.make("random_gridworld", size=5, objects=2, layout_seed=1).build().params
    other = Task.make("random_gridworld", size=5, objects=2, layout_seed=2).build().params
    assert first.walls.shape == (5, 5) and first.object_pos.shape == (2, 2)
    np.testing.assert_array_equal(first.walls, again.walls)
    assert not (np.array_equal(first.walls, other.walls)
                and np.array_equal(first.object_reward, other.object_reward))
    assert Task.make("random_gridworld").kind == "rl"


def test_cartpole_levels_keep_gymnax_derived_fields_consistent():
    params = Task.make("cartpole", masspole=0.3, length=0.8).build().params
    assert params.total_mass == pytest.approx(1.3)
    assert params.polemass_length == pytest.approx(0.24)
