"""A numerical-robustness screen for optimizer-slot programs, cheap enough for every child.

A rule that divides by a value which can reach zero trains until the value gets there, then
explodes (the flagship winner's `sqrt(v) - 7.4e-9`). `instability` runs a program with the
reference evaluator, in float32 as training does, over a fixed battery (`standard_battery`):
gradients and initial weights whose entries are 0 and +-1e-30 .. 1e3, whole steps of exactly
zero gradient, the default learning rates, steps from 1 to 10^4; each call subtracts the
update from the weights. It names the statements at fault:

- every output (the update and each new state) must be finite, and below 1e30 in magnitude,
  at every call;
- a pole must never be met or straddled: the denominator of `/`, the argument of
  `reciprocal` and the base of `**` under a negative exponent must never be exactly zero nor
  take both signs (a continuous value that is negative here and positive there passes zero,
  where the result is arbitrarily large though every sample is finite), and the argument of
  `tan` must stay between two of its poles (pi/2 + k pi);
- domain limits without such a pole are left to the first rule: sqrt, log, arcsin, arccos
  and arctanh give NaN outside their domain (log and arctanh grow only logarithmically near
  its edge), overflow (exp, sinh, cosh, pow, square) gives Inf, both on the battery itself,
  and they matter only where they reach an output (a NaN that `where` or `relu` discards is
  discarded in training too).

Only statements the outputs depend on are checked; the battery's rows are separate tensors,
so reductions (norm, mean, rms) reduce each row as training reduces each parameter tensor, and
`orth` orthogonalises each row as a vector (a 1 x n matrix, as a bias is; a row of 19 entries
is no other matrix). Its matrix case has the same numerics (a division by the Frobenius norm
plus 1e-7, then a bounded polynomial: no pole, and no overflow from finite values), but a
matrix's `orth` can be zero, or change sign, where its argument is not and does not, which
vector rows never show: a program dividing by `orth` can pass here and meet the pole in
training.
A battery is samples, not a proof: a state that amplifies itself (v <- v^2 + ...) or a value
that keeps one sign at the battery's points but not between them (cos of a state) can pass
and still overflow on other gradients; training catches those (tests/test_stability.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from disco_rules.dsl.evaluate import evaluate_values
from disco_rules.dsl.ops import OPS
from disco_rules.dsl.program import Const, Operand, Program, Stmt
from disco_rules.dsl.slots import OPTIMIZER

DTYPE = np.float32  # what the training loops compute in
# 1e-20 squares to a float32 subnormal, 1e-30 to zero; at 3.7 sin and cos are negative and
# powers are not whole numbers (a negative base to them is NaN)
MAGNITUDES: tuple[float, ...] = (0.0, 1e-30, 1e-20, 1e-12, 1e-9, 1e-6, 1e-3, 1.0, 3.7, 1e3)
LEARNING_RATES: tuple[float, ...] = (1e-3, 1e-2, 1e-1)  # the default lr grid
STEPS: tuple[int, ...] = (1, 2, 3, 4, 5, 10, 30, 100, 1000, 10_000)  # progress: step / 10^4
# An output this large counts as overflowed: float32 ends at 3.4e38, one or two products away,
# and a state that gets here in ten calls grows too fast for a training run of thousands.
LARGEST = 1e30


@dataclass(frozen=True)
class Battery:
    """Inputs of a screening run: `gradients[t]` at call t (rows are separate tensors), the
    initial `weights` (each call subtracts its update, as training does), one learning rate
    per row, and the step number and progress of each call."""

    gradients: np.ndarray  # [calls, rows, n]
    weights: np.ndarray  # [rows, n]
    lr: np.ndarray  # [rows, 1]
    steps: np.ndarray  # [calls]
    progress: np.ndarray  # [calls]
    zero_rows: np.ndarray = field(init=False, repr=False)  # [calls, rows]: gradient all zero

    def __post_init__(self) -> None:
        object.__setattr__(self, "zero_rows", ~np.any(self.gradients != 0, axis=-1))


def standard_battery() -> Battery:
    """The fixed battery: the signed magnitudes in five gradient patterns, for each learning
    rate. (1) An all-zero first step (zero state, zero gradient: 0/0), then every magnitude of
    both signs at every step; (2) each entry walks through every magnitude, positive, then
    all-zero steps, so that states decay from each; (3) each entry walks through every
    magnitude, negative first and flipping sign at each step, with one all-zero step; (4) as
    (3) a thousand times smaller, positive first: a tensor whose largest entry is 1, so that
    reductions are not dominated by 1e3; (5) every magnitude of both signs and no exact zero,
    flipping sign at each step, so that a zero state first meets a gradient without zeros
    (`norm(where(g, v, c))` is then exactly 0). The weights start all negative, of both
    signs, all positive, small, and of both signs again, so that reductions of them take
    every sign too."""
    magnitudes = np.array(MAGNITUDES[1:])
    values = np.concatenate([[0.0], magnitudes, -magnitudes])
    size = np.abs(values)
    zeros = np.zeros_like(values)
    calls = len(STEPS)
    scale = 1.0 / size.max()
    nonzero = np.where(size == 0, 1.0, values)  # no exact zero: a zero state meets g alone
    patterns = [
        ([zeros] + [values] * (calls - 1), -size[::-1]),
        ([np.roll(size, t) if t < calls // 2 else zeros for t in range(calls)],
         np.roll(values, 5)),
        ([zeros if t == 3 else (-1.0) ** (t + 1) * np.roll(size, t) for t in range(calls)],
         size),
        ([zeros if t == 5 else (-1.0) ** t * np.roll(size, -t) * scale for t in range(calls)],
         values * scale),
        ([(-1.0) ** t * nonzero for t in range(calls)], -values),
    ]
    gradients = np.stack([np.stack(g) for _ in LEARNING_RATES for g, _ in patterns], axis=1)
    weights = np.stack([w for _ in LEARNING_RATES for _, w in patterns])
    lr = np.repeat(np.array(LEARNING_RATES), len(patterns))[:, None]
    steps = np.array(STEPS, dtype=float)
    return Battery(gradients.astype(DTYPE), weights.astype(DTYPE), lr.astype(DTYPE),
                   steps.astype(DTYPE), (steps / steps[-1]).astype(DTYPE))


BATTERY = standard_battery()


def instability(program: Program, battery: Battery = BATTERY) -> str | None:
    """None if optimizer-slot `program` is stable on `battery`, else a one-line reason naming
    the statements at fault: every pole met or straddled, in program order, else the first
    value that overflows or goes non-finite. ProgramError if it does not fit the slot."""
    OPTIMIZER.check(program)
    states = OPTIMIZER.state_names(program)
    defined = {stmt.out: stmt for stmt in program.body}
    live = _dependencies(program, program.outputs)
    poles = [_Pole(stmt) for stmt in program.body if stmt.op in _POLE_OPS and stmt.out in live]
    state = {name: np.zeros_like(battery.weights) for name in states}
    weights = battery.weights
    out_of_bounds = None
    with np.errstate(all="ignore"):
        for t, step in enumerate(battery.steps):
            inputs = {"w": weights, "g": battery.gradients[t], "lr": battery.lr,
                      "step": step, "progress": battery.progress[t], **state}
            values = evaluate_values(program, inputs, ROWS)
            for pole in poles:
                pole.see(values, battery, t)
            outputs = [values[name] for name in program.outputs]
            bad = next((i for i, out in enumerate(outputs) if not _bounded(out)), None)
            if bad is not None:
                what = "the update" if bad == 0 else f"the new {states[bad - 1]}"
                out_of_bounds = _out_of_bounds(program, values, program.outputs[bad], what,
                                               battery, t)
                break
            state = dict(zip(states, outputs[1:]))
            weights = weights - outputs[0]
    reasons = [r for r in (pole.reason(defined, battery) for pole in poles) if r is not None]
    return "; ".join(reasons) if reasons else out_of_bounds


class RowWise:
    """numpy over arrays whose rows (the last axis) are separate tensors: `sum` and `mean`
    reduce each row, and `orth` orthogonalises each row as a tensor of `shape` (None: a
    vector, the row as it is)."""

    def __init__(self, shape: tuple[int, ...] | None = None) -> None:
        self.shape = shape

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    @staticmethod
    def sum(x: np.ndarray) -> np.ndarray:
        return np.sum(x, axis=-1, keepdims=True)

    @staticmethod
    def mean(x: np.ndarray) -> np.ndarray:
        return np.mean(x, axis=-1, keepdims=True)

    def orth(self, x: np.ndarray) -> np.ndarray:
        shape = self.shape or x.shape[-1:]
        rows = [OPS["orth"].fn(np, row.reshape(shape)).reshape(-1)
                for row in x.reshape(-1, x.shape[-1])]
        return np.stack(rows).reshape(x.shape)


ROWS = RowWise()  # numpy for a battery whose rows are separate tensors (vectors)
_POLE_OPS = ("div", "reciprocal", "pow", "tan")


class _Pole:
    """What a statement with a pole has seen of the value that must avoid it, over the battery."""

    def __init__(self, stmt: Stmt) -> None:
        self.stmt = stmt
        self.low, self.high = np.inf, -np.inf
        self.zero_at: int | None = None  # the first call where it was exactly zero
        self.zero_context = ""  # ", gradient all zero" if it was zero only in such rows

    def see(self, values: dict[str, Any], battery: Battery, t: int) -> None:
        args = [_value(values, a) for a in self.stmt.args]
        if self.stmt.op == "tan":  # the index of the branch between two of its poles
            x = np.floor(args[0] / np.pi + 0.5)
        elif self.stmt.op == "pow":  # the base, where the exponent is negative
            x = np.where(args[1] < 0, args[0], np.nan)
        else:
            x = args[-1]
        x = np.broadcast_to(x, battery.weights.shape)
        seen = x[~np.isnan(x)]
        if seen.size:
            self.low, self.high = min(self.low, seen.min()), max(self.high, seen.max())
        if self.zero_at is None and self.stmt.op != "tan":
            rows = np.any(x == 0, axis=-1)
            if rows.any():
                self.zero_at = t
                self.zero_context = _context(battery, t, rows)

    def reason(self, defined: dict[str, Stmt], battery: Battery) -> str | None:
        stmt, use = self.stmt, _statement_text(self.stmt)
        if stmt.op == "tan":
            if self.low >= self.high:
                return None
            return f"{use} has an argument that crosses a pole of tan (pi/2 + k pi)"
        value = stmt.args[-1] if stmt.op != "pow" else stmt.args[0]
        named = _statement_text(defined[value]) if isinstance(value, str) and value in defined \
            else _operand_text(value)
        role = f"is the base of a negative power ({use})" if stmt.op == "pow" \
            else f"is a denominator ({use})"
        if self.zero_at is not None:
            step = battery.steps[self.zero_at]
            return (f"{named} {role} that is exactly 0 (step {step:g}{self.zero_context}), "
                    f"so it divides by zero")
        if self.low < 0 < self.high:
            return (f"{named} {role} that changes sign ({self.low:.2g} .. {self.high:.2g}), "
                    f"so it can reach zero")
        return None


def _value(values: dict[str, Any], operand: Operand) -> Any:
    return DTYPE(operand.value) if isinstance(operand, Const) else values[operand]


def _dependencies(program: Program, names: Sequence[str]) -> set[str]:
    """`names` and every name they are computed from."""
    needed = set(names)
    for stmt in reversed(program.body):
        if stmt.out in needed:
            needed.update(stmt.names())
    return needed


def _out_of_bounds(program: Program, values: dict[str, Any], output: str, what: str,
                   battery: Battery, t: int) -> str:
    """Why `output` is out of bounds (non-finite or past LARGEST) at call t: the first
    statement it depends on that is, so that its arguments are not."""
    needed = _dependencies(program, [output])
    origin = next((stmt for stmt in program.body
                   if stmt.out in needed and not _bounded(values[stmt.out])), None)
    if origin is None:  # an input returned as it is: the weights, moved by the updates
        return (f"{what} overflows at step {battery.steps[t]:g}: it is {output}, which "
                f"reaches {np.abs(values[output]).max():.2g} (past {LARGEST:g})")
    value = values[origin.out]
    context = _context(battery, t, ~(np.abs(value) < LARGEST).all(axis=-1))
    where = f"at step {battery.steps[t]:g}{context}: {_statement_text(origin)} gives"
    if np.isnan(value).any() or np.isinf(value).any():
        kind = "nan" if np.isnan(value).any() else "inf"
        return f"{what} is not finite {where} {kind} from finite values"
    return (f"{what} overflows {where} {np.abs(value).max():.2g} from smaller values "
            f"(past {LARGEST:g}, near float32's largest number)")


def _bounded(value: np.ndarray) -> bool:
    """Finite and below LARGEST in magnitude everywhere."""
    return bool((np.abs(value) < LARGEST).all())


def _context(battery: Battery, t: int, rows: np.ndarray) -> str:
    """", gradient all zero" when every row of `rows` (a mask) has an all-zero gradient at
    call t: the trouble comes from the zero gradient, not from a value in it."""
    return ", gradient all zero" if battery.zero_rows[t][rows].all() else ""


def _operand_text(operand: Operand, first: bool = True) -> str:
    """A name, or a constant to 3 significant digits (in parentheses if negative and not
    first)."""
    if not isinstance(operand, Const):
        return operand
    text = f"{operand.value:.3g}"
    return text if first or not text.startswith("-") else f"({text})"


def _statement_text(stmt: Stmt) -> str:
    """`out = expression`, constants to 3 significant digits."""
    op = OPS[stmt.op]
    args = [_operand_text(a, first=i == 0) for i, a in enumerate(stmt.args)]
    if op.infix:
        text = f"{args[0]} {op.infix} {args[1]}"
    elif op.prefix:
        text = f"{op.prefix}{args[0]}"
    elif op.name == "copy":
        text = args[0]
    else:
        text = f"{op.name}({', '.join(args)})"
    return f"{stmt.out} = {text}"
