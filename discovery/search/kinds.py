"""The registry of population kinds: what a config's `population.kind` names.

A kind says how its population is built, whether its rules are networks (and of which
shape), which agent its RL tasks train and how a rule of it trains that agent, and whether
its rule is PPO's drift. Adding a kind is one `register` call (with a network class that
provides populations/rule_network.py's `RuleNetwork`). This module imports nothing heavy:
configs and the CLI read it first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from disco_rules.discovery.registry import Registry, later

if TYPE_CHECKING:
    from disco_rules.discovery.config import Config
    from disco_rules.discovery.search.engine import Population


@dataclass(frozen=True)
class PopulationKind:
    """One population kind.

    `population(config, pool)` builds the population (its module is imported then);
    `network(hidden, prediction_size)` the rule network's shape, None for programs;
    `agent`: the config section of the agent its RL tasks train (`ppo` or `lpg`), and
    `agent_baseline` the hand-designed algorithm its rules are measured against there;
    `agent_train(rule, agent config, env name)`: that agent's pure `train(rule params, env
    params, key)` with a rule of this kind (a network's shape, or an Encoding of programs);
    None: its rules train no agents (RL tasks refuse the kind);
    `drift`: its rules are PPO drifts (plotted over ratio and advantage, distillable).
    """

    name: str
    population: Callable[["Config", Any], "Population"]
    agent_train: Callable[[Any, Any, str], Callable[..., Any]] | None = None
    network: Callable[[int, int], Any] | None = None
    agent: str = "ppo"
    agent_baseline: str = "PPO"
    drift: bool = False

    @property
    def networks(self) -> bool:
        """Whether the rules are networks (meta-trained by an evolution strategy)."""
        return self.network is not None


KINDS: Registry[PopulationKind] = Registry("population kind")
"""name -> kind; add one with `register`."""


def register(kind: PopulationKind) -> PopulationKind:
    """Add `kind` to the registry; ValueError if its name is taken."""
    return KINDS.register(kind)


def population_kind(name: str) -> PopulationKind:
    """The registered kind `name`; ValueError lists the valid names."""
    return KINDS.get(name)


def _programs(config: "Config", pool: Any) -> "Population":
    from disco_rules.discovery.search.programs import ProgramPopulation

    return ProgramPopulation(config, pool)


def _networks(config: "Config", pool: Any) -> "Population":
    from disco_rules.discovery.search.networks import NetworkPopulation

    return NetworkPopulation(config, pool)


def _drift_network(temporally_aware: bool) -> Callable[[int, int], Any]:
    def network(hidden: int, prediction_size: int) -> Any:
        from disco_rules.populations.drift_network import DriftNetwork

        return DriftNetwork(temporally_aware, hidden)

    return network


def _lpg_network(temporally_aware: bool) -> Callable[[int, int], Any]:
    def network(hidden: int, prediction_size: int) -> Any:
        from disco_rules.populations.lpg_network import LPGNetwork

        return LPGNetwork(temporally_aware, hidden, prediction_size)

    return network


_DRIFT_PROGRAM = later("discovery.inner.rl_train", "drift_program_train")
_DRIFT_NETWORK = later("discovery.inner.rl_train", "drift_network_train")
_LPG_NETWORK = later("discovery.inner.rl_train", "lpg_network_train")
register(PopulationKind("programs", _programs, _DRIFT_PROGRAM))
register(PopulationKind("lpo", _networks, _DRIFT_NETWORK, _drift_network(False), drift=True))
register(PopulationKind("ta-lpo", _networks, _DRIFT_NETWORK, _drift_network(True), drift=True))
register(PopulationKind("lpg", _networks, _LPG_NETWORK, _lpg_network(False), agent="lpg",
                        agent_baseline="A2C"))
register(PopulationKind("ta-lpg", _networks, _LPG_NETWORK, _lpg_network(True), agent="lpg",
                        agent_baseline="A2C"))


def network_text(network: Any) -> str:
    """What the archive's text column holds for a network candidate: its shape, as JSON."""
    shape = {"network": network.kind, "hidden": network.hidden}
    prediction_size = getattr(network, "prediction_size", None)
    if prediction_size is not None:
        shape["prediction_size"] = prediction_size
    return json.dumps(shape)


def network_from_text(text: str) -> Any:
    """The network shape of an archived candidate (its module imports JAX); ValueError if it
    is not a network."""
    try:
        data = json.loads(text)
        kind = population_kind(data["network"])
        if not kind.networks:
            raise ValueError
        return kind.network(int(data["hidden"]), int(data.get("prediction_size", 0)))
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError("not a network candidate") from None
