"""What every rule network's shape provides: the population, the evolution strategy, the
archive and the exporters use a network only through this."""

from __future__ import annotations

from typing import Protocol

import jax
import numpy as np


class RuleNetwork(Protocol):
    """A rule network's shape (a frozen dataclass); its parameters are one flat float32
    vector, as an evolution strategy samples them."""

    @property
    def kind(self) -> str:
        """Its population kind's name (discovery/search/kinds.py)."""
        ...

    @property
    def hidden(self) -> int: ...

    @property
    def num_params(self) -> int: ...

    def init(self, key: jax.Array) -> jax.Array:
        """Flat parameters of the search's first mean."""
        ...

    def module_source(self, weights: np.ndarray, imports: str, origin: str) -> str:
        """A self-contained module of the rule with `weights`, its arrays from the namespace
        `xp` that `imports` binds (populations/network_export.py)."""
        ...
