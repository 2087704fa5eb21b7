"""Program simplification: a rewrite to a smaller, canonical program computing the same function.

One round sweeps the body once: copy propagation, constant folding, algebraic identities
(driven by the op table's flags where it has them), canonical argument order for commutative
ops and common-subexpression elimination; then dead statements go, statements take a
canonical order and the names `v0, v1, ...`. Rounds repeat to a fixed point. Params and
outputs keep their number and order, since slot semantics depend on them.

Rewrites keep every output, NaN and Inf included, up to rounding and the sign of zero
(`x + 0` turns `-0` into `0`), with two more exceptions where a rewrite is more exact than
the original: `sqrt(square(x))` becomes `abs(x)` even where `x * x` over- or underflows, and
`reciprocal(reciprocal(x))` becomes `x` even where `1 / x` does. No rewrite assumes
`0 * x == 0` or `x - x == 0`, which would turn NaN into numbers where `x` is infinite. For
the same reason `interp(x, x, a)` becomes `x` only for a constant `a` strictly between 0 and
1: at `a = 0`, `a = 1` or outside, `(1 - a) * x + a * x` is NaN where `x` is infinite (and
a computed `a` may be anything, NaN included), so there it stays.
"""

from __future__ import annotations

import hashlib
import math
from typing import Callable

import numpy as np

from disco_rules.dsl.ops import OPS
from disco_rules.dsl.program import Const, Operand, Program, Stmt

OperandKey = tuple[object, ...]

# outer(inner(x)) == result(x) on every input, NaN and Inf included, except that
# sqrt(square(x)) is abs(x) also where x * x over- or underflows. Compositions that follow
# from the op table's flags (even ops of neg or abs, abs of nonnegative ops) are not listed.
_COMPOSITIONS: dict[tuple[str, str], str] = {
    ("sqrt", "square"): "abs",
}


def simplify(program: Program) -> Program:
    """The canonical simplified form of `program`: same params, name and number of outputs."""
    current = program
    while True:
        body, outputs = _simplify_round(current.params, current.body, current.outputs)
        simplified = current.replace(body=body, outputs=outputs)
        if simplified == current:
            return simplified
        current = simplified


def _simplify_round(params: tuple[str, ...], body: tuple[Stmt, ...], outputs: tuple[str, ...],
                    ) -> tuple[tuple[Stmt, ...], tuple[str, ...]]:
    """One sweep of rewrites and CSE, then dead-statement removal, canonical order and names."""
    keys: dict[str, OperandKey] = {p: (1, p) for p in params}
    substitute: dict[str, Operand] = {}  # statement result -> the operand that replaces it
    holders: dict[str, str] = {}  # statement result -> the statement that keeps its value
    definitions: dict[str, Stmt] = {}
    by_structure: dict[OperandKey, str] = {}
    for stmt in body:
        args = tuple(substitute.get(a, a) if isinstance(a, str) else a for a in stmt.args)
        stmt = _rewrite(Stmt(stmt.out, stmt.op, args), definitions, keys)
        if stmt.op == "copy" and isinstance(stmt.args[0], str):
            substitute[stmt.out] = stmt.args[0]
            continue
        key = _structure_key(stmt, keys)
        if key not in by_structure:
            by_structure[key] = stmt.out
            keys[stmt.out] = key
            definitions[stmt.out] = stmt
        holders[stmt.out] = by_structure[key]
        substitute[stmt.out] = stmt.args[0] if stmt.op == "copy" else holders[stmt.out]
    # An output must stay a name: a constant is returned through the statement holding it.
    outputs = tuple(value if isinstance(value := substitute.get(o, o), str) else holders[o]
                    for o in outputs)
    ordered = _canonical_order(outputs, definitions)
    return _canonical_names(params, ordered, outputs)


def _operand_key(operand: Operand, keys: dict[str, OperandKey]) -> OperandKey:
    """A sort key that depends only on what the operand computes, never on statement names."""
    if isinstance(operand, Const):
        return (0, operand.value, math.copysign(1.0, operand.value))
    return keys[operand]


def _structure_key(stmt: Stmt, keys: dict[str, OperandKey]) -> OperandKey:
    """A key equal for two statements exactly when they compute the same expression tree."""
    text = repr((stmt.op, tuple(_operand_key(a, keys) for a in stmt.args)))
    return (2, hashlib.sha256(text.encode()).hexdigest())


