"""Direct evaluation of a program, one op at a time: the reference the interpreter, the
simplifier and the fingerprint are checked against."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from disco_rules.dsl.ops import OPS
from disco_rules.dsl.program import Const, Program


def evaluate(program: Program, inputs: Mapping[str, Any], xp: Any = np) -> tuple[Any, ...]:
    """Outputs of `program` on `inputs` (one array per parameter), computed with namespace `xp`.

    Inputs broadcast to one common shape first, and a constant is an array of that shape, so
    reductions see the same values here as in the interpreter, and `orth` the same matrix:
    the evaluated arrays are one tensor each (a namespace `xp` that packs several tensors
    into one array brings its own `sum`, `mean` and `orth`).
    """
    values = evaluate_values(program, inputs, xp)
    return tuple(values[name] for name in program.outputs)


def evaluate_values(program: Program, inputs: Mapping[str, Any], xp: Any = np
                    ) -> dict[str, Any]:
    """Every value `evaluate` computes, by name: the parameters (broadcast to the common
    shape) and each statement's result; for checks that look inside a program."""
    missing = [p for p in program.params if p not in inputs]
    if missing:
        raise KeyError(f"{program.name} needs inputs {missing}")
    arrays = [xp.asarray(inputs[p]) for p in program.params]
    zeros = arrays[0] * 0
    for array in arrays[1:]:
        zeros = zeros + array * 0
    zeros = xp.zeros_like(zeros)
    values: dict[str, Any] = {p: zeros + a for p, a in zip(program.params, arrays)}
    for stmt in program.body:
        args = [zeros + a.value if isinstance(a, Const) else values[a] for a in stmt.args]
        values[stmt.out] = OPS[stmt.op].fn(xp, *args)
    return values
