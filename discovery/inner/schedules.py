"""Learning-rate schedules of the inner loop: the lr an optimizer (a program or an optax
baseline) uses at each update is the tuned peak lr times a factor of the update's count.

One form covers every schedule, optax's `warmup_cosine_decay_schedule` with initial value 0
and exponent 1: a linear warm-up from 0 over `warmup` of the horizon, then a cosine decay to
`final` times the peak at the end of the horizon. `constant` is (0, 1), `cosine` (0, final),
`warmup_cosine` (warmup, final). The two fractions are floats, so a compiled training loop
takes them as traced arguments and one compilation serves a grid of schedules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Sequence

import numpy as np

if TYPE_CHECKING:  # the config reads NAMES and `named` without loading JAX
    import jax
    from jax.typing import ArrayLike

NAMES = ("constant", "cosine", "warmup_cosine")  # the schedules a config can name


class Schedule(NamedTuple):
    """A schedule by name and its two fractions (see the module's docstring)."""

    name: str
    warmup: float = 0.0  # fraction of the horizon spent warming up linearly from 0
    final: float = 1.0  # the factor reached at the end of the horizon


CONSTANT = Schedule("constant")


def suffix(name: str | None, separator: str = " ") -> str:
    """How an lr's schedule is written after it: `separator` and its name, or nothing for a
    constant lr (the default) or an unrecorded schedule (None)."""
    return "" if name in (None, CONSTANT.name) else f"{separator}{name}"


def named(name: str, warmup: float, final: float) -> Schedule:
    """The schedule `name` of NAMES with a config's warm-up and final fractions (constant
    ignores both, cosine the warm-up); ValueError for another name."""
    if name == "constant":
        return CONSTANT
    if name == "cosine":
        return Schedule("cosine", 0.0, final)
    if name == "warmup_cosine":
        return Schedule("warmup_cosine", warmup, final)
    raise ValueError(f"unknown schedule {name!r}; valid schedules: {', '.join(NAMES)}")


def factor(count: ArrayLike, horizon: int, warmup: ArrayLike, final: ArrayLike) -> jax.Array:
    """The peak lr's multiplier at update `count` (0 for the first) of `horizon` updates, as
    optax.warmup_cosine_decay_schedule(0, 1, warmup * horizon, horizon, final) computes it;
    `warmup` and `final` may be traced."""
    import jax.numpy as jnp

    count = jnp.asarray(count, jnp.float32)
    warmup_steps = jnp.asarray(warmup, jnp.float32) * horizon
    decay_steps = jnp.maximum(horizon - warmup_steps, 1.0)
    ramp = count / jnp.maximum(warmup_steps, 1e-6)
    decayed = jnp.clip(count - warmup_steps, 0.0, decay_steps)
    cosine = final + (1.0 - final) * 0.5 * (1.0 + jnp.cos(jnp.pi * decayed / decay_steps))
    return jnp.where(count < warmup_steps, ramp, cosine)


class Point(NamedTuple):
    """Points of the inner loop's hyperparameter grid: peak lr and schedule fractions, each
    an array [K] (one entry per point) or a scalar (one point)."""

    lr: Any
    warmup: Any
    final: Any

    def lr_at(self, horizon: int) -> Callable[[ArrayLike], jax.Array]:
        """This point's lr as a function of the update count (an optax schedule)."""
        return lambda count: self.lr * factor(count, horizon, self.warmup, self.final)


def grid(lrs: Sequence[float], schedules: Sequence[Schedule] = (CONSTANT,)) -> Point:
    """Every lr under every schedule, lr-major (point k is lr k // len(schedules) under
    schedule k % len(schedules)), as float32 arrays [len(lrs) * len(schedules)]; with one
    schedule point k is lr k."""
    lr, index = (a.ravel() for a in np.meshgrid(np.asarray(lrs, np.float32),
                                                 np.arange(len(schedules)), indexing="ij"))
    return Point(lr, np.asarray([schedules[i].warmup for i in index], np.float32),
                 np.asarray([schedules[i].final for i in index], np.float32))


def schedule_of(k: int, schedules: Sequence[Schedule]) -> Schedule:
    """The schedule of point k of `grid(lrs, schedules)`."""
    return schedules[k % len(schedules)]


def lr_of(k: int, lrs: Sequence[float], schedules: Sequence[Schedule]) -> float:
    """The lr of point k of `grid(lrs, schedules)`, as given (not rounded to float32)."""
    return lrs[k // len(schedules)]