def _rewrite(stmt: Stmt, definitions: dict[str, Stmt], keys: dict[str, OperandKey]) -> Stmt:
    """Apply folding and identities until none applies; commutative args end up sorted."""
    while True:
        if OPS[stmt.op].commutative:
            stmt = Stmt(stmt.out, stmt.op,
                        tuple(sorted(stmt.args, key=lambda a: _operand_key(a, keys))))
        rewritten = _rewrite_once(stmt, definitions)
        if rewritten is None:
            return stmt
        stmt = rewritten


def _rewrite_once(stmt: Stmt, definitions: dict[str, Stmt]) -> Stmt | None:
    """One rewrite of `stmt` (same output name), or None if no rule applies."""
    op = OPS[stmt.op]
    args = stmt.args
    if op.name == "copy":
        return None

    def becomes(name: str, *new_args: Operand) -> Stmt:
        return Stmt(stmt.out, name, new_args)

    if all(isinstance(a, Const) for a in args):
        value = _fold(op.name, [a.value for a in args])  # type: ignore[union-attr]
        return None if value is None else becomes("copy", Const(value))
    inner = [definitions.get(a) if isinstance(a, str) else None for a in args]
    if op.arity == 1 and inner[0] is not None:
        (x,) = args
        nested = inner[0]
        if nested.op == op.name and op.involution:
            return becomes("copy", nested.args[0])
        if nested.op == op.name and op.idempotent:
            return becomes("copy", x)
        if op.even and nested.op in ("neg", "abs"):
            return becomes(op.name, nested.args[0])
        if op.name == "abs" and OPS[nested.op].nonnegative:
            return becomes("copy", x)
        result = _COMPOSITIONS.get((op.name, nested.op))
        if result is not None:
            return becomes(result, nested.args[0])
    if op.arity == 2:
        rule = _BINARY_RULES.get(op.name)
        rewritten = rule(args, inner) if rule is not None else None
        if rewritten is not None:
            return becomes(str(rewritten[0]), *rewritten[1:])
        if op.identity is not None:
            identity = Const(op.identity)
            if args[1] == identity:
                return becomes("copy", args[0])
            if op.commutative and args[0] == identity:
                return becomes("copy", args[1])
        if op.idempotent and args[0] == args[1]:
            return becomes("copy", args[0])
    if op.name == "interp":
        # (1 - a) * x + a * y: a vanishing term 0 * y is NaN where y is infinite, so it only
        # goes when y is a constant; interp(x, x, a) is x, even at +-Inf, when 0 < a < 1.
        x, y, a = args
        if a == Const(0.0) and isinstance(y, Const):
            return becomes("copy", x)
        if a == Const(1.0) and isinstance(x, Const):
            return becomes("copy", y)
        if x == y and isinstance(a, Const) and 0.0 < a.value < 1.0:
            return becomes("copy", x)
    if op.name == "where":
        condition, x, y = args
        if x == y:
            return becomes("copy", x)
        if isinstance(condition, Const):
            return becomes("copy", x if condition.value > 0 else y)
    return None


# A binary rule sees the args and their defining statements; it returns (op, *args) or None.
Replacement = tuple[Operand, ...]
BinaryRule = Callable[[tuple[Operand, ...], list[Stmt | None]], Replacement | None]


def _add_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """x + (-y) -> x - y."""
    for side in (0, 1):
        nested = inner[side]
        if nested is not None and nested.op == "neg":
            return ("sub", args[1 - side], nested.args[0])
    return None


def _sub_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """x - (-y) -> x + y; 0 - x -> -x."""
    nested = inner[1]
    if nested is not None and nested.op == "neg":
        return ("add", args[0], nested.args[0])
    if args[0] == Const(0.0):
        return ("neg", args[1])
    return None


def _mul_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """x * -1 -> -x; x * x -> square(x)."""
    for side in (0, 1):
        if args[side] == Const(-1.0):
            return ("neg", args[1 - side])
    if args[0] == args[1]:
        return ("square", args[0])
    return None


