"""Specification of dsl.mutate: random edits that always give valid programs of the same
signature, reproducibly, each kind doing exactly what its name says."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.mutate import MUTATION_KINDS, MutationConfig, mutate, mutation_chain, random_program
from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Const, Program, Stmt

EXAMPLES = {path.stem: parse(path.read_text())
            for path in sorted((Path(__file__).parents[1] / "dsl" / "programs").glob("*.py"))}
DEFAULT = MutationConfig()
seeds = st.integers(0, 2**32 - 1)
example_names = st.sampled_from(sorted(EXAMPLES))


def only(kind: str, **changes: object) -> MutationConfig:
    """A config that does nothing but `kind`."""
    weights = {f"{k}_weight": float(k == kind) for k in MUTATION_KINDS}
    return MutationConfig(**{**weights, **changes})  # type: ignore[arg-type]


@st.composite
def programs(draw: st.DrawFn) -> Program:
    """Example programs, random programs, and short mutation chains from both."""
    rng = np.random.default_rng(draw(seeds))
    if draw(st.booleans()):
        start = EXAMPLES[draw(example_names)]
    else:
        start = random_program(rng, draw(st.integers(0, 12)), n_outputs=draw(st.integers(1, 3)))
    return mutation_chain(start, rng, draw(st.integers(0, 20)))


def inputs_for(program: Program, rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {p: rng.normal(size=5) for p in program.params}


def differing_args(a: Program, b: Program) -> list[tuple[int, int]]:
    """(statement, argument) positions where two programs of the same shape differ."""
    return [(i, k) for i, (s, t) in enumerate(zip(a.body, b.body))
            for k, (x, y) in enumerate(zip(s.args, t.args)) if x != y]


def reads(body: tuple[Stmt, ...], outputs: tuple[str, ...]) -> list[str]:
    """Every name read, in order: statement arguments, then outputs."""
    return [n for stmt in body for n in stmt.names()] + list(outputs)


# --- every mutant is a valid program with the parent's signature ---------------------------


@settings(max_examples=25, deadline=None)  # 5,000 mutants, each printed and parsed back
@given(name=example_names, seed=seeds)
def test_long_chains_stay_valid_same_signature_and_round_trip(name: str, seed: int) -> None:
    parent = EXAMPLES[name]
    rng = np.random.default_rng(seed)
    program = parent
    for step in range(200):
        program = mutate(program, rng)
        assert program.params == parent.params
        assert len(program.outputs) == len(parent.outputs)
        assert len(program.body) <= DEFAULT.max_statements
        assert parse(to_text(program)) == program
        if step % 10 == 0:
            with np.errstate(all="ignore"):
                results = evaluate(program, inputs_for(program, rng))
            assert len(results) == len(program.outputs)
            assert all(np.shape(r) == (5,) for r in results)


@settings(max_examples=40, deadline=None)
@given(seed=seeds, max_statements=st.integers(1, 6))
def test_chains_never_exceed_max_statements(seed: int, max_statements: int) -> None:
    config = MutationConfig(max_statements=max_statements)
    rng = np.random.default_rng(seed)
    program = EXAMPLES["sgd"]
    for _ in range(100):
        program = mutate(program, rng, config)
        assert len(program.body) <= max_statements


@settings(max_examples=50, deadline=None)
@given(seed=seeds, n_statements=st.integers(0, 24), n_outputs=st.integers(1, 4))
def test_random_program_has_the_requested_shape(seed: int, n_statements: int,
                                                n_outputs: int) -> None:
    program = random_program(np.random.default_rng(seed), n_statements, n_outputs=n_outputs)
    assert program.params == ("w", "g", "m", "lr")
    assert len(program.body) == n_statements
    assert len(program.outputs) == n_outputs
    assert all(stmt.op in DEFAULT.ops for stmt in program.body)
    if n_statements:
        assert set(program.outputs) <= {stmt.out for stmt in program.body}
    assert parse(to_text(program)) == program


def test_random_program_respects_max_statements() -> None:
    with pytest.raises(ValueError):
        random_program(np.random.default_rng(0), 5, config=MutationConfig(max_statements=4))


# --- reproducibility -----------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(name=example_names, seed=seeds)
def test_same_seed_gives_the_same_chain(name: str, seed: int) -> None:
    first = mutation_chain(EXAMPLES[name], np.random.default_rng(seed), 50)
    second = mutation_chain(EXAMPLES[name], np.random.default_rng(seed), 50)
    assert first == second


def test_different_seeds_give_different_chains() -> None:
    results = {mutation_chain(EXAMPLES["lion"], np.random.default_rng(seed), 10)
               for seed in range(20)}
    assert len(results) == 20


# --- each kind does what it says -----------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(parent=programs(), seed=seeds)
def test_insert_adds_one_fresh_statement_that_is_read(parent: Program, seed: int) -> None:
    config = only("insert", max_statements=len(parent.body) + 1)
    child = mutate(parent, np.random.default_rng(seed), config)
    assert len(child.body) == len(parent.body) + 1
    (new,) = [stmt for stmt in child.body if stmt.out not in parent.all_names()]
    assert new.out != parent.name
    assert new.op in config.ops
    assert new.out in child.used_names()
    # The rest is the parent with exactly one read redirected to the new value.
    rest = tuple(stmt for stmt in child.body if stmt is not new)
    assert [(s.out, s.op) for s in rest] == [(s.out, s.op) for s in parent.body]
    before, after = reads(parent.body, parent.outputs), reads(rest, child.outputs)
    changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
    assert len(changed) == 1 and after[changed[0]] == new.out


@settings(max_examples=60, deadline=None)
@given(parent=programs(), seed=seeds)
def test_delete_removes_one_statement_and_rewires_its_readers(parent: Program,
                                                              seed: int) -> None:
    assume(parent.body)
    child = mutate(parent, np.random.default_rng(seed), only("delete"))
    assert len(child.body) == len(parent.body) - 1
    (deleted,) = [s for s in parent.body if s.out not in child.all_names()]
    index = parent.body.index(deleted)
    assert [s.out for s in child.body] == [s.out for s in parent.body if s is not deleted]
    # Readers of the deleted value now read one stand-in, one of its own name args where it
    # has one; every other read is unchanged.
    rest = tuple(stmt for stmt in parent.body if stmt is not deleted)
    before, after = reads(rest, parent.outputs), reads(child.body, child.outputs)
    stand_ins = {b for a, b in zip(before, after) if a == deleted.out}
    assert len(stand_ins) <= 1
    assert stand_ins <= (set(deleted.names()) or set(parent.defined_before(index)))
    assert all(a == b for a, b in zip(before, after) if a != deleted.out)


@settings(max_examples=60, deadline=None)
@given(parent=programs(), seed=seeds)
def test_change_arg_changes_exactly_one_argument(parent: Program, seed: int) -> None:
    assume(parent.body)
    child = mutate(parent, np.random.default_rng(seed), only("change_arg"))
    assert [(s.out, s.op) for s in child.body] == [(s.out, s.op) for s in parent.body]
    assert child.outputs == parent.outputs
    assert len(differing_args(parent, child)) == 1


@pytest.mark.parametrize("seed", range(50))
def test_change_arg_to_a_constant_never_draws_the_same_constant(seed: int) -> None:
    parent = Program("rule", ("w",), (Stmt("a", "neg", (Const(0.5),)),), ("a",))
    config = only("change_arg", constant_probability=1.0)
    child = mutate(parent, np.random.default_rng(seed), config)
    assert isinstance(child.body[0].args[0], Const) and child != parent


@settings(max_examples=60, deadline=None)
@given(parent=programs(), seed=seeds)
def test_change_op_changes_exactly_one_op_keeping_its_arity(parent: Program,
                                                            seed: int) -> None:
    assume(parent.body)
    config = only("change_op")
    child = mutate(parent, np.random.default_rng(seed), config)
    changed = [(s, t) for s, t in zip(parent.body, child.body) if s != t]
    assert len(changed) == 1
    (old, new), = changed
    assert (new.out, new.args) == (old.out, old.args)
    assert new.op != old.op and new.op in config.ops
    assert OPS[new.op].arity == OPS[old.op].arity
    assert child.outputs == parent.outputs


@settings(max_examples=60, deadline=None)
@given(parent=programs(), seed=seeds)
def test_perturb_const_changes_exactly_one_constant(parent: Program, seed: int) -> None:
    assume(any(isinstance(a, Const) for s in parent.body for a in s.args))
    child = mutate(parent, np.random.default_rng(seed), only("perturb_const"))
    assert [(s.out, s.op) for s in child.body] == [(s.out, s.op) for s in parent.body]
    ((i, k),) = differing_args(parent, child)
    assert isinstance(parent.body[i].args[k], Const) and isinstance(child.body[i].args[k], Const)


# --- impossible kinds give way -------------------------------------------------------------

NO_CONSTANTS = Program("rule", ("w", "g"), (Stmt("a", "mul", ("w", "g")),), ("a",))


@pytest.mark.parametrize("seed", range(10))
def test_perturb_const_without_constants_falls_back(seed: int) -> None:
    config = MutationConfig(perturb_const_weight=1.0, change_op_weight=1.0, insert_weight=0.0,
                            delete_weight=0.0, change_arg_weight=0.0)
    child = mutate(NO_CONSTANTS, np.random.default_rng(seed), config)
    assert child.body[0].op != "mul" and child.body[0].args == ("w", "g")


@pytest.mark.parametrize("seed", range(10))
def test_insert_at_max_length_falls_back(seed: int) -> None:
    config = MutationConfig(max_statements=1, insert_weight=1.0, delete_weight=1.0,
                            change_arg_weight=0.0, change_op_weight=0.0,
                            perturb_const_weight=0.0)
    assert mutate(NO_CONSTANTS, np.random.default_rng(seed), config).body == ()


@pytest.mark.parametrize("seed", range(10))
def test_delete_on_empty_body_falls_back(seed: int) -> None:
    empty = Program("rule", ("w", "g"), (), ("w",))
    child = mutate(empty, np.random.default_rng(seed), only("delete", insert_weight=1.0))
    assert len(child.body) == 1


def test_no_applicable_kind_is_an_error() -> None:
    empty = Program("rule", ("w",), (), ("w",))
    with pytest.raises(ValueError):
        mutate(empty, np.random.default_rng(0), MutationConfig(max_statements=0))
    with pytest.raises(ValueError):
        mutate(NO_CONSTANTS, np.random.default_rng(0), only("perturb_const"))


def test_the_default_ops_are_the_table_but_copy_and_orth_so_seeds_draw_as_before() -> None:
    # orth is last in the table: the ops before it, and so every seeded draw, are unchanged
    assert "orth" not in MutationConfig().ops
    assert MutationConfig().ops == tuple(n for n in OP_NAMES if n not in ("copy", "orth"))
    assert OP_NAMES[-1] == "orth"


def test_orth_is_drawn_once_a_config_lists_it() -> None:
    config = MutationConfig(ops=("orth", "add", "mul", "interp"))
    rng = np.random.default_rng(0)
    adam = EXAMPLES["adam"]
    children = [mutate(adam, rng, config) for _ in range(200)]
    assert any("orth" in {s.op for s in child.body} for child in children)
    new_ops = {s.op for child in children for s in child.body} - {s.op for s in adam.body}
    assert new_ops <= set(config.ops)


def test_config_rejects_unknown_ops_and_bad_weights() -> None:
    with pytest.raises(ValueError):
        MutationConfig(ops=("add", "frobnicate"))
    with pytest.raises(ValueError):
        MutationConfig(insert_weight=-1.0)
    with pytest.raises(ValueError):
        only("insert", insert_weight=0.0)


def test_all_inputs_adds_the_missing_slot_inputs_and_lets_mutations_read_them() -> None:
    from disco_rules.dsl import library
    from disco_rules.dsl.slots import OBJECTIVE, OPTIMIZER

    lion = parse(library.path("lion").read_text())  # reads neither step nor progress
    extended = OPTIMIZER.with_all_inputs(lion)
    assert extended.params == ("w", "g", "m", "lr", "step", "progress")
    assert OPTIMIZER.with_all_inputs(extended) == extended
    assert OPTIMIZER.state_names(extended) == OPTIMIZER.state_names(lion) == ("m",)
    rng = np.random.default_rng(0)
    inputs = {name: rng.normal(size=5) for name in extended.params}
    for mine, theirs in zip(evaluate(extended, inputs), evaluate(lion, inputs)):
        np.testing.assert_array_equal(mine, theirs)  # same results, same state
    drift = parse("def drift(ratio, advantage):\n    d = ratio - advantage\n    return d\n")
    assert OBJECTIVE.with_all_inputs(drift).params == ("ratio", "advantage", "progress")

    def reading_progress(program: Program) -> int:
        rng = np.random.default_rng(1)
        mutants = [mutate(program, rng) for _ in range(300)]
        return sum("progress" in mutant.used_names() for mutant in mutants)

    assert reading_progress(lion) == 0 and reading_progress(extended) > 0
