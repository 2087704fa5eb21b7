"""A screen for schedules counted in steps, cheap enough for every child.

The search gives every optimizer its learning-rate schedule (the `lr` a program reads is the
scheduled value) and its `progress` (step / horizon). A rule whose step size depends on the
step count itself carries a schedule of its own, one that suits the horizons it was trained
on and no others: Adam without bias correction (steps 3x too large in the first hundred
steps), a rule dividing v by the step (steps that grow as sqrt(t)); both won held out and
lost outside the repository (issue #18, docs/results.md). `step_schedule` trains a program on
unchanging gradient noise, without moving the weights, at two horizons ten times apart, and
compares its mean |update| at the same progress: a rule that reads only its gradients'
statistics and `progress` takes the same steps at both; one that counts steps does not. The
programs run through the compiled interpreter (dsl/interpreter.py), a generation's children
CHUNK at a time, both horizons in one pass: one compilation, kept in JAX's persistent cache.

Bias corrections that vanish within tens of steps (Adam's own, 1 - 0.9^t) pass: the earliest
window compared starts at step 30. What is not caught: a schedule in a state that grows
without the step (a running count kept as state, a max that keeps rising) moves both
horizons alike where the gradients are unchanging, as long as it grows slowly.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.interpreter import EncodedProgram, Encoding, apply_optimizer
from disco_rules.dsl.program import Program
from disco_rules.dsl.slots import OPTIMIZER
from disco_rules.dsl.stability import RowWise

HORIZONS: tuple[int, int] = (300, 3000)  # the flagship's levels span 75..4800 steps
WINDOWS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.45, 0.55), (0.9, 1.0))  # progress
TOLERANCE = 2.0  # the largest ratio of mean |update| between the horizons in a window
LR = 0.01
# each row one tensor's gradients: mean + sd * N(0, 1), at two scales, with and without a
# consistent direction
GRADIENTS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.5, 1.0), (0.0, 1e-3), (5e-4, 1e-3))
SHAPE = (8, 8)  # each row's tensor: a matrix, so that `orth` acts as on a weight matrix
SIZE = math.prod(SHAPE)  # entries per row
SEED = 0
CHUNK = 16  # programs a compiled call screens: one compilation serves any number of them
MIN_STATEMENTS = 32  # the encoding's size; longer programs take the next power of two


def step_schedule(program: Program,
                  gradients: Sequence[tuple[float, float]] = GRADIENTS) -> str | None:
    """None if optimizer-slot `program` takes steps of the same size, within TOLERANCE, at
    the same progress of both HORIZONS on each of `gradients` (mean, sd), else a one-line
    reason: the window, the gradients and the ratio, or that its updates stop being finite.
    ProgramError if it does not fit the slot."""
    return step_schedules([program], gradients)[0]


def step_schedules(programs: Sequence[Program],
                   gradients: Sequence[tuple[float, float]] = GRADIENTS) -> list[str | None]:
    """`step_schedule` of each of `programs`, all in compiled calls of CHUNK programs."""
    return [verdict(means, gradients) for means in mean_steps(programs, gradients)]


def mean_steps(programs: Sequence[Program],
               gradients: Sequence[tuple[float, float]] = GRADIENTS) -> np.ndarray:
    """Mean |update| [programs, HORIZONS, WINDOWS, rows] in each window of progress, over each
    horizon's steps of gradient noise (row r: mean + sd * N(0, 1), (mean, sd) =
    `gradients[r]`) at unmoving weights; NaN for a horizon where an output stops being finite.
    Both horizons see the same weights and the same noise, step for step. ProgramError for a
    program that does not fit the optimizer slot (the encoding checks it)."""
    if not programs:
        return np.zeros((0, len(HORIZONS), len(WINDOWS), len(gradients)))
    longest = max(len(p.body) for p in programs)
    encoding = Encoding(max_statements=max(MIN_STATEMENTS, 1 << (longest - 1).bit_length()))
    padding = -len(programs) % CHUNK  # runs no step: a chunk runs only its `count` first
    population = encoding.encode_population(list(programs) + [programs[0]] * padding)
    weights, noise = _noise(tuple(gradients))
    # on the CPU wherever the driver runs: thousands of tiny sequential steps, which a GPU
    # would run one kernel launch at a time
    with jax.default_device(jax.devices("cpu")[0]):
        means = [_screen(EncodedProgram(*(field[start:start + CHUNK] for field in population)),
                         np.int32(min(CHUNK, len(programs) - start)), weights, noise)
                 for start in range(0, len(programs), CHUNK)]
    return np.concatenate([np.asarray(m) for m in means])[:len(programs)]


def verdict(means: np.ndarray, gradients: Sequence[tuple[float, float]] = GRADIENTS
            ) -> str | None:
    """`step_schedule`'s verdict on one program's `mean_steps` [HORIZONS, WINDOWS, rows]."""
    short, long = means
    if np.isnan(short).any() or np.isnan(long).any():
        return (f"its update is not finite within {HORIZONS[1]} steps of unchanging "
                f"gradients: a state that grows without bound")
    with np.errstate(all="ignore"):
        ratio = np.where(short == long, 1.0, np.maximum(short, long) / np.minimum(short, long))
    window, row = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    if ratio[window, row] <= TOLERANCE:
        return None
    low, high = WINDOWS[window]
    mean, sd = gradients[row]
    return (f"a schedule counted in steps: at {low:g}-{high:g} of the way through training, "
            f"on unchanging gradients (mean {mean:g}, sd {sd:g}), its steps over "
            f"{HORIZONS[0]} steps are {short[window, row] / long[window, row]:.2g}x those "
            f"over {HORIZONS[1]} (a rule's only schedule is its lr)")


def reference_steps(program: Program, horizon: int,
                    gradients: Sequence[tuple[float, float]] = GRADIENTS) -> np.ndarray:
    """`mean_steps` of one program at one horizon, one step at a time with the reference
    evaluator (numpy, each row a separate tensor of SHAPE); NaN if an output stops being
    finite. What the compiled screen is checked (tests) and timed (bench/stationarity.py)
    against."""
    states = OPTIMIZER.state_names(program)
    weights, noise = _noise(tuple(gradients))
    state = {name: np.zeros_like(weights) for name in states}
    bounds = _bounds(horizon)
    sums = np.zeros((len(WINDOWS), len(gradients)))
    with np.errstate(all="ignore"):
        for step, gradient in enumerate(noise[:horizon], start=1):
            outputs = [np.asarray(out, np.float32) for out in evaluate(program, {
                "w": weights, "g": gradient, "lr": np.float32(LR), "step": np.float32(step),
                "progress": np.float32(step / horizon), **state}, _MATRIX_ROWS)]
            if not all(np.isfinite(out).all() for out in outputs):
                return np.full_like(sums, np.nan)
            state = dict(zip(states, outputs[1:]))
            for w, (start, end) in enumerate(bounds):
                if start < step <= end:
                    sums[w] += np.abs(outputs[0]).mean(axis=-1)
    return sums / (bounds[:, 1:] - bounds[:, :1])


_MATRIX_ROWS = RowWise(SHAPE)  # numpy for rows that are separate tensors of SHAPE


def _bounds(horizon: int) -> np.ndarray:
    """[WINDOWS, (start, end)]: each window's steps of a `horizon`-step run, start < t <= end."""
    return np.array([(int(low * horizon), int(high * horizon)) for low, high in WINDOWS])


