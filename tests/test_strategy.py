"""evosax strategies by name: sign convention, NaN as worst, checkpoints of the state, and
states without weak types (jitted ask and tell compile once)."""

import evosax
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disco_rules.populations.strategy import Strategy, StrategySpec

KEY = jax.random.PRNGKey(0)
TARGET = np.array([1.0, -2.0, 0.5, 3.0], np.float32)


def maximise_negative_distance(strategy, generations=60):
    state = strategy.init(KEY)
    for g in range(generations):
        population, state = strategy.ask(jax.random.fold_in(KEY, g), state)
        fitness = -np.square(population - TARGET).sum(axis=1)
        state = strategy.tell(jax.random.fold_in(KEY, 1000 + g), population, fitness, state)
    return strategy.mean(state)


@pytest.mark.parametrize("name", ["Open_ES", "SNES", "Sep_CMA_ES", "PGPE", "SimpleGA"])
def test_strategies_by_name_climb_towards_the_fittest_point(name):
    strategy = Strategy(StrategySpec(name, 16, sigma=0.3, learning_rate=0.1), np.zeros(4))
    start = np.square(TARGET).sum()
    assert np.square(maximise_negative_distance(strategy) - TARGET).sum() < 0.1 * start


def test_open_es_is_evosax_open_es_with_the_sign_converted():
    """Our maximising wrapper takes the same step as evosax's OpenES minimising -fitness."""
    spec = StrategySpec("Open_ES", 8, sigma=0.1, learning_rate=0.05)
    ours = Strategy(spec, np.zeros(4))
    reference = evosax.algorithms.Open_ES(8, jnp.zeros(4), optimizer=optax.adam(0.05),
                                          std_schedule=optax.constant_schedule(0.1))
    params = reference.default_params
    state_ours, state_ref = ours.init(KEY), reference.init(KEY, jnp.zeros(4), params)
    for g in range(3):
        k_ask, k_tell = jax.random.split(jax.random.fold_in(KEY, g))
        population, state_ours = ours.ask(k_ask, state_ours)
        population_ref, state_ref = reference.ask(k_ask, state_ref, params)
        np.testing.assert_allclose(population, population_ref, rtol=1e-6)
        fitness = -np.abs(population - TARGET).sum(axis=1)
        state_ours = ours.tell(k_tell, population, fitness, state_ours)
        state_ref, _ = reference.tell(k_tell, population_ref, jnp.asarray(-fitness), state_ref,
                                      params)
    np.testing.assert_allclose(ours.mean(state_ours), state_ref.mean, rtol=1e-5)


def test_nan_fitness_counts_as_the_worst():
    strategy = Strategy(StrategySpec("Open_ES", 4, sigma=0.1, learning_rate=0.1), np.zeros(2))
    state = strategy.init(KEY)
    population, state = strategy.ask(KEY, state)
    # the member that would be best is NaN: the mean must move away from it, as from the worst
    fitness = np.array([np.nan, 0.0, 0.0, 0.0])
    worst = np.array([-1e9, 0.0, 0.0, 0.0])
    after_nan = strategy.mean(strategy.tell(KEY, population, fitness, state))
    after_worst = strategy.mean(strategy.tell(KEY, population, worst, state))
    np.testing.assert_allclose(after_nan, after_worst)


def test_state_round_trips_through_plain_arrays_and_continues_identically():
    strategy = Strategy(StrategySpec("Sep_CMA_ES", 8, sigma=0.2), np.zeros(3))
    state = strategy.init(KEY)
    population, state = strategy.ask(KEY, state)
    state = strategy.tell(KEY, population, -np.square(population).sum(1), state)
    data = strategy.state_to_data(state)
    assert all(isinstance(leaf, np.ndarray) for leaf in data)
    restored = strategy.state_from_data(data)
    np.testing.assert_array_equal(strategy.ask(KEY, restored)[0], strategy.ask(KEY, state)[0])
    other = Strategy(StrategySpec("Sep_CMA_ES", 8, sigma=0.2), np.zeros(5))
    with pytest.raises(ValueError, match="does not fit"):
        other.state_from_data(data)


def weak_leaves(state):
    return [jax.tree_util.keystr(path) for path, leaf in jax.tree_util.tree_leaves_with_path(state)
            if getattr(leaf, "weak_type", False)]


@pytest.mark.parametrize("name", ["Open_ES", "SimpleGA", "CMA_ES"])
def test_states_have_no_weak_types_so_ask_and_tell_compile_once(name):
    strategy = Strategy(StrategySpec(name, 8, sigma=0.1), np.zeros(4))
    state = strategy.init(KEY)
    assert weak_leaves(state) == []
    compiled = []
    for g in range(3):
        population, state = strategy.ask(jax.random.fold_in(KEY, g), state)
        assert weak_leaves(state) == []
        state = strategy.tell(KEY, population, -np.square(population).sum(axis=1), state)
        assert weak_leaves(state) == []
        compiled.append((strategy.algorithm.ask._cache_size(),
                         strategy.algorithm.tell._cache_size()))
    assert compiled[0] == compiled[1] == compiled[2]  # nothing new after the first generation
