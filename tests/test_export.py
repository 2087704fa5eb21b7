"""Exported modules: they import no disco module, compute what the evaluator computes (for the
shipped programs and for random mutants of them), read like hand-written code, and train
exactly like the optax and torch optimizers the example programs describe."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disco_rules.dsl import library
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.mutate import mutation_chain
from disco_rules.dsl.ops import OP_NAMES, OPS
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Const, Program, ProgramError, Stmt
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.slots import OPTIMIZER, slot_of
from disco_rules.export import FORMATS, export
from tests.experiment_programs import experiment_program

EXAMPLES = Path(__file__).parent.parent / "dsl" / "programs"

DECAY = """
def decay(w, g, lr, progress):
    update = lr * (1.0 - progress) * g
    return update
"""


def example(name: str) -> Program:
    return parse((EXAMPLES / f"{name}.py").read_text())


def load(source: str, directory: Path, name: str) -> ModuleType:
    """Import generated source from a file, as a user of the export would."""
    path = directory / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- the exported function computes what the evaluator computes, for every op -------------

POSITIVE_ONLY = {("sqrt", 0), ("log", 0), ("pow", 0)}  # argument positions needing x > 0


def every_op_program() -> Program:
    """Each op on names (a positive one first, then a signed one first) and with a constant,
    negative where the op allows it, in each argument position; the parameters are named as
    optimizer inputs so that each statement alone is an optimizer."""
    body: list[Stmt] = []
    for name in OP_NAMES:
        arity = OPS[name].arity
        patterns = [("w", "g", "lr")[:arity]]
        if (name, 0) not in POSITIVE_ONLY:
            patterns.append(("g", "w", "lr")[:arity])
        for position in range(arity):
            constants = (0.25, 1.5) if (name, position) in POSITIVE_ONLY else (-0.5, 0.75)
            for value in constants:
                args = list(patterns[0])
                args[position] = Const(value)
                patterns.append(tuple(args))
        for args in patterns:
            body.append(Stmt(f"r{len(body)}", name, args))
    return Program("every_op", ("w", "g", "lr"), tuple(body), tuple(s.out for s in body))


def every_op_inputs() -> dict[str, np.ndarray]:
    """Arrays w, g of shape (3, 4) and a scalar lr, inside every op's domain."""
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 0.9, size=(3, 4))
    g = rng.choice([-1.0, 1.0], size=(3, 4)) * rng.uniform(0.2, 0.9, size=(3, 4))
    return {"w": w, "g": g, "lr": np.asarray(0.3)}


def test_every_op_program_covers_every_op_with_negative_constants_in_every_position():
    program = every_op_program()
    assert {s.op for s in program.body} == set(OP_NAMES)
    for name in OP_NAMES:
        for position in range(OPS[name].arity):
            constants = [s.args[position].value for s in program.body
                         if s.op == name and isinstance(s.args[position], Const)]
            assert len(constants) == 2
            assert (name, position) in POSITIVE_ONLY or min(constants) < 0


def test_numpy_export_computes_exactly_what_evaluate_computes(tmp_path):
    program, inputs = every_op_program(), every_op_inputs()
    module = load(export(program, "numpy"), tmp_path, "every_op_numpy")
    expected = evaluate(program, inputs)
    actual = module.every_op(**inputs)
    assert len(actual) == len(expected)
    for name, got, want in zip(program.outputs, actual, expected):
        assert got.shape == (3, 4), name
        assert np.isfinite(want).all(), f"{name} left the op's domain"
        np.testing.assert_array_equal(got, want, err_msg=name)


def test_jax_export_computes_what_evaluate_computes_with_jax(tmp_path):
    program, inputs = every_op_program(), every_op_inputs()
    module = load(export(program, "jax"), tmp_path, "every_op_jax")
    expected = evaluate(program, inputs, xp=jnp)
    actual = module.every_op(**{k: jnp.asarray(v) for k, v in inputs.items()})
    for name, got, want in zip(program.outputs, actual, expected):
        assert isinstance(got, jax.Array) and got.shape == (3, 4), name
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7, err_msg=name)


