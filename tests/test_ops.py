"""The op table's algebraic flags are claims `simplify` relies on: each holds on the evaluator
for every kind of input, NaN and infinities included, up to rounding and the sign of zero."""

from __future__ import annotations

import numpy as np
import pytest

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.program import Const, Operand, Program, Stmt

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, 1e-300, -2.5, 0.5, 3.0, 1e300])
# x and y meet every pair of SPECIAL values once; the finite set keeps reductions from NaN.
X, Y = (grid.ravel() for grid in np.meshgrid(SPECIAL, SPECIAL))
FINITE = np.array([0.0, 1e-300, -2.5, 0.5, 3.0, -1e10, 7.0])
INPUTS = ({"x": X, "y": Y}, {"x": FINITE, "y": FINITE[::-1].copy()})


def apply(name: str, *args: Operand, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """`name(*args)` through the evaluator, args naming inputs or constants."""
    program = Program("f", ("x", "y"), (Stmt("r", name, tuple(args)),), ("r",))
    with np.errstate(all="ignore"):
        return evaluate(program, inputs)[0]


def assert_equal(got: np.ndarray, want: np.ndarray) -> None:
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0, equal_nan=True)


def composed(outer: str, inner: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
    program = Program("f", ("x", "y"), (Stmt("a", inner, ("x",)), Stmt("r", outer, ("a",))),
                      ("r",))
    with np.errstate(all="ignore"):
        return evaluate(program, inputs)[0]


@pytest.mark.parametrize("inputs", INPUTS, ids=("special", "finite"))
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].commutative])
def test_commutative_ops_ignore_argument_order(name: str, inputs: dict) -> None:
    assert_equal(apply(name, "x", "y", inputs=inputs), apply(name, "y", "x", inputs=inputs))


@pytest.mark.parametrize("inputs", INPUTS, ids=("special", "finite"))
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].identity is not None])
def test_identity_elements_leave_the_argument(name: str, inputs: dict) -> None:
    identity = Const(OPS[name].identity)
    assert_equal(apply(name, "x", identity, inputs=inputs), inputs["x"])
    if OPS[name].commutative:
        assert_equal(apply(name, identity, "x", inputs=inputs), inputs["x"])


@pytest.mark.parametrize("inputs", INPUTS, ids=("special", "finite"))
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].involution])
def test_involutions_undo_themselves(name: str, inputs: dict) -> None:
    assert_equal(composed(name, name, inputs), inputs["x"])


@pytest.mark.parametrize("inputs", INPUTS, ids=("special", "finite"))
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].idempotent])
def test_idempotent_ops_apply_once(name: str, inputs: dict) -> None:
    if OPS[name].arity == 1:
        assert_equal(composed(name, name, inputs), apply(name, "x", inputs=inputs))
    else:
        assert_equal(apply(name, "x", "x", inputs=inputs), inputs["x"])


@pytest.mark.parametrize("inputs", INPUTS, ids=("special", "finite"))
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].even])
def test_even_ops_ignore_the_sign_of_their_argument(name: str, inputs: dict) -> None:
    plain = apply(name, "x", inputs=inputs)
    assert_equal(composed(name, "neg", inputs), plain)
    assert_equal(composed(name, "abs", inputs), plain)


@pytest.mark.parametrize("inputs", INPUTS, ids=("special", "finite"))
@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].nonnegative])
def test_nonnegative_ops_are_never_below_zero(name: str, inputs: dict) -> None:
    result = apply(name, "x", inputs=inputs)
    assert np.all(np.isnan(result) | (result >= 0))
    assert_equal(composed("abs", name, inputs), result)


def test_flags_are_claimed_where_they_mean_something() -> None:
    for op in OPS.values():
        if op.even or op.nonnegative or op.involution:
            assert op.arity == 1, op.name
        if op.commutative or op.identity is not None:
            assert op.arity == 2, op.name