@functools.lru_cache(maxsize=None)
def _noise(gradients: tuple[tuple[float, float], ...]) -> tuple[np.ndarray, np.ndarray]:
    """The weights [rows, SIZE] and each step's gradients [HORIZONS[-1], rows, SIZE]."""
    rng = np.random.default_rng(SEED)
    means = np.array([[m] for m, _ in gradients], np.float32)
    sds = np.array([[s] for _, s in gradients], np.float32)
    weights = rng.standard_normal((len(gradients), SIZE)).astype(np.float32)
    draws = rng.standard_normal((HORIZONS[-1], len(gradients), SIZE)).astype(np.float32)
    return weights, means + sds * draws


@jax.jit
def _screen(chunk: EncodedProgram, count: jax.Array, weights: jax.Array, noise: jax.Array
            ) -> jax.Array:
    """`mean_steps` of the first `count` programs of a chunk of encoded programs (NaN for the
    rest): each horizon's copy of the rows is a segment of one flat vector, so one pass over
    the longest horizon runs both."""
    rows = weights.shape[0]
    shapes = (SHAPE,) * (len(HORIZONS) * rows)
    horizons = jnp.asarray(HORIZONS, jnp.float32)
    horizon = jnp.repeat(horizons, rows * SIZE)  # each entry's horizon
    bounds = np.stack([_bounds(h) for h in HORIZONS])  # [horizons, windows, (start, end)]
    w = jnp.tile(weights.reshape(-1), len(HORIZONS))

    def one(program: EncodedProgram) -> jax.Array:
        def step(carry: tuple, inputs: tuple) -> tuple:
            state, sums, finite = carry
            t, g = inputs
            step_ = t.astype(jnp.float32)
            update, new = apply_optimizer(program, w, jnp.tile(g.reshape(-1), len(HORIZONS)),
                                          state, jnp.float32(LR), step_, step_ / horizon,
                                          shapes)
            outputs = jnp.concatenate([update[None], new]).reshape(
                1 + new.shape[0], len(HORIZONS), -1)
            active = step_ <= horizons
            finite = finite & (jnp.isfinite(outputs).all(axis=(0, 2)) | ~active)
            size = jnp.abs(update).reshape(len(HORIZONS), rows, SIZE).mean(axis=-1)
            inside = (t > bounds[..., 0]) & (t <= bounds[..., 1])  # [horizons, windows]
            sums = sums + jnp.where(inside[..., None], size[:, None, :], 0.0)
            return (jnp.where(step_ <= horizon, new, state), sums, finite), None

        state = jnp.zeros((OPTIMIZER.max_state, w.shape[0]), jnp.float32)
        sums = jnp.zeros((len(HORIZONS), len(WINDOWS), rows), jnp.float32)
        finite = jnp.ones(len(HORIZONS), bool)
        steps = jnp.arange(1, noise.shape[0] + 1)
        (_, sums, finite), _ = jax.lax.scan(step, (state, sums, finite), (steps, noise))
        counts = (bounds[..., 1] - bounds[..., 0])[..., None]
        return jnp.where(finite[:, None, None], sums / counts, jnp.nan)

    def screen(i: jax.Array, means: jax.Array) -> jax.Array:
        return means.at[i].set(one(EncodedProgram(*(field[i] for field in chunk))))

    empty = jnp.full((chunk.ops.shape[0], len(HORIZONS), len(WINDOWS), rows), jnp.nan)
    return jax.lax.fori_loop(0, count, screen, empty)
