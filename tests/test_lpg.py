"""LPG and TA-LPG: the rule reads trajectories backwards, only TA-LPG sees training progress,
the agent trained by a rule is a pure function of (rule, layout, key) that vmaps over
populations and layouts, a NaN rule scores NaN, and A2C on the same agent learns a gridworld."""

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disco_rules.discovery.tasks.gridworld_env import Gridworld, sample_layout, small
from disco_rules.discovery.config import LPGTrainConfig
from disco_rules.discovery.inner.lpg import make_a2c_train, make_lpg_train
from disco_rules.populations.lpg_network import LPGInputs, is_temporally_aware, lpg_apply, lpg_init

ENV = Gridworld()
SMALL = small()
T, B, M = 7, 3, 30
CONFIG = LPGTrainConfig(num_envs=8, num_steps=20, total_timesteps=8 * 20 * 40)
# One compiled LPG run for every test below: vmapped over rules, layouts and keys.
LPG_TRAIN = jax.jit(jax.vmap(make_lpg_train(CONFIG, ENV, temporally_aware=True)))
APPLY = jax.jit(lpg_apply)
INIT = jax.jit(lpg_init, static_argnums=1)
NO_END = jnp.zeros((T, B))


@jax.jit
def inputs(key, done):
    k_r, k_p, k_y, k_n = jax.random.split(key, 4)
    y = jax.nn.softmax(jax.random.normal(k_y, (T, B, M)))
    return LPGInputs(reward=jax.random.normal(k_r, (T, B)),
                     discount=jnp.full((T, B), 0.99),
                     done=done,
                     pi_taken=jax.random.uniform(k_p, (T, B)),
                     y=y, y_next=jax.nn.softmax(jax.random.normal(k_n, (T, B, M))))


def population(n):
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    return jax.jit(jax.vmap(lambda k: lpg_init(k, temporally_aware=True)))(keys)


def stacked(params, n):
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + jnp.shape(x)), params)


def test_rule_outputs_have_lpg_shapes_and_y_hat_is_a_distribution():
    for temporally_aware in (False, True):
        params = INIT(jax.random.PRNGKey(0), temporally_aware)
        assert is_temporally_aware(params) == temporally_aware
        pi_hat, y_hat = APPLY(params, inputs(jax.random.PRNGKey(1), NO_END), 0.5, 3.0, 0.2)
        assert pi_hat.shape == (T, B) and y_hat.shape == (T, B, M)
        np.testing.assert_allclose(y_hat.sum(-1), 1.0, rtol=1e-5)
        assert (y_hat >= 0).all() and jnp.isfinite(pi_hat).all()


def test_rule_reads_the_trajectory_backwards():
    params = INIT(jax.random.PRNGKey(0), False)
    base = inputs(jax.random.PRNGKey(1), NO_END)
    pi_hat, y_hat = APPLY(params, base)
    later = base._replace(reward=base.reward.at[-1].add(5.0))
    pi_later, y_later = APPLY(params, later)
    assert (jnp.abs(pi_later[0] - pi_hat[0]) > 1e-6).all()
    earlier = base._replace(reward=base.reward.at[0].add(5.0))
    pi_earlier, y_earlier = APPLY(params, earlier)
    np.testing.assert_array_equal(pi_earlier[1:], pi_hat[1:])
    np.testing.assert_array_equal(y_earlier[1:], y_hat[1:])
    assert (jnp.abs(pi_earlier[0] - pi_hat[0]) > 1e-6).all()


def test_an_episodes_end_stops_what_follows_from_reaching_back():
    params = INIT(jax.random.PRNGKey(0), False)
    base = inputs(jax.random.PRNGKey(1), done=jnp.zeros((T, B)).at[3].set(1.0))
    pi_hat, _ = APPLY(params, base)
    changed, _ = APPLY(params, base._replace(reward=base.reward.at[-1].add(5.0)))
    np.testing.assert_array_equal(changed[:4], pi_hat[:4])
    assert (jnp.abs(changed[4] - pi_hat[4]) > 1e-6).all()


