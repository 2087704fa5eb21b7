"""LPG's gridworlds as a gymnax environment whose layout is data, so one step vmaps over levels.

A grid with walls, an agent and a few objects; each object k has a reward r_k, a termination
probability and a respawn probability (Oh et al. 2020, "Discovering Reinforcement Learning
Algorithms", appendix). Reaching a present object pays r_k, removes it, and ends the episode
with its termination probability; each step, each absent object (not one collected in that
step) reappears at its own cell with its respawn probability. The observation is the agent's
cell one-hot followed by the objects' presence, so an MLP agent can use it.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
from flax import struct
from gymnax.environments import environment, spaces

MOVES = jnp.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=jnp.int32)
"""Row and column change of each action: up, right, down, left."""


@struct.dataclass
class EnvState(environment.EnvState):
    agent_pos: jax.Array  # [2] int32: row, column
    present: jax.Array  # [K] bool: which objects are on the grid
    time: Any


@struct.dataclass
class EnvParams:
    """A layout; all fields are arrays, so params of equal shapes stack into a batch of levels."""

    walls: jax.Array  # [H, W] bool; the border outside the grid also blocks
    object_pos: jax.Array  # [K, 2] int32, distinct cells that are not walls
    object_reward: jax.Array  # [K] float32
    object_term: jax.Array  # [K] float32: P(episode ends | object collected)
    object_respawn: jax.Array  # [K] float32: P(absent object reappears) per step
    max_steps_in_episode: jax.Array  # [] int32


class Gridworld(environment.Environment[EnvState, EnvParams]):
    """LPG's gridworld; grid size and object count come from the params' array shapes."""

    @property
    def default_params(self) -> EnvParams:
        return dense()

    def step_env(self, key: jax.Array, state: EnvState, action: int | jax.Array,
                 params: EnvParams) -> tuple[jax.Array, EnvState, jax.Array, jax.Array,
                                             dict[str, Any]]:
        """Move unless a wall or the border blocks, collect, maybe terminate, respawn."""
        height, width = params.walls.shape
        target = state.agent_pos + MOVES[action]
        inside = jnp.all((target >= 0) & (target < jnp.array([height, width])))
        row = jnp.clip(target[0], 0, height - 1)
        col = jnp.clip(target[1], 0, width - 1)
        blocked = ~inside | params.walls[row, col]
        agent_pos = jnp.where(blocked, state.agent_pos, target)
        collected = state.present & jnp.all(params.object_pos == agent_pos, axis=1)
        reward = jnp.sum(jnp.where(collected, params.object_reward, 0.0))
        k_term, k_respawn = jax.random.split(key)
        n_objects = params.object_pos.shape[0]
        terminated = jnp.any(collected & (jax.random.uniform(k_term, (n_objects,))
                                          < params.object_term))
        respawned = ~state.present & (jax.random.uniform(k_respawn, (n_objects,))
                                      < params.object_respawn)
        state = EnvState(agent_pos=agent_pos, present=(state.present & ~collected) | respawned,
                         time=state.time + 1)
        return self.get_obs(state, params), state, reward, terminated, {}

    def reset_env(self, key: jax.Array, params: EnvParams) -> tuple[jax.Array, EnvState]:
        """The agent starts on a uniformly random cell that is neither a wall nor an object."""
        height, width = params.walls.shape
        occupied = params.walls.at[params.object_pos[:, 0], params.object_pos[:, 1]].set(True)
        cell = jax.random.categorical(key, jnp.where(occupied.ravel(), -jnp.inf, 0.0))
        state = EnvState(agent_pos=jnp.array([cell // width, cell % width], dtype=jnp.int32),
                         present=jnp.ones(params.object_pos.shape[0], dtype=bool), time=0)
        return self.get_obs(state, params), state

    def get_obs(self, state: EnvState, params: EnvParams, key: Any = None) -> jax.Array:
        """[H * W + K] float32: the agent's cell one-hot, then the objects' presence."""
        height, width = params.walls.shape
        position = jax.nn.one_hot(state.agent_pos[0] * width + state.agent_pos[1],
                                  height * width)
        return jnp.concatenate([position, state.present.astype(jnp.float32)])

    @property
    def name(self) -> str:
        return "Gridworld"

    @property
    def num_actions(self) -> int:
        return 4

    def action_space(self, params: EnvParams | None = None) -> spaces.Discrete:
        """Four moves: up, right, down, left."""
        return spaces.Discrete(4)

    def observation_space(self, params: EnvParams) -> spaces.Box:
        """A flat vector in [0, 1] of the agent's cell one-hot and the objects' presence."""
        height, width = params.walls.shape
        return spaces.Box(0.0, 1.0, (height * width + params.object_pos.shape[0],),
                          jnp.float32)


def from_map(rows: list[str], objects: list[tuple[float, float, float]],
             max_steps: int) -> EnvParams:
    """Params from a drawn map ('#' wall, '.' free, digit k: object k) and per-object
    (reward, termination probability, respawn probability)."""
    walls = jnp.array([[c == "#" for c in row] for row in rows])
    cells = {int(c): (i, j) for i, row in enumerate(rows) for j, c in enumerate(row)
             if c.isdigit()}
    if sorted(cells) != list(range(len(objects))) or len({len(r) for r in rows}) != 1:
        raise ValueError("need a rectangular map with objects 0..K-1, one cell each")
    reward, term, respawn = (jnp.array(v, dtype=jnp.float32) for v in zip(*objects))
    return EnvParams(walls=walls, object_pos=jnp.array([cells[k] for k in sorted(cells)],
                                                       dtype=jnp.int32),
                     object_reward=reward, object_term=term, object_respawn=respawn,
                     max_steps_in_episode=jnp.int32(max_steps))


def dense() -> EnvParams:
    """11x11, four objects that mostly respawn: many rewards per episode (LPG's 'dense')."""
    return from_map(["...........",
                     ".0.....#...",
                     "...#...#.1.",
                     "...#.......",
                     "...#####...",
                     "...........",
                     "..#....#...",
                     ".2#....#...",
                     "..#....###.",
                     "........3..",
                     "..........."],
                    [(1.0, 0.0, 0.05), (1.0, 0.0, 0.05), (-1.0, 0.5, 0.1), (-1.0, 0.0, 0.5)],
                    max_steps=500)


def sparse() -> EnvParams:
    """13x13, one good and one bad object, both ending the episode (LPG's 'sparse')."""
    return from_map([".............",
                     ".............",
                     "..####.####..",
                     "..#.......#..",
                     "..#.......#..",
                     "..#...1...#..",
                     "..#.......#..",
                     "..#.......#..",
                     "..#########..",
                     ".............",
                     ".............",
                     "............0",
                     "............."],
                    [(1.0, 1.0, 0.0), (-1.0, 1.0, 0.0)], max_steps=50)


def long_horizon() -> EnvParams:
    """11x11, rare respawns of the good objects and terminating bad ones over 1000 steps."""
    return from_map(["0..........",
                     "...........",
                     "..#######..",
                     "..#.....#..",
                     "..#..2..#..",
                     "..#.....#..",
                     "..#..3..#..",
                     "..#.....#..",
                     "..##...##..",
                     "...........",
                     "..........1"],
                    [(1.0, 0.0, 0.01), (1.0, 0.0, 0.01), (-1.0, 0.5, 1.0), (-1.0, 0.5, 1.0)],
                    max_steps=1000)


def small() -> EnvParams:
    """5x5, one good and one bad object, 100 steps: quick to learn, for tests and smoke runs."""
    return from_map(["0....",
                     "..#..",
                     ".###.",
                     ".....",
                     "....1"],
                    [(1.0, 0.0, 0.2), (-1.0, 0.5, 0.1)], max_steps=100)


LAYOUTS = {"dense": dense, "sparse": sparse, "long_horizon": long_horizon, "small": small}
"""Named fixed layouts."""


def sample_layout(key: jax.Array, size: int, n_objects: int, wall_density: float = 0.15,
                  max_steps: int = 200) -> EnvParams:
    """A random size x size layout: walls with probability wall_density, n_objects on distinct
    free cells with reward ~ U[-1, 1], termination ~ U[0, 1], respawn ~ U[0, 0.2].

    Objects' cells and one more cell are cleared of walls, so the agent can always start;
    connectivity is not guaranteed. Jit- and vmap-able over keys (size, n_objects static).
    """
    if size * size <= n_objects:
        raise ValueError("need more cells than objects")
    k_walls, k_cells, k_reward, k_term, k_respawn = jax.random.split(key, 5)
    walls = jax.random.bernoulli(k_walls, wall_density, (size * size,))
    cells = jax.random.permutation(k_cells, size * size)[:n_objects + 1]
    walls = walls.at[cells].set(False).reshape(size, size)
    objects = cells[:n_objects]
    return EnvParams(
        walls=walls,
        object_pos=jnp.stack([objects // size, objects % size], axis=1).astype(jnp.int32),
        object_reward=jax.random.uniform(k_reward, (n_objects,), minval=-1.0, maxval=1.0),
        object_term=jax.random.uniform(k_term, (n_objects,)),
        object_respawn=jax.random.uniform(k_respawn, (n_objects,), maxval=0.2),
        max_steps_in_episode=jnp.int32(max_steps))
