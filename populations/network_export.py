"""A drift network as a self-contained Python module: its weights embedded, its features and
forward pass written out, importable by any PPO with nothing of disco installed."""

from __future__ import annotations

import numpy as np

from populations.drift_network import DriftNetwork

NETWORK_FORMATS = ("jax", "numpy")
_IMPORTS = {"jax": "import jax.numpy as xp", "numpy": "import numpy as xp"}


def _array(values: np.ndarray) -> str:
    """A float32 array as source: each value's shortest repr that reads back to it exactly."""
    flat = ", ".join(repr(float(v)) for v in np.asarray(values, np.float32).ravel())
    return f"xp.asarray([{flat}], dtype=xp.float32).reshape({tuple(values.shape)!r})"


def export_network(network: DriftNetwork, weights: np.ndarray, fmt: str,
                   origin: str = "") -> str:
    """Source of a module defining `drift(ratio, advantage, progress)` (and LPO's objective
    with it) for `weights` of `network`, in format `fmt` (one of NETWORK_FORMATS)."""
    if fmt not in NETWORK_FORMATS:
        raise ValueError(f"a network exports as {' or '.join(NETWORK_FORMATS)}, not {fmt!r}")
    weights = np.asarray(weights, np.float32)
    if weights.shape != (network.num_params,):
        raise ValueError(f"a {network.kind} network of hidden size {network.hidden} has "
                         f"{network.num_params} weights, got {weights.shape}")
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

{_IMPORTS[fmt]}

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
