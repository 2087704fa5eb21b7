"""LPG's gridworld: gymnax's six-value step, walls and the border block, objects pay their
reward and end or respawn with their probabilities, and layouts are data that vmaps."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disco_rules.discovery.tasks.gridworld_env import (LAYOUTS, EnvParams, EnvState, Gridworld, from_map,
                                 sample_layout)

ENV = Gridworld()
UP, RIGHT, DOWN, LEFT = range(4)
# Object 0 at (1, 2), object 1 at (3, 3), a wall at (2, 1).
LAYOUT = from_map(["....",
                   "..0.",
                   ".#..",
                   "...1"],
                  [(0.7, 0.3, 0.0), (-1.0, 0.0, 0.2)], max_steps=10)
STEP = jax.jit(ENV.step)
MANY_STEPS = jax.jit(jax.vmap(ENV.step, in_axes=(0, None, None, None)))


def state_at(row, col, present=(True, True), time=0):
    return EnvState(agent_pos=jnp.array([row, col], dtype=jnp.int32),
                    present=jnp.array(present), time=jnp.int32(time))


def test_step_returns_gymnax_six_values_and_flat_observation():
    obs, state = ENV.reset(jax.random.PRNGKey(0), LAYOUT)
    assert obs.shape == (4 * 4 + 2,) == ENV.observation_space(LAYOUT).shape
    assert ENV.action_space(LAYOUT).n == 4
    out = STEP(jax.random.PRNGKey(1), state, RIGHT, LAYOUT)
    assert len(out) == 6
    obs, state, reward, terminated, truncated, info = out
    assert obs.shape == (18,) and reward.shape == () and terminated.dtype == bool
    assert "final_observation" in info
    np.testing.assert_array_equal(obs[:16].sum(), 1.0)


def test_walls_and_the_border_block_movement_and_free_cells_do_not():
    key = jax.random.PRNGKey(0)
    into_wall = STEP(key, state_at(1, 1), DOWN, LAYOUT)[1]
    np.testing.assert_array_equal(into_wall.agent_pos, [1, 1])
    into_border = STEP(key, state_at(0, 0), UP, LAYOUT)[1]
    np.testing.assert_array_equal(into_border.agent_pos, [0, 0])
    into_border = STEP(key, state_at(0, 0), LEFT, LAYOUT)[1]
    np.testing.assert_array_equal(into_border.agent_pos, [0, 0])
    free = STEP(key, state_at(1, 1), UP, LAYOUT)[1]
    np.testing.assert_array_equal(free.agent_pos, [0, 1])
    obs = STEP(key, state_at(1, 1), LEFT, LAYOUT)[0]
    assert obs[1 * 4 + 0] == 1.0


def test_reaching_an_object_pays_its_reward_and_removes_it():
    reward = STEP(jax.random.PRNGKey(3), state_at(1, 1), RIGHT, LAYOUT)[2]
    assert float(reward) == pytest.approx(0.7)
    obs, state, reward, terminated, _, _ = STEP(jax.random.PRNGKey(3), state_at(3, 2), RIGHT,
                                                LAYOUT)
    assert float(reward) == -1.0 and not bool(terminated)
    np.testing.assert_array_equal(state.present, [True, False])
    np.testing.assert_array_equal(obs[16:], [1.0, 0.0])
    # An absent object pays nothing.
    reward = STEP(jax.random.PRNGKey(3), state_at(1, 1, (False, True)), RIGHT, LAYOUT)[2]
    assert float(reward) == 0.0


def test_termination_follows_the_objects_probability():
    keys = jax.random.split(jax.random.PRNGKey(7), 4000)
    _, _, reward, terminated, truncated, _ = MANY_STEPS(keys, state_at(1, 1), RIGHT, LAYOUT)
    np.testing.assert_allclose(reward, 0.7, rtol=1e-6)
    assert abs(float(terminated.mean()) - 0.3) < 0.03
    assert not truncated.any()
    # Object 1 never terminates.
    terminated = MANY_STEPS(keys, state_at(3, 2), RIGHT, LAYOUT)[3]
    assert not terminated.any()


def test_absent_objects_respawn_with_their_probability_and_a_collected_one_waits():
    keys = jax.random.split(jax.random.PRNGKey(8), 4000)
    state = MANY_STEPS(keys, state_at(0, 0, (True, False)), RIGHT, LAYOUT)[1]
    assert abs(float(state.present[:, 1].mean()) - 0.2) < 0.03
    assert state.present[:, 0].all()
    # Collected this step: stays absent this step, though its respawn probability is 0.2.
    state = MANY_STEPS(keys, state_at(3, 2), RIGHT, LAYOUT)[1]
    assert not state.present[:, 1].any()


def test_episode_truncates_at_max_steps_and_auto_resets():
    obs, state, _, terminated, truncated, info = STEP(jax.random.PRNGKey(0),
                                                      state_at(0, 0, time=9), RIGHT, LAYOUT)
    assert bool(truncated) and not bool(terminated)
    assert int(state.time) == 0
    assert info["final_observation"][0 * 4 + 1] == 1.0


def test_reset_starts_on_a_free_cell_with_every_object_present():
    obs, state = jax.vmap(ENV.reset, in_axes=(0, None))(
        jax.random.split(jax.random.PRNGKey(0), 500), LAYOUT)
    pos = np.asarray(state.agent_pos)
    walls = np.asarray(LAYOUT.walls)
    assert not walls[pos[:, 0], pos[:, 1]].any()
    objects = {tuple(p) for p in np.asarray(LAYOUT.object_pos)}
    assert not any(tuple(p) in objects for p in pos)
    assert state.present.all()
    assert len({tuple(p) for p in pos}) == 16 - 1 - 2  # every free cell is used


def test_named_layouts_are_valid():
    for name, layout in LAYOUTS.items():
        params = layout()
        walls = np.asarray(params.walls)
        pos = np.asarray(params.object_pos)
        assert not walls[pos[:, 0], pos[:, 1]].any(), name
        assert len({tuple(p) for p in pos}) == len(pos), name
        assert params.object_reward.shape == params.object_term.shape == (len(pos),)
        obs, state = ENV.reset(jax.random.PRNGKey(0), params)
        assert obs.shape == ENV.observation_space(params).shape


def test_sampled_layouts_are_valid_differ_and_vmap_through_reset_and_step():
    keys = jax.random.split(jax.random.PRNGKey(0), 16)
    layouts = jax.jit(jax.vmap(lambda k: sample_layout(k, 6, 3, max_steps=20)))(keys)
    assert isinstance(layouts, EnvParams)
    assert layouts.walls.shape == (16, 6, 6) and layouts.object_pos.shape == (16, 3, 2)
    host = jax.device_get(layouts)
    assert len({w.tobytes() for w in host.walls}) > 1
    for walls, pos in zip(host.walls, host.object_pos):
        assert not walls[pos[:, 0], pos[:, 1]].any()
        assert len({tuple(p) for p in pos}) == 3
        assert walls.sum() <= 36 - 4
    assert ((host.object_reward >= -1) & (host.object_reward <= 1)).all()
    assert ((host.object_respawn >= 0) & (host.object_respawn <= 0.2)).all()
    obs, state = jax.jit(jax.vmap(ENV.reset))(keys, layouts)
    step = jax.jit(jax.vmap(ENV.step))
    obs, state, reward, terminated, truncated, _ = step(keys, state, jnp.zeros(16, int),
                                                        layouts)
    assert obs.shape == (16, 36 + 3) and reward.shape == (16,)
