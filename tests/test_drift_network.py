"""LPO / TA-LPO drift networks: a valid drift for every weight vector, the LPO features."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disco_rules.discovery.search.kinds import KINDS, population_kind
from disco_rules.populations.drift_network import DriftNetwork
from disco_rules.populations.lpg_network import LPGInputs, LPGNetwork, lpg_apply
from disco_rules.export import export

KEY = jax.random.PRNGKey(0)
RATIO = jnp.exp(jnp.linspace(-1.5, 1.5, 31))[:, None] * jnp.ones((1, 21))
ADVANTAGE = jnp.ones((31, 1)) * jnp.linspace(-3.0, 3.0, 21)[None, :]


def network_of_kind(kind, hidden, prediction_size=0):
    """The network shape that the population kind `kind` builds."""
    return population_kind(kind).network(hidden, prediction_size)


def random_weights(network, key, scale=1.0):
    return scale * jax.random.normal(key, (network.num_params,))


@pytest.mark.parametrize("kind", ["lpo", "ta-lpo"])
def test_every_weight_vector_gives_a_nonnegative_drift_zero_at_ratio_one(kind):
    network = network_of_kind(kind, 8)
    for i in range(5):
        params = random_weights(network, jax.random.fold_in(KEY, i))
        drift = network.apply(params, RATIO, ADVANTAGE, 0.3)
        assert drift.shape == RATIO.shape
        assert np.all(np.asarray(drift) >= 0)
        at_one = network.apply(params, jnp.ones(21), ADVANTAGE[0], 0.7)
        np.testing.assert_allclose(at_one, 0.0, atol=1e-6)
        assert float(drift.max()) > 0  # and not trivially zero


def test_features_are_lpos_list():
    network = network_of_kind("ta-lpo", 4)
    r, a, p = jnp.array([1.7]), jnp.array([-0.4]), 0.25
    log_r = np.log(1.7)
    base = np.array([log_r, log_r ** 2, 1 - 1.7, (1 - 1.7) ** 2])
    lpo = np.concatenate([base, base * -0.4])
    np.testing.assert_allclose(network.features(r, a, p)[0], np.concatenate([lpo, lpo * p]),
                               rtol=1e-6)
    assert network_of_kind("lpo", 4).features(r, a, p).shape == (1, 8)


def test_only_the_temporally_aware_network_depends_on_progress():
    for kind, depends in (("lpo", False), ("ta-lpo", True)):
        network = network_of_kind(kind, 8)
        params = random_weights(network, KEY)
        early = network.apply(params, RATIO, ADVANTAGE, 0.0)
        late = network.apply(params, RATIO, ADVANTAGE, 1.0)
        assert (not np.allclose(early, late)) == depends


def test_initial_network_is_the_zero_drift_and_has_num_params():
    network = network_of_kind("lpo", 8)
    params = network.init(KEY)
    assert params.shape == (network.num_params,)
    np.testing.assert_array_equal(network.apply(params, RATIO, ADVANTAGE, 0.5), 0.0)


def test_each_network_kind_builds_a_network_that_names_it_and_an_unknown_one_is_refused():
    networks = {name: population_kind(name) for name in KINDS if population_kind(name).networks}
    assert set(networks) == {"lpo", "ta-lpo", "lpg", "ta-lpg"}
    for name, kind in networks.items():
        network = kind.network(4, 3)
        assert network.kind == name  # the archive's kind reads back to the same kind
        assert isinstance(network, LPGNetwork if kind.agent == "lpg" else DriftNetwork)
    with pytest.raises(ValueError, match="valid population kinds: programs, lpo, ta-lpo"):
        population_kind("lpx")


@pytest.mark.parametrize("kind,fmt", [("lpo", "numpy"), ("ta-lpo", "jax"), ("ta-lpo", "numpy")])
def test_exported_module_computes_the_networks_drift(kind, fmt):
    network = network_of_kind(kind, 8)
    weights = np.asarray(random_weights(network, KEY))
    namespace = {}
    exec(compile(export((network, weights), fmt), "exported.py", "exec"), namespace)
    for progress in (0.0, 0.6):
        ours = namespace["drift"](np.asarray(RATIO), np.asarray(ADVANTAGE), progress)
        np.testing.assert_allclose(ours, network.apply(weights, RATIO, ADVANTAGE, progress),
                                   rtol=1e-5, atol=1e-6)
    objective = namespace["objective"](1.3, -0.5, 0.2)
    np.testing.assert_allclose(
        objective, 1.3 * -0.5 - network.apply(weights, jnp.array([1.3]), jnp.array([-0.5]), 0.2)[0],
        rtol=1e-5)


def test_export_refuses_weights_of_another_shape_and_unknown_formats():
    network = network_of_kind("lpo", 8)
    with pytest.raises(ValueError, match="has 81 weights"):
        export((network, np.zeros(80)), "jax")
    with pytest.raises(ValueError, match="jax or numpy, not 'optax'"):
        export((network, np.zeros(81)), "optax")


@pytest.mark.parametrize("kind,fmt", [("lpg", "numpy"), ("ta-lpg", "jax")])
def test_exported_lpg_module_computes_the_rules_targets(kind, fmt):
    network = network_of_kind(kind, 6, 5)
    weights = np.asarray(network.init(KEY))
    keys = jax.random.split(KEY, 6)
    t, b, m = 7, 3, 5
    inputs = LPGInputs(reward=jax.random.normal(keys[0], (t, b)),
                       discount=0.99 * jax.random.bernoulli(keys[1], 0.9, (t, b)),
                       done=jax.random.bernoulli(keys[2], 0.2, (t, b)).astype(jnp.float32),
                       pi_taken=jax.random.uniform(keys[3], (t, b)),
                       y=jax.nn.softmax(jax.random.normal(keys[4], (t, b, m))),
                       y_next=jax.nn.softmax(jax.random.normal(keys[5], (t, b, m))))
    namespace = {}
    exec(compile(export((network, weights), fmt), "exported.py", "exec"), namespace)
    ours = namespace["lpg"](*(np.asarray(v) for v in inputs), 0.4, 3.0, 0.7)
    reference = lpg_apply(network.unflatten(weights), inputs, 0.4, 3.0, 0.7)
    for a, b_ in zip(ours, reference):
        np.testing.assert_allclose(a, b_, rtol=1e-4, atol=1e-5)
