"""Dense layers and MLPs as plain dicts of arrays: the agents' and rule networks' layers
(`dense_init`, `mlp_init`) and the optimizer tasks' models (`lecun_dense_init`,
`lecun_mlp_init`), applied by `dense` and `mlp`."""

from __future__ import annotations

import math
from typing import Callable

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


def lecun_dense_init(key: jax.Array, n_in: int, n_out: int) -> dict[str, jax.Array]:
    """LeCun-normal weights (variance 1 / n_in) and zero biases: the optimizer tasks' layers."""
    return {"w": jax.random.normal(key, (n_in, n_out)) / math.sqrt(n_in), "b": jnp.zeros(n_out)}


def lecun_mlp_init(key: jax.Array, sizes: list[int]) -> list[dict[str, jax.Array]]:
    """Layers of `sizes`, each `lecun_dense_init`."""
    keys = jax.random.split(key, len(sizes) - 1)
    return [lecun_dense_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def dense(layer: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    """x @ w + b over x's last axis."""
    return x @ layer["w"] + layer["b"]


def mlp(layers: list[dict[str, jax.Array]], x: jax.Array,
        activation: Callable[[jax.Array], jax.Array] = jnp.tanh) -> jax.Array:
    """`activation` (tanh unless given) on the hidden layers, linear output."""
    for layer in layers[:-1]:
        x = activation(dense(layer, x))
    return dense(layers[-1], x)
