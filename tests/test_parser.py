"""The language: what parses, what it means, and what is rejected with line and column."""

from pathlib import Path

import numpy as np
import pytest

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.export import numpy_module
from disco_rules.dsl.parser import ParseError, parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Const, Program, ProgramError, Stmt
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER

EXAMPLES = sorted((Path(__file__).parent.parent / "dsl" / "programs").glob("*.py"))
OBJECTIVE_EXAMPLES = ("dpo", "ppo_clip")  # the other examples fill the optimizer slot

LION = """
def lion(w, g, m, lr):
    update = sign(interp(g, m, 0.9))
    m = interp(g, m, 0.99)
    update = (update + 0.01 * w) * lr
    return update, m
"""


def test_lion_parses_to_single_op_statements_in_ssa_form():
    program = parse(LION)
    assert program.name == "lion"
    assert program.params == ("w", "g", "m", "lr")
    outs = [s.out for s in program.body]
    assert len(outs) == len(set(outs)), "every name is assigned once"
    assert all(len(s.args) <= 3 for s in program.body)
    assert program.body[0] == Stmt("t0", "interp", ("g", "m", Const(0.9)))
    # the reassigned `m` and `update` got fresh names, and the return reads the latest ones
    assert program.outputs == ("update_1", "m_1")


def test_lion_computes_what_the_paper_says():
    rng = np.random.default_rng(0)
    w, g, m = rng.normal(size=(3, 10))
    update, new_m = evaluate(parse(LION), {"w": w, "g": g, "m": m, "lr": 0.1})
    np.testing.assert_allclose(update, (np.sign(0.1 * g + 0.9 * m) + 0.01 * w) * 0.1)
    np.testing.assert_allclose(new_m, 0.01 * g + 0.99 * m)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_printing_parses_back_to_the_same_program(path):
    program = parse(path.read_text())
    assert parse(to_text(program)) == program
    (OBJECTIVE if path.stem in OBJECTIVE_EXAMPLES else OPTIMIZER).check(program)


def test_negative_constants_and_double_negation_round_trip():
    program = parse("def f(x):\n    y = -(-0.5) * x ** -2\n    z = - -x\n    return z, y, 3\n")
    assert parse(to_text(program)) == program
    out = evaluate(program, {"x": np.array([2.0])})
    np.testing.assert_allclose(out[0], [2.0])
    np.testing.assert_allclose(out[1], [0.5 * 2.0**-2])
    np.testing.assert_allclose(out[2], [3.0])


def test_a_copied_negative_constant_round_trips():
    program = parse("def f(x):\n    y = -0.5\n    z = -(-0.5)\n    return y, z\n")
    assert program.body[0] == Stmt("y", "copy", (Const(-0.5),))
    assert program.body[1] == Stmt("z", "neg", (Const(-0.5),))
    assert parse(to_text(program)) == program
    negated = Program("f", ("x",), (Stmt("y", "neg", (Const(0.5),)),), ("y",))
    assert parse(to_text(negated)) == negated


def test_infix_operators_follow_python_precedence():
    program = parse("def f(a, b):\n    y = a + b * a ** 2 - b / a\n    return y\n")
    a, b = np.array([1.5, -2.0]), np.array([0.5, 3.0])
    np.testing.assert_allclose(evaluate(program, {"a": a, "b": b})[0], a + b * a**2 - b / a)


@pytest.mark.parametrize("text, message, line, column", [
    ("import os\n", "exactly one", 1, 1),
    ("def f(x):\n    y = x.foo\n    return y\n", "Attribute", 2, 9),
    ("def f(x):\n    return y\n", "'y' is used before", 2, 12),
    ("def f(x):\n    for i in x:\n        pass\n    return x\n", "For statements", 2, 5),
    ("def f(x):\n    y = foo(x)\n    return y\n", "unknown function 'foo'", 2, 9),
    ("def f(x):\n    y = sign(x, k=1)\n    return y\n", "keyword", 2, 9),
    ("def f(x):\n    y = sign(x, x)\n    return y\n", "takes 1 arguments", 2, 9),
    ("def f(x):\n    y = 1e999\n    return y\n", "not finite", 2, 9),
    ("def f(x):\n    y = lambda: 1\n    return y\n", "Lambda", 2, 9),
    ("def f(x):\n    y = x if x else x\n    return y\n", "IfExp", 2, 9),
    ("def f(x):\n    y = 'a'\n    return y\n", "not a real number", 2, 9),
    ("def f(x):\n    y = True\n    return y\n", "not a real number", 2, 9),
    ("def f(x):\n    y = x % 2\n    return y\n", "Mod", 2, 9),
    ("def f(x):\n    y, z = x, x\n    return y\n", "one plain name", 2, 5),
    ("def f(x):\n    y = x\n", "must end with `return", 2, 5),
    ("def f(x=1):\n    return x\n", "no defaults", 1, 1),
    ("@dec\ndef f(x):\n    return x\n", "decorators", 1, 2),
    ("def f(x):\n    return x +\n", "invalid syntax", 2, None),
])
def test_text_outside_the_language_is_rejected_with_its_position(text, message, line, column):
    with pytest.raises(ParseError) as info:
        parse(text)
    assert message in str(info.value)
    assert str(info.value).startswith(f"line {line}, column ")
    if column is not None:
        assert str(info.value).startswith(f"line {line}, column {column}:")


