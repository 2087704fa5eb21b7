"""Muon (Jordan et al. 2024) as optax ships it (`optax.contrib.muon`), configured as the
experiments here use it: Moonlight's RMS matching (`consistent_rms=0.2`, Liu et al. 2025), so
one learning rate serves the matrices it orthogonalises and the Adam it applies to every other
parameter; a kernel whose last axis is its output (HWIO, WIO) orthogonalised as a
(H*W*I) x O matrix, as Muon's authors do for CNNs; decoupled weight decay, times the learning
rate as in optax's AdamW, on both parts. `optimizer(rate, steps)` is the factory
`outside_check.py` takes."""

from __future__ import annotations

from typing import Any

import jax
import optax
from optax.contrib import MuonDimensionNumbers, muon


def dimension_numbers(params: Any) -> Any:
    """Muon's view of each parameter: a matrix as itself, a kernel of 3 or more axes with its
    output last as the matrix of its other axes x the last, a vector or scalar left to Adam."""
    def of(x: jax.Array) -> MuonDimensionNumbers | None:
        if x.ndim < 2:
            return None
        return MuonDimensionNumbers(reduction_axis=tuple(range(x.ndim - 1)),
                                    output_axis=x.ndim - 1)
    return jax.tree_util.tree_map(of, params)


def make_muon(rate: Any, weight_decay: Any = 0.01) -> optax.GradientTransformation:
    """Muon at a learning rate (or an optax schedule) and a decoupled weight decay."""
    return muon(rate, weight_decay=weight_decay, adam_weight_decay=weight_decay,
                consistent_rms=0.2, muon_weight_dimension_numbers=dimension_numbers)


def optimizer(learning_rate: Any, steps: int | None = None) -> optax.GradientTransformation:
    """The outside check's factory: Muon with AdamW's weight decay there, 1e-2."""
    return make_muon(learning_rate, 0.01)
