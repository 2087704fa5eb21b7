"""The op table: every operation of the program language, defined once.

Each op is one source template over an array namespace `xp` (numpy, jax.numpy or torch).
The same template gives the callable used by the evaluator and the interpreter and the code
written by export, so the three cannot drift apart. Every op maps arrays of one shape to an
array of that shape (reductions broadcast their result back). Domain errors give NaN or Inf,
never an exception.

A matrix op (`orth`) is neither elementwise nor a reduction: its value depends on the tensor's
shape. Its template calls `xp.<name>`, a helper function whose source over `xp` is part of the
op: evaluation compiles it over the namespace at hand unless the namespace brings its own (one
that packs several tensors into one array must), and export writes it into the module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from types import ModuleType
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
    # matrix op: the source of the helper function `name` over `xp` that the template calls as
    # `xp.<name>`; its result depends on the array's shape (the array seen as a matrix)
    helper: str | None = None
    fn: Callable[..., Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [f"a{i}" for i in range(self.arity)]
        body = self.template.format(*names)
        # The template is this module's own source text, never user input.
        fn = eval(f"lambda xp, {', '.join(names)}: {body}")  # noqa: S307
        if self.matrix:
            fn = functools.partial(_with_helper, fn, self.name, self.helper)
        object.__setattr__(self, "fn", fn)

    @property
    def matrix(self) -> bool:
        """Whether this is a matrix op: its result depends on the array's shape."""
        return self.helper is not None

    @property
    def per_tensor(self) -> bool:
        """Whether an entry of the result depends on the whole array (a reduction or a matrix
        op), so that the array's shape and every entry matter, not just the entry's value."""
        return self.reduction or self.matrix

    def source(self, xp: str, args: list[str]) -> str:
        """Source text applying this op to argument expressions, with `xp` the namespace name;
        a matrix op calls its helper function by its bare name (see `helper_source`)."""
        template = self.template
        if self.matrix:
            template = template.replace(f"xp.{self.name}(", f"{self.name}(")
        return template.replace("xp.", f"{xp}.").format(*args)

    def helper_source(self, xp: str) -> str:
        """The definition of a matrix op's helper function over namespace name `xp`."""
        if not self.matrix:
            raise ValueError(f"{self.name} is no matrix op: it has no helper function")
        return self.helper.replace("xp.", f"{xp}.")


def _with_helper(fn: Callable[..., Any], name: str, source: str, xp: Any, *args: Any) -> Any:
    """`fn(xp, *args)` where `xp.<name>` is the namespace's own, or else the helper compiled
    over `xp` (numpy, jax.numpy and torch have none of their own)."""
    if isinstance(xp, ModuleType) or not hasattr(xp, name):
        xp = _Helped(xp, name, _compiled(xp, name, source))
    return fn(xp, *args)


class _Helped:
    """A namespace with one helper function added."""

    def __init__(self, xp: Any, name: str, function: Callable[..., Any]) -> None:
        self._xp = xp
        setattr(self, name, function)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._xp, name)


@functools.cache
def _compiled(xp: Any, name: str, source: str) -> Callable[..., Any]:
    """Helper `name` defined by `source` with `xp` bound to the namespace, once per namespace."""
    scope: dict[str, Any] = {"xp": xp}
    exec(source, scope)  # noqa: S102 - this module's own source text, never user input
    return scope[name]


# Muon's orthogonalisation (Jordan et al. 2024, as optax.contrib's Newton-Schulz with
# Frobenius preconditioning), scaled to an RMS of about 1 for every shape (Liu et al. 2025's
# consistent RMS without its 0.2): a vector gives about x / rms(x), a 0-d value about sign(x).
ORTH_SOURCE = '''def orth(x):
    """x as a matrix (its last axis the columns, the other axes flattened into rows; a 0-d x is
    1x1) orthogonalised by Muon's quintic Newton-Schulz iteration, times sqrt(max(rows, cols))
    so that its RMS is about 1 whatever the shape."""
    cols = x.shape[-1] if len(x.shape) else 1
    m = x.reshape(-1, cols)
    rows = m.shape[0]
    if rows > cols:
        m = m.T
    m = m / (xp.sqrt(xp.sum(m * m)) + 1e-7)
    for _ in range(5):
        a = m @ m.T
        m = 3.4445 * m + (-4.775 * a + 2.0315 * (a @ a)) @ m
    if rows > cols:
        m = m.T
    return m.reshape(x.shape) * max(rows, cols) ** 0.5
'''


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
    # matrix ops, last so that the codes above keep their meaning in stored encodings
    Op("orth", 1, "xp.orth({0})", helper=ORTH_SOURCE),
)

OPS: dict[str, Op] = {op.name: op for op in _OPS}
OP_NAMES: tuple[str, ...] = tuple(op.name for op in _OPS)
OP_CODES: dict[str, int] = {name: code for code, name in enumerate(OP_NAMES)}
INFIX_OPS: dict[str, str] = {op.infix: op.name for op in _OPS if op.infix}
MAX_ARITY: int = max(op.arity for op in _OPS)
