"""Specification of program identity: canonical forms and hashes for textual duplicates, and
functional fingerprints for programs computing the same thing."""

from __future__ import annotations

import warnings

import numpy as np
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disco_rules.dsl.identity import CANONICAL_NAME, canonical_form, canonical_hash, fingerprint
from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Const, Program, Stmt
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER

EXAMPLES = {path.stem: parse(path.read_text()) for path in sorted(
    Path(__file__).parent.parent.joinpath("dsl", "programs").glob("*.py"))}
SLOT_OF = {name: OBJECTIVE if name in ("dpo", "ppo_clip") else OPTIMIZER for name in EXAMPLES}


@st.composite
def renamed_pairs(draw: st.DrawFn) -> tuple[Program, Program]:
    """A random optimizer-slot program, and the same program with its state variables renamed
    and its params in another order."""
    inputs = draw(st.lists(st.sampled_from(OPTIMIZER.inputs), min_size=1, unique=True))
    state = [f"m{i}" for i in range(draw(st.integers(0, 2)))]
    names = inputs + state
    body = []
    for index in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(OP_NAMES))
        args = tuple(draw(st.sampled_from(names)) if draw(st.booleans())
                     else Const(draw(st.sampled_from((0.0, 1.0, 0.9, -2.0))))
                     for _ in range(OPS[op].arity))
        body.append(Stmt(f"t{index}", op, args))
        names.append(f"t{index}")
    outputs = tuple(draw(st.sampled_from(names)) for _ in range(1 + len(state)))
    original = Program("rule", tuple(inputs + state), tuple(body), outputs)
    renaming = {s: f"state_{s}" for s in state}

    def rename(name: str) -> str:
        return renaming.get(name, name)

    # Inputs may move anywhere; state variables keep their order, which fixes the outputs'.
    order = iter(renaming.values())
    params = tuple(next(order) if p in renaming else p
                   for p in draw(st.permutations(original.params)))
    renamed = Program(
        "other", params,
        tuple(Stmt(s.out, s.op, tuple(rename(a) if isinstance(a, str) else a for a in s.args))
              for s in body),
        tuple(rename(o) for o in outputs))
    return original, renamed


def program(text: str) -> Program:
    """Parse a one-line shorthand, `def f(g, lr); u = lr * g; return u`: `;` ends each line."""
    header, *lines = [part.strip() for part in text.split(";")]
    return parse("\n".join([header + ":"] + [f"    {line}" for line in lines]) + "\n")


MOMENTUM = "def f(g, m, lr); m = 0.9 * m + g; return lr * m, m"

# Pairs that simplify to the same program, up to names and param order.
SAME_TEXT_UP_TO_SIMPLIFY = [
    (MOMENTUM, "def f(g, m, lr); m = 0.9 * m + g; return m * lr, m"),  # a * b vs b * a
    (MOMENTUM, "def f(g, mom, lr); mom = 0.9 * mom + g; return lr * mom, mom"),  # state name
    (MOMENTUM, "def f(lr, m, g); m = g + m * 0.9; return lr * m, m"),  # param and arg order
    (MOMENTUM, "def f(w, g, m, lr); m = 0.9 * m + g * 1.0; x = exp(w); return lr * m, m"),
    ("def f(g, lr); a = lr * g; b = g * lr; return a + b",
     "def f(g, lr); c = g * lr; return c + c"),  # common subexpression
]
# Pairs computing the same function that simplify does not merge.
SAME_FUNCTION_ONLY = [
    ("def f(g, m); m = interp(g, m, 0.9); return m, m",
     "def f(g, m); m = 0.1 * g + 0.9 * m; return m, m"),
    ("def f(g, lr); return 2.0 * (lr * g)", "def f(g, lr); return lr * g + g * lr"),
    ("def f(g, lr); return lr * (g + g)", "def f(g, lr); return 2.0 * lr * g"),
]
# Pairs computing different functions at the optimizer slot.
DIFFERENT_FUNCTIONS = [
    ("def f(g, lr); return lr * g", MOMENTUM),
    ("def f(g, lr); return lr * g", "def f(g, lr); return 2.0 * lr * g"),
    ("def f(g, lr); return lr * g", "def f(g, lr); return lr * abs(g)"),
    ("def f(g, lr); return lr * g", "def f(w, g, lr); return lr * g + 0.01 * w"),
    ("def f(g, lr); return lr * g", "def f(g, lr, step); return lr * g / step"),
    ("def f(g, lr); return lr * g", "def f(g, lr, progress); return lr * g * progress"),
    (MOMENTUM, "def f(g, m, lr); m = 0.99 * m + g; return lr * m, m"),
    # the same state update, but the momentum is returned before or after the update
    ("def f(g, m, lr); n = 0.9 * m + g; return lr * n, n",
     "def f(g, m, lr); n = 0.9 * m + g; return lr * m, n"),
]