def test_parsing_never_executes_the_text(tmp_path):
    marker = tmp_path / "ran"
    text = f"def f(x):\n    y = __import__('os').system('touch {marker}')\n    return y\n"
    with pytest.raises(ParseError):
        parse(text)
    assert not marker.exists()


def test_programs_are_validated_when_built_by_hand():
    with pytest.raises(ProgramError, match="read before it is defined"):
        Program("f", ("x",), (Stmt("y", "add", ("x", "z")),), ("y",))
    with pytest.raises(ProgramError, match="assigned twice"):
        Program("f", ("x",), (Stmt("x", "neg", ("x",)),), ("x",))
    with pytest.raises(ProgramError, match="takes 2 arguments"):
        Program("f", ("x",), (Stmt("y", "add", ("x",)),), ("y",))
    with pytest.raises(ProgramError, match="unknown op"):
        Program("f", ("x",), (Stmt("y", "frobnicate", ("x",)),), ("y",))


def test_optimizer_slot_checks_outputs_against_state():
    with pytest.raises(ProgramError, match="must return the result and 1 state value"):
        OPTIMIZER.check(parse("def f(w, g, m):\n    return g\n"))
    with pytest.raises(ProgramError, match="at most 4 state variables"):
        OPTIMIZER.check(parse("def f(g, a, b, c, d, e):\n    return g, a, b, c, d, e\n"))


def test_domain_errors_give_nan_not_exceptions():
    program = parse("def f(x):\n    y = log(x) + sqrt(x) + arcsin(x) + 1 / (x - x)\n    return y\n")
    with np.errstate(all="ignore"):
        (out,) = evaluate(program, {"x": np.array([-2.0, 0.0, 3.0])})
    assert not np.isfinite(out).any()


# --- limits: flat chains are one level, nesting and size are bounded -------------------------

SIGNATURE = "def p(w, g, lr, step, progress):\n"


def one_expression(expression: str) -> str:
    return SIGNATURE + f"    u = {expression}\n    return u\n"


def test_a_flat_sum_of_106_terms_parses_evaluates_simplifies_and_exports():
    program = parse(one_expression(" + ".join(["g"] * 106)))
    assert len(program.body) == 105
    assert parse(to_text(program)) == program
    g = np.array([0.5, -1.0, 3.0])
    inputs = {"w": g * 0, "g": g, "lr": 0.1, "step": 1.0, "progress": 0.5}
    (update,) = evaluate(program, inputs)
    np.testing.assert_allclose(update, 106 * g)
    (simplified,) = evaluate(simplify(program), inputs)
    np.testing.assert_allclose(simplified, 106 * g)
    namespace: dict = {}
    exec(numpy_module(program, OPTIMIZER, "flat_sum"), namespace)  # noqa: S102 (our own text)
    np.testing.assert_allclose(namespace["flat_sum"](**inputs), 106 * g)


@pytest.mark.parametrize("operators", [("+", "-"), ("*", "/")])
def test_a_long_chain_of_one_precedence_is_one_level(operators):
    terms = 999  # MAX_CHAIN operators: at the limit, not over it
    expression = "g"
    for i in range(terms):
        expression += f" {operators[i % 2]} g"
    program = parse(one_expression(expression))
    assert [s.op for s in program.body].count("add" if "+" in operators else "mul") == 500
    assert len(program.body) == terms  # one statement per operator
    (update,) = evaluate(program, {"w": 0.0, "g": np.array([2.0]), "lr": 0.0, "step": 0.0,
                                   "progress": 0.0})
    np.testing.assert_allclose(update, [4.0])  # 2g, or g ** 2


def test_a_chain_emits_its_statements_left_to_right_as_python_evaluates():
    program = parse("def f(a, b, c, d):\n    y = a + b * c - d + exp(a)\n    return y\n")
    assert program.body == (
        Stmt("t0", "mul", ("b", "c")),
        Stmt("t1", "add", ("a", "t0")),
        Stmt("t2", "sub", ("t1", "d")),
        Stmt("t3", "exp", ("a",)),
        Stmt("y", "add", ("t2", "t3")),
    )


@pytest.mark.parametrize("expression, message", [
    ("g + (" * 101 + "g" + ")" * 101, "nested over 100 levels"),
    ("abs(" * 101 + "g" + ")" * 101, "nested over 100 levels"),
    ("g * (g + " * 60 + "g" + ")" * 60, "nested over 100 levels"),
    (" + ".join(["g"] * 1_002), "line 2, column 9: a chain of over 1000 operators"),
    (" * ".join(["g"] * 1_500), "a chain of over 1000 operators"),
    (" + ".join(["g"] * 20_000), "nested too deeply or chained too long"),
    ("-" * 5_000 + "g", "nested too deeply"),
])
def test_deep_nesting_and_overlong_chains_are_refused_in_one_line(expression, message):
    with pytest.raises(ParseError) as info:
        parse(one_expression(expression))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_nesting_still_counts_across_different_precedences():
    # a + b * c ... alternates precedence at every operator: each is a level
    expression = "g" + " + g * (g" * 40 + ")" * 40
    parse(one_expression(expression))
    with pytest.raises(ParseError, match="nested over 100 levels"):
        parse(one_expression("g" + " + g * (g" * 51 + ")" * 51))
