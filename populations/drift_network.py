"""LPO's learned drift: a small MLP over features of the ratio and advantage (Lu et al. 2022),
and TA-LPO's, which also sees the training progress (Jackson et al. 2024).

The network's output is shifted by its value at ratio 1 and rectified, so every weight vector
is a valid drift (non-negative, zero at ratio 1) and evolution never meets an invalid rule.
Parameters are a flat float32 vector, as an evolution strategy samples them.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.populations.network_export import drift_module


@dataclass(frozen=True)
class DriftNetwork:
    """The shape of a drift network; `temporally_aware`: TA-LPO (features times progress)."""

    temporally_aware: bool
    hidden: int = 32

    @property
    def kind(self) -> str:
        """Its population kind's name (discovery/search/kinds.py)."""
        return "ta-lpo" if self.temporally_aware else "lpo"

    def module_source(self, weights: np.ndarray, imports: str, origin: str) -> str:
        """A self-contained module of the drift with `weights` (network_export.py)."""
        return drift_module(self, weights, imports, origin)

    @property
    def num_features(self) -> int:
        return 16 if self.temporally_aware else 8

    @property
    def num_params(self) -> int:
        return (self.num_features + 2) * self.hidden + 1

    def init(self, key: jax.Array) -> jax.Array:
        """Flat parameters: fan-in-scaled hidden weights, a zero output layer (drift 0: the
        search starts from the unclipped policy gradient and moves from there)."""
        w1 = jax.random.normal(key, (self.num_features, self.hidden)) / np.sqrt(self.num_features)
        return jnp.concatenate([w1.ravel(), jnp.zeros(2 * self.hidden + 1)])

    def _unflatten(self, params: jax.Array) -> tuple[jax.Array, ...]:
        f, h = self.num_features, self.hidden
        w1 = params[: f * h].reshape(f, h)
        b1 = params[f * h: f * h + h]
        w2 = params[f * h + h: f * h + 2 * h]
        return w1, b1, w2, params[-1]

    def features(self, ratio: jax.Array, advantage: jax.Array,
                 progress: jax.Array) -> jax.Array:
        """[log r, (log r)^2, 1-r, (1-r)^2] and each times A (LPO); TA-LPO adds all eight
        times progress. Every feature is zero at ratio 1. Shape: ratio.shape + (features,)."""
        log_r = jnp.log(ratio)
        base = jnp.stack([log_r, log_r ** 2, 1.0 - ratio, (1.0 - ratio) ** 2], axis=-1)
        lpo = jnp.concatenate([base, base * advantage[..., None]], axis=-1)
        if not self.temporally_aware:
            return lpo
        progress = jnp.broadcast_to(progress, ratio.shape)[..., None]
        return jnp.concatenate([lpo, lpo * progress], axis=-1)

    def apply(self, params: jax.Array, ratio: jax.Array, advantage: jax.Array,
              progress: jax.Array) -> jax.Array:
        """The drift per sample: relu(f(features) - f(0)); f(0) is f at ratio 1."""
        w1, b1, w2, b2 = self._unflatten(params)
        x = self.features(ratio, advantage, progress)
        at_one = jnp.tanh(b1) @ w2 + b2
        return jax.nn.relu(jnp.tanh(x @ w1 + b1) @ w2 + b2 - at_one)