# --- canonical form -------------------------------------------------------------------------

def test_canonical_form_renames_state_and_orders_params() -> None:
    form = canonical_form(EXAMPLES["adam"])
    assert form.name == CANONICAL_NAME
    assert form.params == ("g", "lr", "step", "s0", "s1")  # adam never reads w


def test_canonical_form_keeps_the_state_order_that_fixes_the_outputs() -> None:
    form = canonical_form(program("def f(g, b, a, lr); return lr * g + b, exp(b), exp(a)"))
    assert form.params == ("g", "lr", "s0", "s1")
    assert str(form) == str(canonical_form(
        program("def f(lr, g, x, y); return g * lr + x, exp(x), exp(y)")))


def test_canonical_form_keeps_an_unused_state_variable() -> None:
    form = canonical_form(program("def f(g, m, lr); return lr * g, m"))
    assert form.params == ("g", "lr", "s0")
    assert form.outputs[1] == "s0"


@pytest.mark.parametrize("name", EXAMPLES)
def test_canonical_form_is_a_fixed_point(name: str) -> None:
    slot = SLOT_OF[name]
    form = canonical_form(EXAMPLES[name], slot)
    assert canonical_form(form, slot) == form
    assert simplify(form) == form
    slot.check(form)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(renamed_pairs())
def test_renaming_state_and_reordering_params_change_no_identity(
        pair: tuple[Program, Program]) -> None:
    original, renamed = pair
    assert canonical_form(renamed) == canonical_form(original)
    assert canonical_hash(renamed) == canonical_hash(original)
    assert fingerprint(renamed) == fingerprint(original)


@settings(max_examples=150, derandomize=True, deadline=None)
@given(renamed_pairs())
def test_the_canonical_hash_of_a_simplified_program_is_unchanged(
        pair: tuple[Program, Program]) -> None:
    original, _ = pair
    assert canonical_hash(simplify(original)) == canonical_hash(original)


# --- canonical hash -------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", SAME_TEXT_UP_TO_SIMPLIFY)
def test_canonical_hash_is_equal_up_to_names_order_and_simplify(first: str,
                                                                second: str) -> None:
    assert canonical_hash(program(first)) == canonical_hash(program(second))


@pytest.mark.parametrize("first, second", DIFFERENT_FUNCTIONS)
def test_canonical_hash_differs_for_different_functions(first: str, second: str) -> None:
    assert canonical_hash(program(first)) != canonical_hash(program(second))


def test_canonical_hashes_of_the_examples_are_distinct_hex_digests() -> None:
    hashes = [canonical_hash(p, SLOT_OF[name]) for name, p in EXAMPLES.items()]
    assert len(set(hashes)) == len(hashes)
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in hashes)


# --- fingerprint ----------------------------------------------------------------------------

@pytest.mark.parametrize("first, second", SAME_TEXT_UP_TO_SIMPLIFY + SAME_FUNCTION_ONLY)
def test_fingerprint_is_equal_for_the_same_function(first: str, second: str) -> None:
    assert fingerprint(program(first)) == fingerprint(program(second))


@pytest.mark.parametrize("first, second", DIFFERENT_FUNCTIONS)
def test_fingerprint_differs_for_different_functions(first: str, second: str) -> None:
    assert fingerprint(program(first)) != fingerprint(program(second))


@pytest.mark.parametrize("name", EXAMPLES)
def test_fingerprint_is_unchanged_by_simplify_and_canonical_form(name: str) -> None:
    prog = EXAMPLES[name]
    assert fingerprint(simplify(prog)) == fingerprint(prog)
    assert fingerprint(canonical_form(prog)) == fingerprint(prog)


def test_fingerprints_of_the_examples_are_distinct_and_repeatable() -> None:
    prints = [fingerprint(p) for p in EXAMPLES.values()]
    assert len(set(prints)) == len(prints)
    assert prints == [fingerprint(p) for p in EXAMPLES.values()]


def test_fingerprint_sees_the_adam_bias_correction() -> None:
    uncorrected = program("def f(g, m, v, lr); m = interp(g, m, 0.9); "
                          "v = interp(square(g), v, 0.999); "
                          "return lr * m / (sqrt(v) + 1e-08), m, v")
    assert fingerprint(uncorrected) != fingerprint(EXAMPLES["adam"])


