"""The LPG rule network (Oh et al. 2020) and TA-LPG's (Jackson et al. 2024): a backward
recurrent network over a rollout that outputs the agent's policy and prediction targets.

`LPGNetwork` is its shape and the flat-vector view an evolution strategy samples; the agent
it trains is in discovery/lpg.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from disco_rules.populations.layers import dense, dense_init
from disco_rules.populations.network_export import lpg_module


LPGParams = dict[str, Any]
"""The rule's parameters: {"embed", "gru", "pi_hat", "y_hat"}, each {"w", "b"} (the GRU's
{"wx", "wh", "b"}); a population has a leading axis on every leaf."""

_BASE_INPUTS = 3  # reward, discount, pi(a|s); then the two embeddings of y
_TEMPORAL_INPUTS = 3  # n/N, log N, normalised return


class LPGInputs(NamedTuple):
    """What LPG reads of a rollout, each [T, B] (the predictions [T, B, m])."""

    reward: jax.Array
    discount: jax.Array  # gamma * (1 - terminated)
    done: jax.Array  # 1 where an episode ended (terminated or truncated): LPG's memory resets
    pi_taken: jax.Array  # pi(a_t | s_t) of the action taken
    y: jax.Array  # y(s_t)
    y_next: jax.Array  # y(s_{t+1}), of the state reached before any auto-reset


def lpg_init(key: jax.Array, temporally_aware: bool, hidden: int = 16,
             prediction_size: int = 30) -> LPGParams:
    """Random rule parameters: a shared embedding of y (width `hidden`), a GRU of width
    `hidden`, and the pi_hat and y_hat heads."""
    k_embed, k_x, k_h, k_pi, k_y = jax.random.split(key, 5)
    n_in = _BASE_INPUTS + 2 * hidden + (_TEMPORAL_INPUTS if temporally_aware else 0)
    gru = {"wx": dense_init(k_x, n_in, 3 * hidden, 1.0)["w"],
           "wh": dense_init(k_h, hidden, 3 * hidden, 1.0)["w"], "b": jnp.zeros(3 * hidden)}
    return {"embed": dense_init(k_embed, prediction_size, hidden, math.sqrt(2.0)), "gru": gru,
            "pi_hat": dense_init(k_pi, hidden, 1, 1.0),
            "y_hat": dense_init(k_y, hidden, prediction_size, 1.0)}


def is_temporally_aware(params: LPGParams) -> bool:
    """Whether the rule has TA-LPG's three extra inputs (read from its shapes)."""
    hidden = params["embed"]["w"].shape[-1]
    return params["gru"]["wx"].shape[-2] == _BASE_INPUTS + 2 * hidden + _TEMPORAL_INPUTS


def lpg_apply(params: LPGParams, inputs: LPGInputs, progress: Any = 0.0,
              log_total: Any = 0.0, normalised_return: Any = 0.0
              ) -> tuple[jax.Array, jax.Array]:
    """(pi_hat [T, B], y_hat [T, B, m]): the rule run backwards in time over a rollout.

    y(s_t) and y(s_{t+1}) pass through one shared dense layer, so the rule sees only what
    the predictions do, not what their coordinates mean. A GRU scans from the last step to
    the first; its memory is cleared after each episode's end. The temporal inputs (scalars
    or [B]) are read only by a TA-LPG rule: n/N, log N and the normalised return.
    """

    def embed(y: jax.Array) -> jax.Array:
        return jax.nn.relu(dense(params["embed"], y))

    features = [inputs.reward[..., None], inputs.discount[..., None],
                inputs.pi_taken[..., None], embed(inputs.y), embed(inputs.y_next)]
    if is_temporally_aware(params):
        shape = inputs.reward.shape
        features += [jnp.broadcast_to(jnp.asarray(v, jnp.float32), shape)[..., None]
                     for v in (progress, log_total, normalised_return)]
    x = jnp.concatenate(features, axis=-1)
    gru = params["gru"]
    hidden = gru["wh"].shape[0]

    def cell(h: jax.Array, step: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, jax.Array]:
        x_t, done_t = step
        h = h * (1.0 - done_t)[:, None]  # what follows an episode's end is another episode
        gates_x = x_t @ gru["wx"] + gru["b"]
        gates_h = h @ gru["wh"]
        update = jax.nn.sigmoid(gates_x[:, :hidden] + gates_h[:, :hidden])
        reset = jax.nn.sigmoid(gates_x[:, hidden:2 * hidden] + gates_h[:, hidden:2 * hidden])
        candidate = jnp.tanh(gates_x[:, 2 * hidden:] + reset * gates_h[:, 2 * hidden:])
        h = update * h + (1.0 - update) * candidate
        return h, h

    h0 = jnp.zeros((x.shape[1], hidden), x.dtype)
    _, hs = jax.lax.scan(cell, h0, (x, inputs.done.astype(x.dtype)), reverse=True)
    pi_hat = dense(params["pi_hat"], hs)[..., 0]
    y_hat = jax.nn.softmax(dense(params["y_hat"], hs))
    return pi_hat, y_hat



@dataclass(frozen=True)
class LPGNetwork:
    """The shape of an LPG rule; `temporally_aware`: TA-LPG. Parameters as flat vectors."""

    temporally_aware: bool
    hidden: int = 16
    prediction_size: int = 30

    @property
    def kind(self) -> str:
        """Its population kind's name (discovery/search/kinds.py)."""
        return "ta-lpg" if self.temporally_aware else "lpg"

    def module_source(self, weights: np.ndarray, imports: str, origin: str) -> str:
        """A self-contained module of the rule with `weights` (network_export.py)."""
        return lpg_module(self, weights, imports, origin)

    def _template(self) -> LPGParams:
        return lpg_init(jax.random.PRNGKey(0), self.temporally_aware, self.hidden,
                        self.prediction_size)

    @property
    def num_params(self) -> int:
        return int(ravel_pytree(self._template())[0].size)

    def init(self, key: jax.Array) -> jax.Array:
        """Flat parameters of a random rule (`lpg_init`)."""
        params = lpg_init(key, self.temporally_aware, self.hidden, self.prediction_size)
        return ravel_pytree(params)[0]

    def unflatten(self, flat: jax.Array) -> LPGParams:
        """The rule's parameter dict of a flat vector (traceable)."""
        return ravel_pytree(self._template())[1](jnp.asarray(flat, jnp.float32))
