"""RL task families on gymnax environments: classic control (physical parameters as levels)
and MinAtar. A task builds an `Environment` whose EnvParams the agents' training loops trace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from disco_rules.discovery.registry import Registry
from disco_rules.discovery.tasks.family import Environment, Family, Range, Task, register

def _gymnax(env_id: str, derived: Callable[[dict], dict] = lambda p: {}
            ) -> Callable[[Task], Environment]:
    """A builder of `env_id` whose EnvParams take the task's parameters (all but the horizon),
    plus any fields `derived` computes from them."""

    def build(task: Task) -> Environment:
        import gymnax  # only RL tasks pay for it

        params = dict(task.params)
        total_timesteps = params.pop("total_timesteps")
        env_params = gymnax.make(env_id)[1]
        env_params = env_params.replace(**params, **derived(params))
        return Environment(env_id, env_params, total_timesteps)

    return build


@dataclass(frozen=True)
class CustomEnvironment:
    """An environment that is not a gymnax id: its `Environment.name` and a factory of its
    env object (gymnax's interface)."""

    name: str
    make: Callable[[], Any]


ENVIRONMENTS: Registry[CustomEnvironment] = Registry("environment")
"""Environments that are not gymnax ids; add one with `ENVIRONMENTS.register`."""


def make_env(name: str) -> Any:
    """The environment object of an `Environment.name`: a registered one, or a gymnax id."""
    if name in ENVIRONMENTS:
        return ENVIRONMENTS.get(name).make()
    import gymnax

    return gymnax.make(name)[0]


def _cartpole_derived(p: dict) -> dict:
    """CartPole keeps total mass and pole mass x length as fields of its EnvParams."""
    return {"total_mass": p["masscart"] + p["masspole"],
            "polemass_length": p["masspole"] * p["length"]}


TIMESTEPS = Range(1_000, 100_000_000, integer=True, log=True)
_RL = [  # name, gymnax id, {parameter: (range, default)}, derived fields, default horizon
    ("cartpole", "CartPole-v1", {"gravity": (Range(4.9, 19.6), 9.8),
                                 "masscart": (Range(0.5, 2.0), 1.0),
                                 "masspole": (Range(0.05, 0.5), 0.1),
                                 "length": (Range(0.25, 1.0), 0.5),
                                 "force_mag": (Range(5.0, 20.0), 10.0)},
     _cartpole_derived, 100_000),
    ("acrobot", "Acrobot-v1", {"link_length_1": (Range(0.5, 1.5), 1.0),
                               "link_mass_1": (Range(0.5, 1.5), 1.0),
                               "link_mass_2": (Range(0.5, 1.5), 1.0),
                               "torque_noise_max": (Range(0.0, 0.2), 0.0)},
     lambda p: {}, 200_000),
    ("mountaincar", "MountainCar-v0", {"force": (Range(0.0008, 0.0015), 0.001),
                                       "gravity": (Range(0.0015, 0.0035), 0.0025)},
     lambda p: {}, 200_000),
    ("breakout", "Breakout-MinAtar", {}, lambda p: {}, 1_000_000),
    ("space_invaders", "SpaceInvaders-MinAtar",
     {"enemy_move_interval": (Range(6, 20, integer=True), 12),
      "enemy_shot_interval": (Range(5, 20, integer=True), 10)}, lambda p: {}, 1_000_000),
    ("freeway", "Freeway-MinAtar", {"player_speed": (Range(1, 5, integer=True), 3)},
     lambda p: {}, 1_000_000),
    ("asterix", "Asterix-MinAtar", {}, lambda p: {}, 1_000_000),
]


for _family in (
    Family(name, ranges={**{k: r for k, (r, _) in params.items()}, "total_timesteps": TIMESTEPS},
           defaults={**{k: d for k, (_, d) in params.items()}, "total_timesteps": horizon},
           build=_gymnax(env_id, derived), kind="rl")
    for name, env_id, params, derived, horizon in _RL
):
    register(_family)
