"""Program identity: a canonical form and hash for text-level duplicates, and a functional
fingerprint for programs that compute the same thing however they are written.

The canonical hash catches renamings, reorderings and anything `simplify` removes; the
fingerprint also catches algebraic equivalences it does not know (`interp(g, m, 0.9)` versus
`0.1 * g + 0.9 * m`), by evaluating on fixed inputs. An optimizer's `rollout` (its updates
over a short training run of a fixed noisy quadratic) and `rollout_distance` tell programs
that differ by a constant no training could feel from those that differ.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any, Iterator, Mapping

import numpy as np

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program, Stmt
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OPTIMIZER, Slot

CANONICAL_NAME = "rule"
HASH_LENGTH = 16  # hex characters kept of a sha256 digest

FINGERPRINT_SEED = 1729
FINGERPRINT_SETS = 3  # input sets evaluated per fingerprint
FINGERPRINT_SHAPE = (2, 4)  # every input tensor: a matrix, so that `orth` is no vector's
FINGERPRINT_SIZE = math.prod(FINGERPRINT_SHAPE)
SIGNIFICANT_DIGITS = 6
ZERO_TOLERANCE = 1e-12  # smaller magnitudes are rounding noise and print as 0
ROLLOUT_STEPS = 200  # decay constants show over many steps, not in one
ROLLOUT_SHAPE = (4, 4)  # the quadratic's weights: a matrix, as for FINGERPRINT_SHAPE
ROLLOUT_SIZE = math.prod(ROLLOUT_SHAPE)
ROLLOUT_LR = 0.01
# Fixed per-set values of known scalar inputs (one per input set); other scalars are drawn.
SCALAR_VALUES: dict[str, tuple[float, ...]] = {
    "lr": (0.013, 0.1, 0.37),
    "step": (1.0, 7.0, 120.0),
    "progress": (0.13, 0.58, 0.91),
}


def canonical_form(program: Program, slot: Slot = OPTIMIZER) -> Program:
    """`program` simplified, named `rule`, taking the slot inputs it reads (in slot order)
    and then its state renamed `s0, s1, ...` (in its order, which fixes the outputs' order)."""
    simplified = simplify(program)
    read = simplified.used_names()
    inputs = tuple(p for p in slot.inputs if p in simplified.params and p in read)
    state_names = {s: f"s{i}" for i, s in enumerate(slot.state_names(simplified))}
    renamed = _rename(simplified, state_names)
    return simplify(renamed.replace(name=CANONICAL_NAME,
                                    params=inputs + tuple(state_names.values())))


def canonical_hash(program: Program, slot: Slot = OPTIMIZER) -> str:
    """Hex digest of the printed canonical form: equal for programs equal up to `simplify`,
    names and parameter order."""
    text = to_text(canonical_form(program, slot))
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def fingerprint(program: Program, slot: Slot = OPTIMIZER) -> str:
    """Hex digest of the outputs, rounded, on fixed inputs: equal for programs computing the
    same function at `slot`, whatever their text."""
    tokens = []
    with np.errstate(all="ignore"):
        for inputs in _fingerprint_inputs(program, slot):
            outputs = evaluate(program, inputs, np)
            tokens.append("|".join(",".join(_value_tokens(o)) for o in outputs))
    return hashlib.sha256(";".join(tokens).encode()).hexdigest()[:HASH_LENGTH]


def rollout_problem() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rollout's quadratic: loss sum(curvature * w**2) / 2, gradients curvature * w +
    noise[t]; (curvature, from 0.1 to 10; the first weights; the noise of each step), each
    step's arrays of ROLLOUT_SHAPE."""
    rng = np.random.default_rng((FINGERPRINT_SEED, 0))
    curvature = np.exp(rng.uniform(np.log(0.1), np.log(10.0), ROLLOUT_SIZE))
    w = rng.standard_normal(ROLLOUT_SIZE)
    noise = rng.standard_normal((ROLLOUT_STEPS, ROLLOUT_SIZE))
    return (curvature.reshape(ROLLOUT_SHAPE), w.reshape(ROLLOUT_SHAPE),
            noise.reshape(ROLLOUT_STEPS, *ROLLOUT_SHAPE))


def rollout(program: Program) -> np.ndarray | None:
    """An optimizer program's updates (ROLLOUT_STEPS x ROLLOUT_SHAPE) training a fixed noisy
    quadratic from fixed weights, state from zeros, at lr ROLLOUT_LR (the `step` and
    `progress` of a run of that length); None where a value turns non-finite."""
    curvature, w, noise = rollout_problem()
    state = [np.zeros(ROLLOUT_SHAPE) for _ in OPTIMIZER.state_names(program)]
    updates = np.empty((ROLLOUT_STEPS, *ROLLOUT_SHAPE))
    with np.errstate(all="ignore"):
        for t in range(ROLLOUT_STEPS):
            given = {"w": w, "g": curvature * w + noise[t], "lr": np.float64(ROLLOUT_LR),
                     "step": np.float64(t + 1), "progress": np.float64(t / ROLLOUT_STEPS)}
            inputs = {p: given[p] for p in program.params if p in given}
            inputs.update(zip(OPTIMIZER.state_names(program), state))
            update, *state = evaluate(program, inputs, np)
            updates[t] = np.broadcast_to(update, ROLLOUT_SHAPE)
            w = w - updates[t]
            if not np.all(np.isfinite(w)):
                return None
    return updates


def rollout_distance(a: np.ndarray, b: np.ndarray) -> float:
    """How far apart two rollouts are: the largest difference of one update, relative to the
    largest update of either (0: the same updates; 0.01: at most 1% of a step apart)."""
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
    return float(np.abs(a - b).max()) / scale if scale > 0 else 0.0


def nearest_rollout(trace: np.ndarray | None, rollouts: Mapping[int, np.ndarray],
                    within: float) -> tuple[int | None, float]:
    """The key of the rollout nearest `trace` if it is closer than `within` (ties: the
    smallest key), and its distance; (None, NaN) if none is or `trace` is None."""
    best, distance = None, math.nan
    if trace is not None:
        for key, other in rollouts.items():
            d = rollout_distance(trace, other)
            if d < within and (best is None or (d, key) < (distance, best)):
                best, distance = key, d
    return best, distance


def _rename(program: Program, names: dict[str, str]) -> Program:
    """`program` with every occurrence of each key of `names` replaced by its value."""
    body = tuple(Stmt(names.get(s.out, s.out), s.op,
                      tuple(names.get(a, a) if isinstance(a, str) else a for a in s.args))
                 for s in program.body)
    return program.replace(params=tuple(names.get(p, p) for p in program.params), body=body,
                           outputs=tuple(names.get(o, o) for o in program.outputs))


def _fingerprint_inputs(program: Program, slot: Slot) -> Iterator[dict[str, Any]]:
    """The fixed input sets: every slot input is drawn (so draws never depend on the program),
    then one normal vector per state variable, by position, never by name."""
    state = slot.state_names(program)
    for index in range(FINGERPRINT_SETS):
        rng = np.random.default_rng((FINGERPRINT_SEED, index))
        drawn = {name: _draw_input(rng, name, slot, index) for name in slot.inputs}
        states = [rng.standard_normal(FINGERPRINT_SIZE).reshape(FINGERPRINT_SHAPE)
                  for _ in state]
        inputs = {p: drawn[p] for p in program.params if p in drawn}
        inputs.update(zip(state, states))
        yield inputs


def _draw_input(rng: np.random.Generator, name: str, slot: Slot, index: int) -> Any:
    """One slot input: a known scalar's fixed value, another scalar in (0, 1), or a tensor of
    FINGERPRINT_SHAPE."""
    if name in SCALAR_VALUES:
        return np.float64(SCALAR_VALUES[name][index])
    if name in slot.scalar_inputs:
        return np.float64(rng.uniform(0.05, 0.95))
    return rng.standard_normal(FINGERPRINT_SIZE).reshape(FINGERPRINT_SHAPE)


def _value_tokens(output: Any) -> list[str]:
    """Each element rounded to SIGNIFICANT_DIGITS, as text; NaN and infinities as words."""
    values = np.broadcast_to(np.asarray(output, dtype=np.float64), FINGERPRINT_SHAPE)
    values = values.reshape(-1)
    tokens = []
    for value in values:
        if np.isnan(value):
            tokens.append("nan")
        elif np.isinf(value):
            tokens.append("inf" if value > 0 else "-inf")
        elif abs(value) < ZERO_TOLERANCE:
            tokens.append("0")
        else:
            tokens.append(f"{value:.{SIGNIFICANT_DIGITS - 1}e}")
    return tokens
