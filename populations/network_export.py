"""A rule network as a self-contained Python module: its weights embedded, its forward pass
written out, importable with nothing of disco installed (a drift network by any PPO, an LPG
network by any actor-critic that keeps a prediction vector)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the networks import jax; writing their source does not need it
    from disco_rules.populations.drift_network import DriftNetwork
    from disco_rules.populations.lpg_network import LPGNetwork
    from disco_rules.populations.rule_network import RuleNetwork


def _array(values: np.ndarray) -> str:
    """A float32 array as source: each value's shortest repr that reads back to it exactly."""
    flat = ", ".join(repr(float(v)) for v in np.asarray(values, np.float32).ravel())
    return f"xp.asarray([{flat}], dtype=xp.float32).reshape({tuple(values.shape)!r})"


def network_module(network: RuleNetwork, weights: np.ndarray, imports: str,
                   origin: str = "") -> str:
    """Source of a module for `weights` of `network`, its arrays from the namespace `xp` that
    `imports` binds (e.g. "import jax.numpy as xp"), as the network's `module_source` writes it:
    `drift(ratio, advantage, progress)` and LPO's objective for a drift network, `lpg(...)` for
    an LPG network."""
    weights = np.asarray(weights, np.float32)
    if weights.shape != (network.num_params,):
        raise ValueError(f"a {network.kind} network of hidden size {network.hidden} has "
                         f"{network.num_params} weights, got {weights.shape}")
    return network.module_source(weights, imports, origin)


def drift_module(network: DriftNetwork, weights: np.ndarray, imports: str, origin: str) -> str:
    """The module of a drift network (its `module_source`)."""
    f, h = network.num_features, network.hidden
    w1, b1 = weights[: f * h].reshape(f, h), weights[f * h: f * h + h]
    w2, b2 = weights[f * h + h: f * h + 2 * h], weights[-1:]
    progress_note = ("TA-LPO: the drift changes with\nprogress = update / total updates"
                     if network.temporally_aware else "LPO: progress is accepted and\nignored")
    temporal = ("    features = xp.concatenate([features, features * progress[..., None]], "
                "axis=-1)\n" if network.temporally_aware else "")
    return f'''"""A learned {network.kind.upper()} drift, exported by disco{origin}.

drift(ratio, advantage, progress) >= 0, and 0 at ratio 1; PPO's policy objective becomes
ratio * advantage - drift (Lu et al. 2022). {progress_note}.
"""

{imports}

HIDDEN_WEIGHTS = {_array(w1)}
HIDDEN_BIAS = {_array(b1)}
OUTPUT_WEIGHTS = {_array(w2)}
OUTPUT_BIAS = {_array(b2)}


def features(ratio, advantage, progress):
    """[log r, (log r)^2, 1-r, (1-r)^2] and each times the advantage{
        '; all of them also times progress' if network.temporally_aware else ''}."""
    ratio = xp.asarray(ratio, dtype=xp.float32)
    advantage = xp.asarray(advantage, dtype=xp.float32)
    progress = xp.asarray(progress, dtype=xp.float32)
    shape = xp.broadcast_shapes(ratio.shape, advantage.shape, progress.shape)
    ratio, advantage, progress = (xp.broadcast_to(x, shape) for x in (ratio, advantage, progress))
    log_r = xp.log(ratio)
    base = xp.stack([log_r, log_r ** 2, 1.0 - ratio, (1.0 - ratio) ** 2], axis=-1)
    features = xp.concatenate([base, base * advantage[..., None]], axis=-1)
{temporal}    return features


def drift(ratio, advantage, progress):
    """The drift per sample: relu(f(features) - f(0)), f a one-hidden-layer tanh MLP."""
    hidden = xp.tanh(features(ratio, advantage, progress) @ HIDDEN_WEIGHTS + HIDDEN_BIAS)
    at_one = xp.tanh(HIDDEN_BIAS) @ OUTPUT_WEIGHTS + OUTPUT_BIAS[0]
    return xp.maximum(hidden @ OUTPUT_WEIGHTS + OUTPUT_BIAS[0] - at_one, 0.0)


def objective(ratio, advantage, progress):
    """LPO's policy objective per sample, to be maximised."""
    return ratio * advantage - drift(ratio, advantage, progress)
'''


