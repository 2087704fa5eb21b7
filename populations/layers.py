"""Dense layers and tanh MLPs as plain dicts of arrays: the agents' networks and the rule
networks' layers, with one initialisation."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp


def dense_init(key: jax.Array, n_in: int, n_out: int, scale: float) -> dict[str, jax.Array]:
    """Weights of variance scale**2 / n_in (truncated normal) and zero biases. Not orthogonal
    (PureJaxRL's choice): jaxlib's CPU QR can deadlock when two run at once."""
    init = jax.nn.initializers.variance_scaling(scale ** 2, "fan_in", "truncated_normal")
    return {"w": init(key, (n_in, n_out)), "b": jnp.zeros(n_out)}


def mlp_init(key: jax.Array, sizes: list[int], last_scale: float) -> list[dict[str, jax.Array]]:
    """Layers of `sizes`, hidden ones with tanh's gain sqrt(2), the last with `last_scale`."""
    keys = jax.random.split(key, len(sizes) - 1)
    scales = [math.sqrt(2.0)] * (len(sizes) - 2) + [last_scale]
    return [dense_init(k, n_in, n_out, s)
            for k, n_in, n_out, s in zip(keys, sizes[:-1], sizes[1:], scales)]


def mlp(layers: list[dict[str, jax.Array]], x: jax.Array) -> jax.Array:
    """tanh hidden layers, linear output."""
    for layer in layers[:-1]:
        x = jnp.tanh(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]
