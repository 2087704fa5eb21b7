"""Specification of `simplify`: smaller, canonical programs computing the same function."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Const, Program, Stmt
from disco_rules.dsl.simplify import simplify

EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("dsl", "programs").glob("*.py"))
PARAM_POOL = ("x", "y", "z", "u")
# Constants that trigger rewrites (identities, -1, interp ends) next to ordinary ones.
CONSTANT_POOL = (0.0, 1.0, -1.0, 2.0, 0.5, 0.9, -3.0)
# Inputs of every kind the evaluator meets, infinities and NaN included; no zeros, whose sign
# rewrites may change (`x + 0` is `+0` where `x` is `-0`). Each param gets them in its own
# order, so that every pair of kinds meets in some element.
SPECIAL_VALUES = np.array([np.inf, -np.inf, np.nan, 0.5, -2.0, 3.0, 1e-3, -0.7])
PROPERTY_SETTINGS = settings(max_examples=300, derandomize=True, deadline=None,
                             suppress_health_check=[HealthCheck.too_slow])


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """Random valid programs over every op, reading params, earlier results and constants."""
    params = PARAM_POOL[:draw(st.integers(1, len(PARAM_POOL)))]
    names = list(params)
    body = []
    for index in range(draw(st.integers(0, 12))):
        op = draw(st.sampled_from(OP_NAMES))
        args = []
        for _ in range(OPS[op].arity):
            if args and draw(st.integers(0, 3)) == 0:  # op(x, x, ...): where identities live
                args.append(args[-1])
            elif draw(st.integers(0, 3)) == 0:
                args.append(Const(draw(st.sampled_from(CONSTANT_POOL))))
            else:
                args.append(draw(st.sampled_from(names)))
        body.append(Stmt(f"t{index}", op, tuple(args)))
        names.append(f"t{index}")
    outputs = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
    return Program("rule", params, tuple(body), tuple(outputs))


def example(path: Path) -> Program:
    return parse(path.read_text())


def program(text: str) -> Program:
    """Parse a one-line shorthand, `def f(x); a = exp(x); return a`: `;` ends each line."""
    header, *lines = [part.strip() for part in text.split(";")]
    return parse("\n".join([header + ":"] + [f"    {line}" for line in lines]) + "\n")


def input_sets(params: tuple[str, ...]) -> list[dict[str, np.ndarray]]:
    """Three sets of random normal inputs, then two of SPECIAL_VALUES in per-param orders."""
    sets = []
    for seed in range(3):
        rng = np.random.default_rng(seed)
        sets.append({p: rng.standard_normal(8) for p in params})
    for stride in (1, 3):
        sets.append({p: np.roll(SPECIAL_VALUES, stride * i) for i, p in enumerate(params)})
    return sets


def assert_same_function(before: Program, after: Program) -> None:
    """Outputs agree on random and on non-finite inputs, NaN where NaN, the same infinities
    where infinite."""
    for inputs in input_sets(before.params):
        with np.errstate(all="ignore"):
            expected = evaluate(before, inputs)
            actual = evaluate(after, inputs)
        assert len(actual) == len(expected)
        for got, want in zip(actual, expected):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12, equal_nan=True)


def assert_simplifies_to(text: str, expected_text: str, shrinks: bool = True) -> None:
    """`text` simplifies to the same program as `expected_text`, one statement smaller at
    least when `shrinks`, and computes the same function."""
    before = program(text)
    after = simplify(before)
    assert after == simplify(program(expected_text))
    if shrinks:
        assert len(after.body) < len(before.body)
    assert_same_function(before, after)


# --- the function is kept -------------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_keep_their_function(path: Path) -> None:
    before = example(path)
    assert_same_function(before, simplify(before))


@PROPERTY_SETTINGS
@given(programs())
def test_random_programs_keep_their_function(prog: Program) -> None:
    assert_same_function(prog, simplify(prog))


# Elements of drawn inputs: the infinities, NaN and ordinary numbers (no zeros, see above).
input_values = st.one_of(st.sampled_from([np.inf, -np.inf, np.nan]),
                         st.floats(-10.0, 10.0).filter(lambda v: abs(v) > 1e-6))


@PROPERTY_SETTINGS
@given(programs(), st.data())
def test_random_programs_keep_their_function_on_drawn_inputs(prog: Program,
                                                             data: st.DataObject) -> None:
    inputs = {p: np.array(data.draw(st.lists(input_values, min_size=4, max_size=4)))
              for p in prog.params}
    with np.errstate(all="ignore"):
        expected = evaluate(prog, inputs)
        actual = evaluate(simplify(prog), inputs)
    for got, want in zip(actual, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12, equal_nan=True)


@PROPERTY_SETTINGS
@given(programs())
def test_simplify_never_grows_a_program(prog: Program) -> None:
    assert len(simplify(prog).body) <= len(prog.body)


# --- the interface is kept ------------------------------------------------------------------

@PROPERTY_SETTINGS
@given(programs())
def test_name_params_and_output_count_are_kept(prog: Program) -> None:
    simplified = simplify(prog)
    assert simplified.name == prog.name
    assert simplified.params == prog.params
    assert len(simplified.outputs) == len(prog.outputs)


def test_simplify_returns_a_new_program_and_leaves_its_argument_alone() -> None:
    before = program("def f(x, y); a = x * 1.0; b = a + 0.0; return b, y")
    snapshot = Program(before.name, before.params, before.body, before.outputs)
    after = simplify(before)
    assert before == snapshot
    assert after is not before
    assert after.body == ()


# --- canonical results ----------------------------------------------------------------------

@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_simplify_is_idempotent_on_examples(path: Path) -> None:
    once = simplify(example(path))
    assert simplify(once) == once


@PROPERTY_SETTINGS
@given(programs())
def test_simplify_is_idempotent(prog: Program) -> None:
    once = simplify(prog)
    assert simplify(once) == once


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_simplified_examples_print_and_parse_back(path: Path) -> None:
    simplified = simplify(example(path))
    assert parse(to_text(simplified)) == simplified


@PROPERTY_SETTINGS
@given(programs())
def test_simplified_programs_print_and_parse_back(prog: Program) -> None:
    simplified = simplify(prog)
    assert parse(to_text(simplified)) == simplified


def test_a_negative_constant_output_prints_and_parses_back() -> None:
    simplified = simplify(program("def f(x); a = 0.5 - 1.0; return a"))
    assert simplified.body == (Stmt("v0", "copy", (Const(-0.5),)),)
    assert parse(to_text(simplified)) == simplified


def test_statement_order_and_names_do_not_matter() -> None:
    first = program("def f(g, m, lr); m2 = 0.9 * m + g; u = lr * m2; return u, m2")
    second = program("def f(g, m, lr); a = g + m * 0.9; b = a * lr; return b, a")
    assert simplify(first) == simplify(second)


def test_statements_are_named_in_order_avoiding_param_names() -> None:
    simplified = simplify(program("def f(v0, v2); a = exp(v0); b = a * v2; c = b - a; return c"))
    assert [s.out for s in simplified.body] == ["v1", "v3", "v4"]


def test_commutative_args_take_a_canonical_order() -> None:
    assert simplify(program("def f(x, y); return x * y")) == simplify(
        program("def f(x, y); return y * x"))
    assert simplify(program("def f(x, y); return maximum(x, y)")) == simplify(
        program("def f(x, y); return maximum(y, x)"))


def test_non_commutative_args_keep_their_order() -> None:
    assert simplify(program("def f(x, y); return x - y")) != simplify(
        program("def f(x, y); return y - x"))


# --- copy propagation -----------------------------------------------------------------------

def test_copies_disappear() -> None:
    assert_simplifies_to("def f(x); a = x; b = a; c = exp(b); return c",
                         "def f(x); return exp(x)")


def test_a_copied_param_is_returned_directly() -> None:
    simplified = simplify(program("def f(x, m); n = m; return exp(x), n"))
    assert simplified.outputs[1] == "m"
    assert len(simplified.body) == 1


def test_a_returned_constant_stays_a_named_statement() -> None:
    simplified = simplify(program("def f(x); a = 0.5; return a, a"))
    assert simplified.body == (Stmt("v0", "copy", (Const(0.5),)),)
    assert simplified.outputs == ("v0", "v0")


# --- constant folding -----------------------------------------------------------------------

def test_constant_expressions_fold() -> None:
    assert_simplifies_to("def f(x); a = 2.0 * 3.0; b = exp(0.0); return a * x + b",
                         "def f(x); return 6.0 * x + 1.0")


def test_non_finite_results_are_not_folded() -> None:
    simplified = simplify(program("def f(x); a = log(0.0); return a * x"))
    assert "log" in [s.op for s in simplified.body]


def test_size_dependent_reductions_are_not_folded() -> None:
    simplified = simplify(program("def f(x); a = norm(2.0); return a * x"))
    assert "norm" in [s.op for s in simplified.body]


def test_orth_of_a_constant_is_not_folded_for_its_value_depends_on_the_shape() -> None:
    before = program("def f(x); a = orth(2.0); return a * x")
    simplified = simplify(before)
    assert [s.op for s in simplified.body] == ["orth", "mul"]
    values = {}
    for shape in [(3, 4), (4, 3), (5,), (2, 3, 6), ()]:
        x = np.random.default_rng(0).normal(size=shape)
        np.testing.assert_allclose(evaluate(simplified, {"x": x})[0],
                                   evaluate(before, {"x": x})[0], rtol=1e-12)
        values[shape] = float(np.ravel(evaluate(before, {"x": np.ones(shape)})[0])[0])
    # a constant 3 x 4 matrix is rank one: orth gives 0.70 * 2 / sqrt(12), a vector 0.70
    assert values[(3, 4)] == pytest.approx(values[(4, 3)])
    assert values[(3, 4)] == pytest.approx(values[(5,)] * 2 / math.sqrt(12), rel=1e-6)
    assert values[(5,)] == pytest.approx(values[()], rel=1e-6)


def test_a_program_with_orth_prints_and_parses_back() -> None:
    muon = example(Path(__file__).parent.parent / "dsl" / "programs" / "muon.py")
    assert "orth" in [s.op for s in muon.body]
    for form in (muon, simplify(muon)):
        assert parse(to_text(form)) == form
    assert_same_function(muon, simplify(muon))


@pytest.mark.parametrize("reduction, value", [("mean", -3.0), ("rms", 3.0)])
def test_size_independent_reductions_fold(reduction: str, value: float) -> None:
    assert_simplifies_to(f"def f(x); a = {reduction}(-3.0); return a * x",
                         f"def f(x); return {value} * x")


# --- algebraic identities -------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].identity is not None])
def test_identity_elements_vanish(name: str) -> None:
    identity = Const(OPS[name].identity)
    sides = [("x", identity)] + ([(identity, "x")] if OPS[name].commutative else [])
    for args in sides:
        before = Program("f", ("x",), (Stmt("a", name, args), Stmt("b", "exp", ("a",))),
                         ("b",))
        assert simplify(before) == simplify(program("def f(x); return exp(x)"))


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].involution])
def test_involutions_cancel(name: str) -> None:
    before = Program("f", ("x",), (Stmt("a", name, ("x",)), Stmt("b", name, ("a",))), ("b",))
    assert simplify(before).body == ()
    assert simplify(before).outputs == ("x",)


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].idempotent and OPS[n].arity == 1])
def test_idempotent_unary_ops_apply_once(name: str) -> None:
    before = Program("f", ("x",), (Stmt("a", name, ("x",)), Stmt("b", name, ("a",))), ("b",))
    assert simplify(before).body == (Stmt("v0", name, ("x",)),)
    assert_same_function(before, simplify(before))


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].idempotent and OPS[n].arity == 2])
def test_idempotent_binary_ops_of_one_value_vanish(name: str) -> None:
    before = Program("f", ("x",), (Stmt("a", name, ("x", "x")),), ("a",))
    assert simplify(before).body == ()


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].even])
@pytest.mark.parametrize("inner", ["neg", "abs"])
def test_even_ops_drop_a_sign_change_of_their_argument(name: str, inner: str) -> None:
    before = Program("f", ("x",), (Stmt("a", inner, ("x",)), Stmt("b", name, ("a",))), ("b",))
    assert simplify(before).body == (Stmt("v0", name, ("x",)),)
    assert_same_function(before, simplify(before))


@pytest.mark.parametrize("name", [n for n in OP_NAMES if OPS[n].nonnegative])
def test_abs_of_a_nonnegative_op_vanishes(name: str) -> None:
    before = Program("f", ("x",), (Stmt("a", name, ("x",)), Stmt("b", "abs", ("a",))), ("b",))
    assert simplify(before).body == (Stmt("v0", name, ("x",)),)
    assert_same_function(before, simplify(before))


@pytest.mark.parametrize("text, expected", [
    ("def f(x); return sqrt(square(x))", "def f(x); return abs(x)"),
    ("def f(x); return interp(x, 2.0, 0.0)", "def f(x); return x"),
    ("def f(y); return interp(2.0, y, 1.0)", "def f(y); return y"),
    ("def f(x); return interp(x, x, 0.9)", "def f(x); return x"),
    ("def f(x, y); a = -y; return x + a", "def f(x, y); return x - y"),
    ("def f(x, y); a = -y; return x - a", "def f(x, y); return x + y"),
    ("def f(x); return abs(-x)", "def f(x); return abs(x)"),
    ("def f(x); return square(abs(x))", "def f(x); return square(x)"),
    ("def f(x); return abs(square(x))", "def f(x); return square(x)"),
    ("def f(x, y); return where(1.0, x, y)", "def f(x, y); return x"),
    ("def f(x, y); return where(-1.0, x, y)", "def f(x, y); return y"),
    ("def f(c, x); return where(c, x, x)", "def f(c, x); return x"),
    ("def f(x); return maximum(x, x)", "def f(x); return x"),
    ("def f(x); return minimum(x, x)", "def f(x); return x"),
    ("def f(x); return maximum(x, -x)", "def f(x); return abs(x)"),
    ("def f(x); return maximum(-x, x)", "def f(x); return abs(x)"),
    ("def f(x); return clip(x, x)", "def f(x); return x"),
    ("def f(x); return clip(x, -x)", "def f(x); return x"),
    ("def f(x); return clip(x, abs(x))", "def f(x); return x"),
    ("def f(x, y); return clip(x, -y)", "def f(x, y); return clip(x, y)"),
    ("def f(x, y); return clip(x, abs(y))", "def f(x, y); return clip(x, y)"),
    ("def f(x, y); return clip(clip(x, y), y)", "def f(x, y); return clip(x, y)"),
    ("def f(x); return x * x ** 0.0", "def f(x); return x"),
    ("def f(x); return x * 1.0 ** x", "def f(x); return x"),
])
def test_specific_identities_shrink(text: str, expected: str) -> None:
    assert_simplifies_to(text, expected)


@pytest.mark.parametrize("text, expected", [
    ("def f(x); return x * -1.0", "def f(x); return -x"),
    ("def f(x); return -1.0 * x", "def f(x); return -x"),
    ("def f(x); return x / -1.0", "def f(x); return -x"),
    ("def f(x); return x * x", "def f(x); return square(x)"),
    ("def f(x); return x ** 2.0", "def f(x); return square(x)"),
    ("def f(x); return x ** -1.0", "def f(x); return reciprocal(x)"),
    ("def f(x); return 1.0 / x", "def f(x); return reciprocal(x)"),
    ("def f(x); return 0.0 - x", "def f(x); return -x"),
    ("def f(x); return clip(x, -2.0)", "def f(x); return clip(x, 2.0)"),
])
def test_specific_identities_pick_the_one_op_form(text: str, expected: str) -> None:
    assert_simplifies_to(text, expected, shrinks=False)
    assert program(text).body != simplify(program(text)).body


@pytest.mark.parametrize("text, inputs", [
    ("def f(x); return x * 0.0", {"x": np.inf}),
    ("def f(x); return x - x", {"x": np.inf}),
    ("def f(x); return x / x", {"x": 0.0}),
    ("def f(x, y); return interp(x, y, 0.0)", {"x": 1.0, "y": np.inf}),
    ("def f(x, y); return interp(x, y, 1.0)", {"x": np.inf, "y": 1.0}),
    ("def f(x); return interp(x, x, 1.5)", {"x": np.inf}),
    ("def f(x); return interp(x, x, 0.0)", {"x": np.inf}),
    ("def f(x); return interp(x, x, 1.0)", {"x": -np.inf}),
    ("def f(x, a); return interp(x, x, a)", {"x": np.inf, "a": 0.0}),
    ("def f(x, a); return interp(x, x, a)", {"x": 1.0, "a": np.nan}),
    ("def f(x); return maximum(x, 0.0)", {"x": np.nan}),
])
def test_rewrites_that_would_hide_a_nan_are_not_made(text: str, inputs: dict) -> None:
    before = program(text)
    simplified = simplify(before)
    assert [s.op for s in simplified.body] == [s.op for s in before.body]
    with np.errstate(all="ignore"):
        assert np.isnan(evaluate(simplified, inputs)[0])


# --- common subexpressions and dead statements ----------------------------------------------

def test_duplicate_statements_merge() -> None:
    assert_simplifies_to("def f(g); a = exp(g); b = exp(g); return a + b",
                         "def f(g); a = exp(g); return a + a")


def test_duplicates_up_to_commutation_merge() -> None:
    assert_simplifies_to("def f(g, lr); a = lr * g; b = g * lr; return a - b",
                         "def f(g, lr); a = g * lr; return a - a")


def test_duplicate_outputs_share_one_statement() -> None:
    simplified = simplify(program("def f(g); a = exp(g); b = exp(g); return a, b"))
    assert len(simplified.body) == 1
    assert simplified.outputs[0] == simplified.outputs[1]


def test_dead_statements_go() -> None:
    assert_simplifies_to("def f(g, lr); unused = exp(g); also = unused * g; return lr * g",
                         "def f(g, lr); return lr * g")


def test_unused_params_are_kept() -> None:
    simplified = simplify(program("def f(w, g, lr); return lr * g"))
    assert simplified.params == ("w", "g", "lr")


def test_a_negative_zero_is_not_folded_into_a_constant() -> None:
    before = program("def f(x); z = 0.0; a = -z; b = 1.0 / a; return b")
    simplified = simplify(before)
    assert "neg" in [s.op for s in simplified.body]
    assert_same_function(before, simplified)