def lpg_module(network: LPGNetwork, weights: np.ndarray, imports: str, origin: str) -> str:
    """The module of an LPG network (its `module_source`)."""
    params = network.unflatten(weights)
    constants = "\n".join(
        f"{name.upper()} = {_array(np.asarray(params[group][leaf]))}"
        for group, leaves in (("embed", ("w", "b")), ("gru", ("wx", "wh", "b")),
                              ("pi_hat", ("w", "b")), ("y_hat", ("w", "b")))
        for name, leaf in ((f"{group}_{leaf}", leaf) for leaf in leaves))
    temporal = ("TA-LPG: progress (n/N), log_total (log N) and normalised_return are read"
                if network.temporally_aware else "LPG: the temporal inputs are ignored")
    return f'''"""A learned {network.kind.upper()} rule, exported by disco{origin}.

lpg(...) reads a rollout backwards and returns per step pi_hat (replaces the advantage in the
policy gradient: -pi_hat log pi(a|s)) and y_hat (the target of the agent's prediction vector
y(s), a distribution over {network.prediction_size} entries, learned by KL(y_hat || y(s)));
Oh et al. 2020.
{temporal}.
"""

{imports}

TEMPORALLY_AWARE = {network.temporally_aware}
{constants}


def _sigmoid(x):
    return 1.0 / (1.0 + xp.exp(-x))


def lpg(reward, discount, done, pi_taken, y, y_next, progress=0.0, log_total=0.0,
        normalised_return=0.0):
    """(pi_hat [T, B], y_hat [T, B, m]) of a rollout of T steps of B environments: reward,
    discount (gamma * (1 - terminated)), done (episode ended), pi_taken (pi(a_t|s_t)) are
    [T, B]; y and y_next (the predictions at s_t and s_t+1) are [T, B, m]."""
    reward, discount, done, pi_taken = (xp.asarray(v, dtype=xp.float32)
                                        for v in (reward, discount, done, pi_taken))

    def embed(v):
        return xp.maximum(xp.asarray(v, dtype=xp.float32) @ EMBED_W + EMBED_B, 0.0)

    features = [reward[..., None], discount[..., None], pi_taken[..., None], embed(y),
                embed(y_next)]
    if TEMPORALLY_AWARE:
        features += [xp.broadcast_to(xp.asarray(v, dtype=xp.float32), reward.shape)[..., None]
                     for v in (progress, log_total, normalised_return)]
    x = xp.concatenate(features, axis=-1)
    hidden = GRU_WH.shape[0]
    h = xp.zeros((x.shape[1], hidden), dtype=xp.float32)
    states = []
    for t in reversed(range(x.shape[0])):  # backwards; memory cleared after an episode ends
        h = h * (1.0 - done[t])[:, None]
        gates_x = x[t] @ GRU_WX + GRU_B
        gates_h = h @ GRU_WH
        update = _sigmoid(gates_x[:, :hidden] + gates_h[:, :hidden])
        reset = _sigmoid(gates_x[:, hidden:2 * hidden] + gates_h[:, hidden:2 * hidden])
        candidate = xp.tanh(gates_x[:, 2 * hidden:] + reset * gates_h[:, 2 * hidden:])
        h = update * h + (1.0 - update) * candidate
        states.append(h)
    hs = xp.stack(states[::-1])
    pi_hat = (hs @ PI_HAT_W + PI_HAT_B)[..., 0]
    logits = hs @ Y_HAT_W + Y_HAT_B
    logits = logits - xp.max(logits, axis=-1, keepdims=True)
    y_hat = xp.exp(logits) / xp.sum(xp.exp(logits), axis=-1, keepdims=True)
    return pi_hat, y_hat
'''