STEP = 3  # the step of the exported optimizers' one-step checks (total_steps = 12)


def torch_step(module: ModuleType, program: Program, inputs: dict, total_steps=None,
               steps: int = 1) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    """`steps` steps of the exported torch optimizer from state `inputs` (float64) with the
    same gradient: after each, the weight and the state variables' values."""
    torch = pytest.importorskip("torch")
    cls = next(v for v in vars(module).values()
               if isinstance(v, type) and issubclass(v, torch.optim.Optimizer))
    weights = torch.tensor(inputs["w"], dtype=torch.float64, requires_grad=True)
    weights.grad = torch.tensor(inputs["g"], dtype=torch.float64)
    optimizer = cls([weights], lr=float(inputs["lr"]), total_steps=total_steps)
    state = OPTIMIZER.state_names(program)
    optimizer.state[weights] = {"step": STEP - 1,
                                **{s: torch.tensor(inputs[s], dtype=torch.float64)
                                   for s in state}}
    after = []
    for _ in range(steps):
        optimizer.step()
        after.append((weights.detach().numpy().copy(),
                      [optimizer.state[weights][s].numpy().copy() for s in state]))
    return after


def test_torch_export_steps_as_evaluate_computes(tmp_path):
    torch = pytest.importorskip("torch")
    inputs = every_op_inputs()
    tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in inputs.items()}
    for index, stmt in enumerate(every_op_program().body):
        program = Program(f"rule{index}", ("w", "g", "lr"), (stmt,), (stmt.out,))
        module = load(export(program, "torch"), tmp_path, program.name)
        ((weights, _),) = torch_step(module, program, inputs | {"lr": 0.3})
        update = evaluate(program, tensors, xp=torch)[0].numpy()
        np.testing.assert_allclose(weights, inputs["w"] - update, rtol=1e-12, atol=1e-15,
                                   err_msg=str(stmt))


def test_one_output_is_returned_bare_and_several_as_a_tuple(tmp_path):
    sgd = load(export(example("sgd"), "numpy"), tmp_path, "sgd_numpy")
    adamw = load(export(example("adamw"), "numpy"), tmp_path, "adamw_numpy")
    ones = np.ones(3)
    assert isinstance(sgd.sgd(ones, ones, 0.5), np.ndarray)
    np.testing.assert_array_equal(sgd.sgd(ones, ones, 0.5), 0.5 * ones)
    assert isinstance(adamw.adamw(ones, ones, ones, ones, 0.1, 1), tuple)


def test_names_that_clash_with_generated_code_are_renamed_consistently(tmp_path):
    torch = pytest.importorskip("torch")
    program = Program(  # a state variable named like the numpy module, results like keywords
        "update", ("w", "g", "np", "lr"),
        (Stmt("count", "mul", ("lr", "g")),
         Stmt("lambda", "interp", ("g", "np", Const(0.9))),
         Stmt("state", "add", ("count", "lambda")),
         Stmt("_x", "copy", ("lambda",))),
        ("state", "_x"))
    w, g, zeros = np.array([1.0, -2.0]), np.array([0.5, 3.0]), np.array([0.25, -1.0])
    want = evaluate(program, {"w": w, "g": g, "np": zeros, "lr": 0.1})
    for fmt in ("numpy", "jax"):
        module = load(export(program, fmt), tmp_path, f"clash_{fmt}")
        got = module.update_(w, g, zeros, 0.1)  # a function named `update` becomes `update_`
        np.testing.assert_allclose(np.asarray(got[0]), want[0], rtol=1e-6)
        np.testing.assert_allclose(np.asarray(got[1]), want[1], rtol=1e-6)

    first = evaluate(program, {"w": w, "g": g, "np": 0 * w, "lr": 0.1})[0]
    optimizer = load(export(program, "optax"), tmp_path, "clash_optax").optimizer(0.1)
    updates, _ = optimizer.update(g, optimizer.init(w), w)
    np.testing.assert_allclose(updates, -first, rtol=1e-6)
    weights = torch.tensor(w, requires_grad=True)
    weights.grad = torch.tensor(g)
    load(export(program, "torch"), tmp_path, "clash_torch").Update([weights], lr=0.1).step()
    np.testing.assert_allclose(weights.detach().numpy(), w - first, rtol=1e-12)


