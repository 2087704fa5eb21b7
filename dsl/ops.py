"""The op table: every operation of the program language, defined once.

Each op is one source template over an array namespace `xp` (numpy, jax.numpy or torch).
The same template gives the callable used by the evaluator and the interpreter and the code
written by export, so the three cannot drift apart. Every op maps arrays of one shape to an
array of that shape (reductions broadcast their result back). Domain errors give NaN or Inf,
never an exception.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Op:
    """One operation: `template` is Python source over `xp` and arguments `{0}`, `{1}`, ..."""

    name: str
    arity: int
    template: str
    infix: str | None = None  # printed as `a + b` when set, else as `name(a, b)`
    prefix: str | None = None  # printed as `-a` when set
    commutative: bool = False
    identity: float | None = None  # x op identity == x (and identity op x, if commutative)
    involution: bool = False  # op(op(x)) == x
    idempotent: bool = False  # unary: op(op(x)) == op(x); binary: op(x, x) == x
    even: bool = False  # unary: op(-x) == op(x), so op(abs(x)) == op(x) too
    nonnegative: bool = False  # unary: op(x) >= 0 or NaN (or -0), so abs(op(x)) == op(x)
    reduction: bool = False  # result is one number per array, broadcast back
    fn: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f"a{i}" for i in range(self.arity)]
        body = self.template.format(*names)
        # The template is this module's own source text, never user input.
        object.__setattr__(self, "fn", eval(f"lambda xp, {', '.join(names)}: {body}"))  # noqa: S307

    def source(self, xp: str, args: list[str]) -> str:
        """Source text applying this op to argument expressions, with `xp` the namespace name."""
        return self.template.replace("xp.", f"{xp}.").format(*args)


_OPS: tuple[Op, ...] = (
    # `x = y` or `x = 0.5`
    Op("copy", 1, "{0}"),
    # unary elementwise
    Op("neg", 1, "(-{0})", prefix="-", involution=True),
    Op("abs", 1, "xp.abs({0})", idempotent=True, even=True, nonnegative=True),
    Op("sign", 1, "xp.sign({0})", idempotent=True),
    Op("sqrt", 1, "xp.sqrt({0})", nonnegative=True),
    Op("square", 1, "({0} * {0})", even=True, nonnegative=True),
    Op("exp", 1, "xp.exp({0})", nonnegative=True),
    Op("log", 1, "xp.log({0})"),
    Op("sin", 1, "xp.sin({0})"),
    Op("cos", 1, "xp.cos({0})", even=True),
    Op("tan", 1, "xp.tan({0})"),
    Op("arcsin", 1, "xp.arcsin({0})"),
    Op("arccos", 1, "xp.arccos({0})"),
    Op("arctan", 1, "xp.arctan({0})"),
    Op("sinh", 1, "xp.sinh({0})"),
    Op("cosh", 1, "xp.cosh({0})", even=True, nonnegative=True),
    Op("tanh", 1, "xp.tanh({0})"),
    Op("arcsinh", 1, "xp.arcsinh({0})"),
    Op("arctanh", 1, "xp.arctanh({0})"),
    Op("reciprocal", 1, "(1.0 / {0})", involution=True),
    Op("relu", 1, "xp.where({0} > 0, {0}, xp.zeros_like({0}))", idempotent=True,
       nonnegative=True),
    # reductions over the whole array, broadcast back to its shape
    Op("norm", 1, "(xp.zeros_like({0}) + xp.sqrt(xp.sum({0} * {0})))", reduction=True,
       even=True, nonnegative=True),
    Op("mean", 1, "(xp.zeros_like({0}) + xp.mean({0}))", reduction=True, idempotent=True),
    Op("rms", 1, "(xp.zeros_like({0}) + xp.sqrt(xp.mean({0} * {0})))", reduction=True,
       even=True, nonnegative=True),
    # binary
    Op("add", 2, "({0} + {1})", infix="+", commutative=True, identity=0.0),
    Op("sub", 2, "({0} - {1})", infix="-", identity=0.0),
    Op("mul", 2, "({0} * {1})", infix="*", commutative=True, identity=1.0),
    Op("div", 2, "({0} / {1})", infix="/", identity=1.0),
    Op("pow", 2, "({0} ** {1})", infix="**", identity=1.0),
    Op("minimum", 2, "xp.minimum({0}, {1})", commutative=True, idempotent=True),
    Op("maximum", 2, "xp.maximum({0}, {1})", commutative=True, idempotent=True),
    Op("clip", 2, "xp.minimum(xp.maximum({0}, -xp.abs({1})), xp.abs({1}))"),
    # ternary
    Op("interp", 3, "((1.0 - {2}) * {0} + {2} * {1})"),
    Op("where", 3, "xp.where({0} > 0, {1}, {2})"),
)

OPS: dict[str, Op] = {op.name: op for op in _OPS}
OP_NAMES: tuple[str, ...] = tuple(op.name for op in _OPS)
OP_CODES: dict[str, int] = {name: code for code, name in enumerate(OP_NAMES)}
INFIX_OPS: dict[str, str] = {op.infix: op.name for op in _OPS if op.infix}
MAX_ARITY: int = max(op.arity for op in _OPS)
