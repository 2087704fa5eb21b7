"""Any evosax strategy by name, over flat parameter vectors, with fitness to be maximised.

evosax 0.3 minimises; the sign is converted here and nowhere else. NaN fitness (a rule whose
agents diverged) is the worst, as evosax treats it. The strategy's state is a pytree of
arrays: `state_to_data` / `state_from_data` turn it into plain arrays for a msgpack checkpoint
and back, never a pickle.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from evosax.algorithms import algorithms
from evosax.algorithms.population_based import population_based_algorithms


def _strongly_typed(state: Any) -> Any:
    """`state` without weakly typed leaves. evosax's init (and some updates) leave Python
    scalars weakly typed; jitted ask/tell would compile once per weak/strong pattern."""
    return jax.tree.map(lambda leaf: jax.lax.convert_element_type(leaf, jnp.result_type(leaf)),
                        state)


@dataclass(frozen=True)
class StrategySpec:
    """What to build: an evosax strategy name, population size, sigma and mean step size."""

    name: str = "Open_ES"
    population_size: int = 16
    sigma: float = 0.05
    learning_rate: float = 0.05


class Strategy:
    """ask/tell over flat vectors around `initial` (the first mean, or the initial members)."""

    def __init__(self, spec: StrategySpec, initial: jax.Array) -> None:
        if spec.name not in algorithms:
            raise ValueError(f"{spec.name!r} is not an evosax strategy")
        self.spec = spec
        self.initial = jnp.asarray(initial, jnp.float32)
        cls = algorithms[spec.name]
        accepted = inspect.signature(cls.__init__).parameters
        kwargs: dict[str, Any] = {}
        if "optimizer" in accepted:
            kwargs["optimizer"] = optax.adam(spec.learning_rate)
        if "std_schedule" in accepted:
            kwargs["std_schedule"] = optax.constant_schedule(spec.sigma)
        self.algorithm = cls(spec.population_size, self.initial, **kwargs)
        params = self.algorithm.default_params
        if hasattr(params, "std_init"):
            params = params.replace(std_init=spec.sigma)
        self.params = params
        self.population_based = spec.name in population_based_algorithms

    def init(self, key: jax.Array) -> Any:
        """The strategy's first state: its mean at `initial` (population-based strategies: a
        population of `initial` plus sigma-noise, all of unknown fitness)."""
        if not self.population_based:
            return _strongly_typed(self.algorithm.init(key, self.initial, self.params))
        k_init, k_noise = jax.random.split(key)
        noise = jax.random.normal(k_noise, (self.spec.population_size, self.initial.size))
        population = self.initial + self.spec.sigma * noise
        fitness = jnp.full(self.spec.population_size, jnp.inf)
        return _strongly_typed(self.algorithm.init(k_init, population, fitness, self.params))

    def ask(self, key: jax.Array, state: Any) -> tuple[np.ndarray, Any]:
        """A population of flat vectors [population_size, dims] and the new state."""
        population, state = self.algorithm.ask(key, state, self.params)
        return np.asarray(population, np.float32), _strongly_typed(state)

    def tell(self, key: jax.Array, population: np.ndarray, fitness: np.ndarray,
             state: Any) -> Any:
        """The state after learning `fitness` (higher is better; NaN is the worst)."""
        loss = -np.asarray(fitness, np.float32)
        loss = np.where(np.isfinite(loss), loss, np.inf)
        state, _ = self.algorithm.tell(key, jnp.asarray(population), jnp.asarray(loss), state,
                                       self.params)
        return _strongly_typed(state)

    def mean(self, state: Any) -> np.ndarray:
        """The distribution's mean (population-based: the best member found so far)."""
        if self.population_based:
            return np.asarray(state.best_solution, np.float32)
        return np.asarray(state.mean, np.float32)

    def state_to_data(self, state: Any) -> list[np.ndarray]:
        """The state's leaves as numpy arrays, in the pytree's order."""
        return [np.asarray(leaf) for leaf in jax.tree.leaves(state)]

    def state_from_data(self, data: list[np.ndarray]) -> Any:
        """The state whose leaves are `data`; ValueError if they do not fit this strategy."""
        template = self.init(jax.random.PRNGKey(0))
        leaves, treedef = jax.tree.flatten(template)
        if len(data) != len(leaves) or any(np.shape(d) != np.shape(t)
                                           for d, t in zip(data, leaves)):
            raise ValueError(f"checkpointed state does not fit {self.spec.name} with "
                             f"{self.initial.size} parameters")
        return jax.tree.unflatten(treedef, [jnp.asarray(d, t.dtype)
                                            for d, t in zip(data, leaves)])
