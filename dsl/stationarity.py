"""A screen for schedules counted in steps, cheap enough for every child.

The search gives every optimizer its learning-rate schedule (the `lr` a program reads is the
scheduled value) and its `progress` (step / horizon). A rule whose step size depends on the
step count itself carries a schedule of its own, one that suits the horizons it was trained
on and no others: Adam without bias correction (steps 3x too large in the first hundred
steps), a rule dividing v by the step (steps that grow as sqrt(t)); both won held out and
lost outside the repository (issue #18, docs/results.md). `step_schedule` trains a program on
unchanging gradient noise, without moving the weights, at two horizons ten times apart, and
compares its mean |update| at the same progress: a rule that reads only its gradients'
statistics and `progress` takes the same steps at both; one that counts steps does not.

Bias corrections that vanish within tens of steps (Adam's own, 1 - 0.9^t) pass: the earliest
window compared starts at step 30. What is not caught: a schedule in a state that grows
without the step (a running count kept as state, a max that keeps rising) moves both
horizons alike where the gradients are unchanging, as long as it grows slowly.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from disco_rules.dsl.evaluate import evaluate_values
from disco_rules.dsl.program import Program
from disco_rules.dsl.slots import OPTIMIZER
from disco_rules.dsl.stability import ROWS

HORIZONS: tuple[int, int] = (300, 3000)  # the flagship's levels span 75..4800 steps
WINDOWS: tuple[tuple[float, float], ...] = ((0.1, 0.2), (0.45, 0.55), (0.9, 1.0))  # progress
TOLERANCE = 2.0  # the largest ratio of mean |update| between the horizons in a window
LR = 0.01
# each row one tensor's gradients: mean + sd * N(0, 1), at two scales, with and without a
# consistent direction
GRADIENTS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (0.5, 1.0), (0.0, 1e-3), (5e-4, 1e-3))
SIZE = 64  # entries per row
SEED = 0


def step_schedule(program: Program,
                  gradients: Sequence[tuple[float, float]] = GRADIENTS) -> str | None:
    """None if optimizer-slot `program` takes steps of the same size, within TOLERANCE, at
    the same progress of both HORIZONS on each of `gradients` (mean, sd), else a one-line
    reason: the window, the gradients and the ratio, or that its updates stop being finite.
    ProgramError if it does not fit the slot."""
    OPTIMIZER.check(program)
    short, long = (mean_steps(program, horizon, gradients) for horizon in HORIZONS)
    if short is None or long is None:
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


def mean_steps(program: Program, horizon: int,
               gradients: Sequence[tuple[float, float]] = GRADIENTS) -> np.ndarray | None:
    """Mean |update| in each of WINDOWS, [windows, rows], over `horizon` steps of gradient
    noise (row r: mean + sd * N(0, 1), (mean, sd) = `gradients[r]`) at unmoving weights;
    None if an output stops being finite."""
    states = OPTIMIZER.state_names(program)
    rng = np.random.default_rng(SEED)
    means = np.array([[m] for m, _ in gradients], np.float32)
    sds = np.array([[s] for _, s in gradients], np.float32)
    weights = rng.standard_normal((len(gradients), SIZE)).astype(np.float32)
    state = {name: np.zeros_like(weights) for name in states}
    bounds = [(int(low * horizon), int(high * horizon)) for low, high in WINDOWS]
    sums = np.zeros((len(WINDOWS), len(gradients)))
    with np.errstate(all="ignore"):
        for step in range(1, horizon + 1):
            noisy = means + sds * rng.standard_normal(weights.shape).astype(np.float32)
            inputs = {"w": weights, "g": noisy, "lr": np.float32(LR),
                      "step": np.float32(step), "progress": np.float32(step / horizon),
                      **state}
            values = evaluate_values(program, inputs, ROWS)
            outputs = [np.asarray(values[name], np.float32) for name in program.outputs]
            if not all(np.isfinite(out).all() for out in outputs):
                return None
            state = dict(zip(states, outputs[1:]))
            for w, (start, end) in enumerate(bounds):
                if start < step <= end:
                    sums[w] += np.abs(outputs[0]).mean(axis=-1)
    return sums / np.array([[end - start] for start, end in bounds])