def test_only_the_temporally_aware_rule_depends_on_progress_and_return():
    trajectory = inputs(jax.random.PRNGKey(1), NO_END)
    lpg = INIT(jax.random.PRNGKey(0), False)
    np.testing.assert_array_equal(APPLY(lpg, trajectory, 0.1, 3.0, 0.0)[0],
                                  APPLY(lpg, trajectory, 0.9, 5.0, 1.0)[0])
    ta_lpg = INIT(jax.random.PRNGKey(0), True)
    early = APPLY(ta_lpg, trajectory, 0.1, 3.0, 0.0)[0]
    assert (jnp.abs(early - APPLY(ta_lpg, trajectory, 0.9, 3.0, 0.0)[0]) > 1e-6).all()
    assert (jnp.abs(early - APPLY(ta_lpg, trajectory, 0.1, 3.0, 1.0)[0]) > 1e-6).all()


@pytest.mark.slow
def test_population_and_layouts_vmap_runs_are_deterministic_and_a_nan_rule_scores_nan():
    rules = population(4)
    rules = jax.tree.map(lambda x: x.at[3].set(jnp.nan), rules)
    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    result = LPG_TRAIN(rules, stacked(SMALL, 4), keys)
    assert result.curve.shape == (4, CONFIG.num_updates)
    assert result.final_return.shape == result.rule_l2.shape == (4,)
    assert np.isfinite(result.final_return[:3]).all() and np.isfinite(result.rule_l2[:3]).all()
    assert not np.isfinite(result.final_return[3]) and not np.isfinite(result.rule_l2[3])
    again = LPG_TRAIN(rules, stacked(SMALL, 4), keys)
    np.testing.assert_array_equal(again.curve, result.curve)
    other = LPG_TRAIN(rules, stacked(SMALL, 4), jax.random.split(jax.random.PRNGKey(3), 4))
    assert not np.array_equal(other.curve[:3], result.curve[:3])
    # Same compiled run over four sampled layouts of the small layout's shapes.
    layouts = jax.jit(jax.vmap(lambda k: sample_layout(k, 5, 2, max_steps=100)))(keys)
    by_layout = LPG_TRAIN(stacked(jax.tree.map(lambda x: x[0], rules), 4), layouts, keys)
    assert np.isfinite(by_layout.final_return).all()


def random_policy_return(params, key, episodes_steps=4000):
    """Mean return of the episodes a uniformly random policy completes."""

    def step(carry, key):
        state, episode_return, total, count = carry
        k_action, k_step = jax.random.split(key)
        _, state, reward, terminated, truncated, _ = ENV.step(
            k_step, state, jax.random.randint(k_action, (), 0, 4), params)
        episode_return = episode_return + reward
        done = terminated | truncated
        total = total + jnp.where(done, episode_return, 0.0)
        return (state, jnp.where(done, 0.0, episode_return), total, count + done), None

    _, state = ENV.reset(key, params)
    carry = (state, 0.0, 0.0, 0)
    (_, _, total, count), _ = jax.lax.scan(step, carry,
                                           jax.random.split(key, episodes_steps))
    return total / count


@pytest.mark.slow  # trains A2C agents
def test_a2c_learns_the_small_gridworld_far_above_a_random_policy():
    config = LPGTrainConfig(num_envs=8, num_steps=20, total_timesteps=8 * 20 * 100)
    train = jax.jit(jax.vmap(make_a2c_train(config, ENV), in_axes=(None, None, 0)))
    result = train(3e-3, SMALL, jax.random.split(jax.random.PRNGKey(0), 2))
    random_return = float(jax.jit(random_policy_return)(SMALL, jax.random.PRNGKey(1)))
    assert np.isfinite(result.curve[:, -1]).all()
    assert (result.final_return > random_return + 5.0).all(), (result.final_return,
                                                               random_return)
    assert (result.rule_l2 == 0.0).all()


@pytest.mark.slow  # trains an LPG and an A2C agent on CartPole
def test_lpg_and_a2c_run_on_a_gymnax_builtin():
    env, params = gymnax.make("CartPole-v1")
    config = LPGTrainConfig(num_envs=4, num_steps=16, total_timesteps=4 * 16 * 10)
    lpg = make_lpg_train(config, env, temporally_aware=False)
    a2c = make_a2c_train(config, env)

    @jax.jit
    def both(rule, key):
        return lpg(rule, params, key), a2c(1e-3, params, key)

    lpg_result, a2c_result = both(INIT(jax.random.PRNGKey(0), False),
                                  jax.random.PRNGKey(1))
    for result in (lpg_result, a2c_result):
        assert result.curve.shape == (10,)
        assert np.isfinite(result.final_return) and result.final_return >= 8.0