@pytest.mark.parametrize("text", [
    "def f(g); return log(g)",  # NaN for negative g
    "def f(g); return reciprocal(g - g)",  # division by zero
    "def f(g); return exp(exp(exp(exp(g))))",  # overflow
    "def f(g); return exp(exp(exp(exp(g)))) - exp(exp(exp(exp(g))))",  # inf - inf
])
def test_domain_errors_give_a_fingerprint_without_warnings(text: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        faulty = fingerprint(program(text))
    assert faulty != fingerprint(program("def f(g); return g"))


def test_nan_and_infinities_are_told_apart() -> None:
    nan = fingerprint(program("def f(g); return log(-1.0 - abs(g))"))
    plus_inf = fingerprint(program("def f(g); return reciprocal(g - g)"))
    minus_inf = fingerprint(program("def f(g); return -reciprocal(g - g)"))
    assert len({nan, plus_inf, minus_inf}) == 3


def test_an_optimizers_rollout_is_its_updates_on_the_quadratic_as_optax_makes_them():
    import optax

    from disco_rules.dsl.identity import ROLLOUT_LR, rollout, rollout_problem

    curvature, w, noise = rollout_problem()
    optimizer = optax.adam(ROLLOUT_LR, eps=1e-8)
    state = optimizer.init(w)
    expected = []
    for t in range(len(noise)):
        updates, state = optimizer.update(curvature * w + noise[t], state)
        expected.append(-np.asarray(updates))  # optax adds its updates, a program's subtract
        w = w + np.asarray(updates)
    # optax computes in float32: updates of about 0.01 agree to 1e-6
    np.testing.assert_allclose(rollout(EXAMPLES["adam"]), np.stack(expected), rtol=1e-4,
                               atol=1e-6)


def _adam_with(beta1: str = "0.9", beta2: str = "0.999") -> Program:
    return parse(f"""def adam(w, g, m, v, lr, step):
    m = interp(g, m, {beta1})
    v = interp(square(g), v, {beta2})
    m_hat = m / (1.0 - {beta1} ** step)
    v_hat = v / (1.0 - {beta2} ** step)
    update = lr * m_hat / (sqrt(v_hat) + 1e-08)
    return update, m, v
""")


def test_rollouts_are_near_for_a_constant_no_training_feels_and_far_for_a_decay_rate():
    from disco_rules.dsl.identity import nearest_rollout, rollout, rollout_distance

    adam = rollout(_adam_with())
    assert rollout_distance(adam, rollout(EXAMPLES["adam"])) < 1e-9
    nudged = _adam_with(beta1="0.9001")
    assert fingerprint(nudged) != fingerprint(EXAMPLES["adam"])  # not the same function
    assert rollout_distance(adam, rollout(nudged)) < 0.01
    # beta2 0.99 against 0.999: the same first step (bias correction), another optimizer
    # over a run, which one step cannot show
    fast = rollout(_adam_with(beta2="0.99"))
    assert rollout_distance(adam[:1], fast[:1]) < 1e-12 and rollout_distance(adam, fast) > 0.05
    assert rollout_distance(adam, rollout(EXAMPLES["lion"])) > 0.1
    rollouts = {3: fast, 5: rollout(nudged), 7: rollout(EXAMPLES["lion"])}
    assert nearest_rollout(adam, rollouts, 0.01) == (5, rollout_distance(adam, rollouts[5]))
    assert nearest_rollout(adam, {3: fast, 7: rollouts[7]}, 0.01)[0] is None
    assert nearest_rollout(None, rollouts, 0.01)[0] is None


def test_a_rollout_that_turns_non_finite_is_none():
    from disco_rules.dsl.identity import rollout

    exploding = parse("def grow(w, g, lr):\n    update = -1000.0 * w\n    return update\n")
    assert rollout(exploding) is None


def test_orth_is_told_from_a_normalised_gradient_because_the_inputs_are_matrices():
    from disco_rules.dsl.evaluate import evaluate
    from disco_rules.dsl.identity import rollout, rollout_distance

    image = 1.0  # a vector's one singular value after Muon's five quintic steps
    for _ in range(5):
        image = 3.4445 * image - 4.775 * image ** 3 + 2.0315 * image ** 5
    orthogonalised = parse("def f(w, g, lr):\n    update = lr * orth(g)\n    return update\n")
    normalised = parse(f"def f(w, g, lr):\n    update = lr * {image!r} * g / rms(g)\n"
                       f"    return update\n")
    g = np.random.default_rng(0).normal(size=16)  # on a vector they are one function
    vector = [evaluate(p, {"w": g, "g": g, "lr": 1.0})[0] for p in (orthogonalised, normalised)]
    np.testing.assert_allclose(*vector, rtol=1e-6)
    assert fingerprint(orthogonalised) != fingerprint(normalised)
    assert rollout_distance(rollout(orthogonalised), rollout(normalised)) > 0.5
