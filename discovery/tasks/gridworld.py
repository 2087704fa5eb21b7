"""LPG's gridworld task families: named layouts and layouts drawn from a seed."""

from __future__ import annotations

from disco_rules.discovery.tasks.family import Choice, Environment, Family, Range, Task, register
from disco_rules.discovery.tasks.rl import ENVIRONMENTS, TIMESTEPS, CustomEnvironment

def _gridworld(task: Task) -> Environment:
    """One of LPG's named layouts."""
    from disco_rules.discovery.tasks.gridworld_env import LAYOUTS

    return Environment("Gridworld", LAYOUTS[task.get("layout")](), task.get("total_timesteps"))


def _random_gridworld(task: Task) -> Environment:
    """A random layout drawn from `layout_seed`: walls, object cells, rewards and the
    objects' termination and respawn probabilities (LPG's randomised gridworlds)."""
    import jax

    from disco_rules.discovery.tasks.gridworld_env import sample_layout

    params = sample_layout(jax.random.PRNGKey(task.get("layout_seed")), task.get("size"),
                           task.get("objects"), task.get("wall_density"), task.get("max_steps"))
    return Environment("Gridworld", params, task.get("total_timesteps"))


def _environment() -> object:
    from disco_rules.discovery.tasks.gridworld_env import Gridworld

    return Gridworld()


ENVIRONMENTS.register(CustomEnvironment("Gridworld", _environment))
for _family in (
    Family("gridworld",
           ranges={"layout": Choice(("dense", "sparse", "long_horizon", "small")),
                   "total_timesteps": TIMESTEPS},
           defaults={"layout": "small", "total_timesteps": 32_000},
           build=_gridworld, kind="rl"),
    Family("random_gridworld",
           ranges={"size": Range(3, 16, integer=True), "objects": Range(1, 8, integer=True),
                   "wall_density": Range(0.0, 0.4), "layout_seed": Range(0, 2 ** 31 - 1,
                                                                          integer=True),
                   "max_steps": Range(10, 1000, integer=True, log=True),
                   "total_timesteps": TIMESTEPS},
           defaults={"size": 6, "objects": 3, "wall_density": 0.15, "layout_seed": 0,
                     "max_steps": 100, "total_timesteps": 32_000},
           build=_random_gridworld, kind="rl"),
):
    register(_family)