# --- optax: the exported example programs train exactly like optax's own optimizers --------

def mlp_problem() -> tuple[dict[str, jax.Array], Callable]:
    """A two-layer regression network with four parameter leaves, and its loss."""
    rng = np.random.default_rng(1)
    params = {"w1": rng.normal(size=(4, 8)) / 2, "b1": rng.normal(size=8) / 10,
              "w2": rng.normal(size=(8, 1)) / 3, "b2": np.zeros(1)}
    x = rng.normal(size=(32, 4))
    y = np.sin(x @ rng.normal(size=(4, 1)))
    params = jax.tree.map(jnp.asarray, params)

    def loss(p):
        hidden = jnp.tanh(x @ p["w1"] + p["b1"])
        return jnp.mean((hidden @ p["w2"] + p["b2"] - y) ** 2)

    return params, loss


def train_optax(optimizer: optax.GradientTransformation, steps: int = 200):
    params, loss = mlp_problem()

    def one_step(_, carry):
        params, state = carry
        updates, state = optimizer.update(jax.grad(loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    trained, _ = jax.jit(lambda p: jax.lax.fori_loop(0, steps, one_step,
                                                     (p, optimizer.init(p))))(params)
    assert loss(trained) < 0.75 * loss(params), "the run must actually train"
    return trained


def assert_trees_close(actual, expected, rtol: float) -> None:
    """Each leaf within `rtol` of the reference, relative to the leaf's norm."""
    for path, got, want in zip(jax.tree_util.tree_leaves_with_path(expected),
                               jax.tree.leaves(actual), jax.tree.leaves(expected)):
        error = np.linalg.norm(np.asarray(got) - np.asarray(want))
        assert error <= rtol * np.linalg.norm(np.asarray(want)), (path[0], error)


SCHEDULE = optax.warmup_cosine_decay_schedule(0.0, 1e-2, warmup_steps=20, decay_steps=200)

REFERENCES = {
    "adamw": lambda lr: optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01),
    "lion": lambda lr: optax.lion(lr, b1=0.9, b2=0.99, weight_decay=0.01),
    "sgd": optax.sgd,
}


@pytest.mark.parametrize("learning_rate", [1e-2, SCHEDULE], ids=["constant", "schedule"])
@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_optax_export_trains_like_the_optax_optimizer(tmp_path, name, learning_rate):
    """In float64: in float32 the two orders of the same arithmetic drift apart by ~1e-5."""
    module = load(export(example(name), "optax"), tmp_path, f"{name}_optax")
    with jax.enable_x64(True):
        trained = train_optax(module.optimizer(learning_rate))
        assert jax.tree.leaves(trained)[0].dtype == jnp.float64
        assert_trees_close(trained, train_optax(REFERENCES[name](learning_rate)), rtol=1e-5)


# The literature's rules written for the transfer checks (docs/experiments/programs), against
# optax's own: AdaBelief with AdamW's epsilon outside the root and none inside, NAdamW.
LITERATURE = {
    "adabelief": lambda lr: optax.chain(optax.scale_by_belief(eps=1e-8, eps_root=0.0),
                                        optax.add_decayed_weights(0.01),
                                        optax.scale_by_learning_rate(lr)),
    "nadamw": lambda lr: optax.nadamw(lr, eps=1e-8, weight_decay=0.01),
}


@pytest.mark.parametrize("name", sorted(LITERATURE))
def test_literature_rules_train_like_optax(tmp_path, name):
    program = experiment_program(name)
    module = load(export(program, "optax"), tmp_path, f"{name}_literature")
    with jax.enable_x64(True):
        assert_trees_close(train_optax(module.optimizer(SCHEDULE)),
                           train_optax(LITERATURE[name](SCHEDULE)), rtol=1e-5)


def test_optax_state_is_a_count_and_one_zero_tree_per_state_variable(tmp_path):
    module = load(export(example("adamw"), "optax"), tmp_path, "adamw_state")
    params, _ = mlp_problem()
    state = module.optimizer(1e-3).init(params)
    assert state._fields == ("count", "m", "v")
    assert int(state.count) == 0
    for tree in (state.m, state.v):
        assert jax.tree.structure(tree) == jax.tree.structure(params)
        assert all(not leaf.any() for leaf in jax.tree.leaves(tree))


def test_progress_is_step_over_total_steps_and_needs_total_steps(tmp_path):
    module = load(export(parse(DECAY), "optax"), tmp_path, "decay_optax")
    with pytest.raises(ValueError, match="total_steps"):
        module.optimizer(0.1)
    optimizer = module.optimizer(0.1, total_steps=4)
    weights, state = jnp.zeros(2), optimizer.init(jnp.zeros(2))
    for _ in range(4):
        updates, state = optimizer.update(jnp.ones(2), state, weights)
        weights = optax.apply_updates(weights, updates)
    # steps 1..4 move by 0.1 * (1 - step / 4): 0.075 + 0.05 + 0.025 + 0
    np.testing.assert_allclose(weights, [-0.15, -0.15], rtol=1e-6)


# --- torch ------------------------------------------------------------------------------

def train_torch(make_optimizer, steps: int = 200):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    params = [torch.tensor(a, requires_grad=True) for a in
              (rng.normal(size=(4, 8)) / 2, rng.normal(size=8) / 10,
               rng.normal(size=(8, 1)) / 3, np.zeros(1))]
    x = torch.tensor(rng.normal(size=(32, 4)))
    y = torch.sin(x @ torch.tensor(rng.normal(size=(4, 1))))
    optimizer = make_optimizer(params)

    def closure():
        optimizer.zero_grad()
        hidden = torch.tanh(x @ params[0] + params[1])
        loss = torch.mean((hidden @ params[2] + params[3] - y) ** 2)
        loss.backward()
        return loss

    first = closure().item()
    for _ in range(steps):
        loss = optimizer.step(closure)
    assert loss.item() < 0.75 * first, "the run must actually train"
    return [p.detach().numpy() for p in params]


@pytest.mark.parametrize("name", ["adamw", "sgd"])
def test_torch_export_trains_like_the_torch_optimizer(tmp_path, name):
    torch = pytest.importorskip("torch")
    references = {
        "adamw": lambda params: torch.optim.AdamW(params, lr=1e-2, betas=(0.9, 0.999),
                                                  eps=1e-8, weight_decay=0.01),
        "sgd": lambda params: torch.optim.SGD(params, lr=1e-2),
    }
    exported = getattr(load(export(example(name), "torch"), tmp_path, f"{name}_torch"),
                       name.capitalize())
    assert issubclass(exported, torch.optim.Optimizer)
    trained = train_torch(lambda params: exported(params, lr=1e-2))
    for got, want in zip(trained, train_torch(references[name])):
        assert np.linalg.norm(got - want) <= 1e-5 * np.linalg.norm(want)


def test_torch_progress_needs_total_steps(tmp_path):
    torch = pytest.importorskip("torch")
    decay = load(export(parse(DECAY), "torch"), tmp_path, "decay_torch").Decay
    weights = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    with pytest.raises(ValueError, match="total_steps"):
        decay([weights], lr=0.1)
    optimizer = decay([weights], lr=0.1, total_steps=4)
    for _ in range(4):
        weights.grad = torch.ones(2, dtype=torch.float64)
        optimizer.step()
    np.testing.assert_allclose(weights.detach().numpy(), [-0.15, -0.15], rtol=1e-12)


# --- self-contained ------------------------------------------------------------------------

IMPORT_CHECK = """
import importlib.util
import sys

DISCO = {"dsl", "populations", "discovery", "cluster"}


class RefuseDisco:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in DISCO:
            raise ImportError(f"the exported module imports {name}")


assert not DISCO & set(sys.modules), "disco was imported before the check"
sys.meta_path.insert(0, RefuseDisco())
for index, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"exported_{index}", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
leaked = DISCO & {name.partition(".")[0] for name in sys.modules}
assert not leaked, leaked
"""


def run_import_check(paths: list[Path], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", IMPORT_CHECK, *map(str, paths)], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_exported_modules_import_no_disco_module(tmp_path):
    pytest.importorskip("torch")  # the torch export imports torch (the `torch` extra)
    program = example("adamw")
    paths = []
    for fmt in FORMATS:
        paths.append(tmp_path / f"adamw_{fmt}.py")
        paths[-1].write_text(export(program, fmt))
    result = run_import_check(paths, tmp_path)
    assert result.returncode == 0, result.stderr


def test_the_import_check_catches_a_module_that_imports_disco(tmp_path):
    path = tmp_path / "leaky.py"
    path.write_text(export(example("sgd"), "numpy") + "\nimport dsl.ops\n")
    result = run_import_check([path], tmp_path)
    assert result.returncode != 0 and "imports dsl" in result.stderr


# --- errors ------------------------------------------------------------------------------

def test_unknown_format_names_the_valid_ones():
    with pytest.raises(ValueError, match="numpy, jax, optax, torch"):
        export(example("sgd"), "tensorflow")


@pytest.mark.parametrize("fmt", ["optax", "torch"])
def test_optimizer_formats_refuse_programs_that_do_not_fit_the_slot(fmt):
    no_state_output = parse("def bad(w, g, m, lr):\n    update = lr * g\n    return update\n")
    with pytest.raises(ProgramError, match="must return"):
        export(no_state_output, fmt)


def test_the_module_docstring_holds_the_simplified_program_under_the_export_name():
    program = parse(DEAD_WEIGHT)
    for fmt in FORMATS:
        docstring = export(program, fmt, name="run_c7").split('"""')[1]
        simplified = to_text(simplify(program)).splitlines()
        assert simplified[0].replace("dead_weight", "run_c7") in docstring, fmt
        assert "w * w" not in docstring and len(simplified) < len(to_text(program).split("\n"))


# --- every format computes what the program computes: shipped programs and mutants ---------

DEAD_WEIGHT = """
def dead_weight(w, g, m, lr):
    unused = w * w
    m = interp(g, m, 0.9)
    update = lr * m
    return update, m
"""


def random_inputs(program: Program, seed: int) -> dict[str, np.ndarray]:
    """Float64 arrays of shape (3, 4) for the array inputs, 0-d arrays for the scalars."""
    rng = np.random.default_rng(seed)
    scalars = {"lr": 0.1, "step": float(STEP), "progress": STEP / 12}
    slot = slot_of(program)
    return {p: np.asarray(scalars.get(p, 0.5)) if p in slot.scalar_inputs
            else rng.normal(size=(3, 4)) + (1.5 if p == "ratio" else 0.0)
            for p in program.params}


ALIASING = [  # state that torch may overwrite in place, shared or passed between variables
    "def swap(w, g, m, v, lr):\n    update = lr * g\n    return update, v, m\n",
    "def twice(w, g, m, v, lr):\n    n = interp(g, m, 0.9)\n    update = lr * (n + v)\n"
    "    return update, n, n\n",
    "def keep(w, g, m, v, lr):\n    n = interp(m, v, 0.5)\n    update = lr * n\n"
    "    return update, m, n\n",
]


def mutants() -> list[Program]:
    """Programs a search would meet: each shipped program, 60 mutation chains of them, and
    programs whose state variables share or pass on their values."""
    rng = np.random.default_rng(12)
    shipped = [library.program(name) for name in library.names()]
    chains = [mutation_chain(shipped[i % len(shipped)], rng, 1 + i % 8) for i in range(60)]
    return shipped + chains + [parse(text) for text in ALIASING]


def assert_outputs(got, want, what: str, rtol: float = 1e-9) -> None:
    assert len(got) == len(want), what
    for index, (a, b) in enumerate(zip(got, want)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=1e-12,
                                   equal_nan=True, err_msg=f"{what}, output {index}")


def one_optax_step(module: ModuleType, program: Program, inputs: dict) -> tuple:
    """The update and new state of one optax step from state `inputs`, per leaf of a pytree
    of two leaves (the second one twice the first)."""
    leaves = lambda name: {"a": jnp.asarray(inputs[name]), "b": 2 * jnp.asarray(inputs[name])}
    state_names = OPTIMIZER.state_names(program)
    optimizer = module.optimizer(float(inputs["lr"]), total_steps=12)
    state = optimizer.init(leaves("w"))
    state = state._replace(count=jnp.asarray(STEP - 1, jnp.int32),
                           **{f: leaves(s) for f, s in zip(state._fields[1:], state_names)})
    updates, new_state = optimizer.update(leaves("g"), state, leaves("w"))
    return updates, [getattr(new_state, f) for f in new_state._fields[1:]]


def test_every_format_computes_what_the_program_computes_on_shipped_programs_and_mutants(
        tmp_path):
    torch = pytest.importorskip("torch")
    with jax.enable_x64(True), np.errstate(all="ignore"):
        for index, program in enumerate(mutants()):
            what = f"#{index}\n{program}"
            inputs = random_inputs(program, index)
            want = evaluate(program, inputs)
            numpy = load(export(program, "numpy"), tmp_path, f"m{index}_numpy")
            got = numpy.__dict__[program.name](**inputs)
            assert_outputs(got if len(want) > 1 else (got,), want, what)
            jax_module = load(export(program, "jax"), tmp_path, f"m{index}_jax")
            got = jax_module.__dict__[program.name](**{k: jnp.asarray(v)
                                                       for k, v in inputs.items()})
            assert_outputs(got if len(want) > 1 else (got,), evaluate(program, inputs, xp=jnp),
                           what)
            if slot_of(program) != OPTIMIZER:
                continue
            jax_want = [evaluate(program, inputs | {p: s * inputs[p] for p in program.params
                                                    if p not in OPTIMIZER.scalar_inputs},
                                 xp=jnp) for s in (1.0, 2.0)]
            updates, states = one_optax_step(load(export(program, "optax"), tmp_path,
                                                  f"m{index}_optax"), program, inputs)
            for leaf, expected in zip("ab", jax_want):
                assert_outputs([-updates[leaf], *(s[leaf] for s in states)], expected,
                               f"optax leaf {leaf}, {what}")
            module = load(export(program, "torch"), tmp_path, f"m{index}_torch")
            before = inputs
            for step, (weights, states) in enumerate(torch_step(module, program, inputs, 12,
                                                                steps=2)):
                # each step from the state the previous one left, which carries it over
                tensors = {k: torch.tensor(v, dtype=torch.float64) for k, v in before.items()}
                torch_want = [t.numpy() for t in evaluate(program, tensors, xp=torch)]
                assert_outputs([before["w"] - weights, *states],
                               [before["w"] - (before["w"] - torch_want[0]), *torch_want[1:]],
                               f"torch step {step + 1}, {what}")
                state_names = OPTIMIZER.state_names(program)
                before = before | {"w": weights, **dict(zip(state_names, states))} | {
                    k: np.asarray(v) for k, v in (("step", STEP + step + 1.0),
                                                  ("progress", (STEP + step + 1) / 12))
                    if k in before}


PADDING = re.compile(r"\*\s*0(\.0*)?(?![\d.eE])|zeros \+|\+ zeros")


def test_exports_hold_no_padding_arithmetic():
    for index, program in enumerate(mutants()):
        formats = FORMATS if slot_of(program) == OPTIMIZER else ("numpy", "jax")
        for fmt in formats:
            source = export(program, fmt)
            assert not PADDING.search(source), f"{fmt}\n{source}"
    assert PADDING.search("zeros_like(w * 0 + g * 0)") and not PADDING.search("x * 0.9")


def test_a_constant_result_is_a_full_array_and_constants_are_literals(tmp_path):
    program = parse("def const(w, g, lr):\n    update = 0.5\n    return update\n")
    source = export(program, "numpy")
    assert "update = np.full_like(w, 0.5)" in source
    np.testing.assert_array_equal(load(source, tmp_path, "const").const(np.ones((2, 3)),
                                                                         np.ones((2, 3)), 0.1),
                                  np.full((2, 3), 0.5))
    assert "0.9 * m" in export(parse(DEAD_WEIGHT), "jax")


def test_a_reduction_of_a_scalar_sees_the_broadcast_array(tmp_path):
    program = parse("def scaled(w, g, lr):\n    update = norm(lr) * g\n    return update\n")
    inputs = {"w": np.ones((2, 3)), "g": np.ones((2, 3)), "lr": np.asarray(0.5)}
    module = load(export(program, "numpy"), tmp_path, "scaled")
    np.testing.assert_allclose(module.scaled(**inputs), evaluate(program, inputs)[0])
    np.testing.assert_allclose(module.scaled(**inputs), np.sqrt(6) * 0.5)


def test_an_unread_weight_is_not_needed_by_optax_update(tmp_path):
    program = parse(DEAD_WEIGHT)
    module = load(export(program, "optax", name="run_c3"), tmp_path, "run_c3")
    optimizer = module.optimizer(0.1)
    grads = {"a": jnp.ones(3), "b": jnp.arange(2.0)}
    updates, state = optimizer.update(grads, optimizer.init(grads))  # no params
    for leaf in grads:
        want = evaluate(program, {"w": grads[leaf], "g": grads[leaf], "m": 0 * grads[leaf],
                                  "lr": 0.1})
        np.testing.assert_allclose(-updates[leaf], want[0], rtol=1e-6)
        np.testing.assert_allclose(state.m[leaf], want[1], rtol=1e-6)
    with pytest.raises(ValueError, match="reads the weights"):
        load(export(example("adamw"), "optax"), tmp_path, "adamw_w").optimizer(0.1).update(
            grads, optimizer.init(grads))


def test_exports_are_named_by_the_name_given(tmp_path):
    program = example("sgd")
    sources = {fmt: export(program, fmt, name="quickstart_c123") for fmt in FORMATS}
    assert "def quickstart_c123(w, g, lr):" in sources["numpy"]
    assert "class QuickstartC123State(NamedTuple):" in sources["optax"]
    assert "class QuickstartC123(torch.optim.Optimizer):" in sources["torch"]
    assert not any(re.search(r"\bsgd\b|Sgd", source) for source in sources.values())
    with pytest.raises(ValueError, match="identifier"):
        export(program, "numpy", name="run-1")


def test_torch_has_a_default_learning_rate_and_sgd_steps_in_place(tmp_path):
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        """Records every aten op called."""

        def __init__(self):
            super().__init__()
            self.called: list[str] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.called.append(func.__name__)
            return func(*args, **(kwargs or {}))

    sgd = load(export(example("sgd"), "torch"), tmp_path, "sgd_default").Sgd
    weights = torch.ones(4, requires_grad=True)
    weights.grad = torch.full((4,), 2.0)
    optimizer = sgd([weights])  # lr defaults
    assert optimizer.defaults["lr"] == 1e-3
    optimizer.step()
    with Ops() as ops:
        optimizer.step()
    called = [op for op in ops.called if "record_function" not in op]  # the profiler's
    assert called == ["add_.Tensor"]  # in place: no tensor made per step
    np.testing.assert_allclose(weights.detach().numpy(), 1 - 2 * 2e-3 * np.ones(4),
                               rtol=1e-6)

    momentum = load(export(example("momentum"), "torch"), tmp_path, "momentum_ops").Momentum
    optimizer = momentum([weights], lr=0.1)
    optimizer.step()
    with Ops() as ops:
        optimizer.step()
    called = [op for op in ops.called if "record_function" not in op]
    assert called and all(op.partition(".")[0].endswith("_") for op in called), called


def test_a_stored_candidate_is_named_after_its_run_and_id():
    from disco_rules.export import export_name

    assert export_name("runs/quickstart-20261201-213000", 12) == "quickstart_20261201_213000_c12"
    assert export_name("/tmp/2026 run", 3) == "run_2026_run_c3"  # a name starts with a letter
    source = export(example("sgd"), "optax", name=export_name("runs/My-Run", 7))
    assert "class MyRunC7State" in source and "Sgd" not in source