def _div_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """x / -1 -> -x; 1 / x -> reciprocal(x)."""
    if args[1] == Const(-1.0):
        return ("neg", args[0])
    if args[0] == Const(1.0):
        return ("reciprocal", args[1])
    return None


def _pow_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """x ** 2 -> square(x); x ** -1 -> reciprocal(x); x ** 0 and 1 ** x -> 1, as IEEE `pow`
    has it even for NaN and infinite x (in numpy, jax and torch alike)."""
    if args[1] == Const(2.0):
        return ("square", args[0])
    if args[1] == Const(-1.0):
        return ("reciprocal", args[0])
    if args[1] == Const(0.0) or args[0] == Const(1.0):
        return ("copy", Const(1.0))
    return None


def _maximum_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """maximum(x, -x) -> abs(x)."""
    for side in (0, 1):
        nested = inner[side]
        if nested is not None and nested.op == "neg" and nested.args[0] == args[1 - side]:
            return ("abs", args[1 - side])
    return None


def _clip_rule(args: tuple[Operand, ...], inner: list[Stmt | None]) -> Replacement | None:
    """The bound's sign never matters: clip(x, -y) and clip(x, abs(y)) -> clip(x, y), and a
    negative constant bound turns positive; clip(x, x) -> x; clip(clip(x, y), y) -> clip(x, y)."""
    x, bound = args
    nested = inner[1]
    if nested is not None and nested.op in ("neg", "abs"):
        return ("clip", x, nested.args[0])
    if isinstance(bound, Const) and bound.value < 0:
        return ("clip", x, Const(-bound.value))
    if x == bound or inner[0] is not None and inner[0].op == "clip" \
            and inner[0].args[1] == bound:
        return ("copy", x)
    return None


_BINARY_RULES: dict[str, BinaryRule] = {
    "add": _add_rule, "sub": _sub_rule, "mul": _mul_rule, "div": _div_rule, "pow": _pow_rule,
    "maximum": _maximum_rule, "clip": _clip_rule,
}


def _fold(op_name: str, values: list[float]) -> float | None:
    """`op(*values)` in float64 if finite and, for a reduction, independent of array size;
    never for a matrix op, whose value on a constant tensor depends on the tensor's shape.

    A result of -0.0 is not folded: a constant operand is added to an array of zeros when
    evaluated, which turns -0.0 into 0.0 (and `1 / x` from -inf into inf)."""
    if OPS[op_name].matrix:
        return None
    fn = OPS[op_name].fn
    with np.errstate(all="ignore"):
        results = [fn(np, *[np.full(size, v) for v in values])[0] for size in (1, 2)]
    value = float(results[0])
    if not math.isfinite(value) or math.copysign(1.0, value) < 0 and value == 0:
        return None
    if OPS[op_name].reduction and not math.isclose(value, float(results[1]), rel_tol=1e-12):
        return None
    return value


def _canonical_order(outputs: tuple[str, ...], definitions: dict[str, Stmt]) -> list[Stmt]:
    """Live statements in depth-first post-order from the outputs, args visited in order."""
    ordered: list[Stmt] = []
    visited: set[str] = set()
    for output in outputs:
        stack: list[tuple[str, bool]] = [(output, False)]
        while stack:
            name, expanded = stack.pop()
            if name in visited or name not in definitions:
                continue
            if expanded:
                visited.add(name)
                ordered.append(definitions[name])
                continue
            stack.append((name, True))
            stack.extend((a, False) for a in reversed(definitions[name].args)
                         if isinstance(a, str))
    return ordered


def _canonical_names(params: tuple[str, ...], ordered: list[Stmt], outputs: tuple[str, ...],
                     ) -> tuple[tuple[Stmt, ...], tuple[str, ...]]:
    """Rename statement results `v0, v1, ...` in order, skipping names taken by params."""
    taken = set(params)
    fresh = (f"v{i}" for i in range(len(ordered) + len(params)) if f"v{i}" not in taken)
    names = {stmt.out: next(fresh) for stmt in ordered}
    body = tuple(
        Stmt(names[s.out], s.op, tuple(names.get(a, a) if isinstance(a, str) else a
                                       for a in s.args))
        for s in ordered)
    return body, tuple(names.get(o, o) for o in outputs)
