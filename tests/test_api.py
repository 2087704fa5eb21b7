"""The Python API: launch, open a run, read candidates, export and train with a winner."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import disco_rules
from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.config import ConfigError, config_text, load_config, parse_config
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.plan import TaskPlan
from disco_rules.dsl.evaluate import evaluate
from disco_rules.dsl.simplify import simplify
from tests.configs import config_variant

TINY = """
seed = 3
generations = 2

[population]
size = 6
tournament = 2
children = 4
warm_start = ["sgd", "adam"]
max_statements = 16

[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
train = [{ family = "quadratic", dim = 4, horizon = 12 }]
heldout = [{ family = "mlp_regression", in_dim = 2, width = 4, horizon = 12 }]

[validation]
every = 1
top = 2

[cluster]
batch_size = 6
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    pool = LocalPool(lambda: Evaluator(16))
    return disco_rules.launch(TINY, run_dir=tmp_path_factory.mktemp("api") / "run", pool=pool)


@pytest.mark.slow  # `run` is a whole 2-generation search
def test_launch_runs_the_generations_and_open_run_reads_them(run):
    status = disco_rules.open_run(run.run_dir).status()
    assert status.generations == 2 and status.finished
    assert status.candidates == 6 + 4  # the first population, then 4 children
    assert status.evaluated + status.cache_hits == status.candidates
    best = run.top(1)[0]
    assert status.best_validated == (best.id, pytest.approx(best.validation_score))


@pytest.mark.slow
def test_top_ranks_by_meta_validation_and_candidates_carry_their_scores(run):
    top = run.top(3)
    scores = [c.validation_score for c in top]
    assert scores == sorted(scores, reverse=True) and all(s is not None for s in scores)
    first = top[0]
    heldout = TaskPlan.from_config(run.config).heldout
    assert set(first.validation) == {task.key for task in heldout}
    assert set(first.scores) >= {task.key for task in TaskPlan.from_config(run.config).train}
    assert first.lineage[0] == first.id
    again = run.candidate(first.id)
    assert again.program == first.program and again.scores == first.scores
    by_fitness = run.top(3, by="fitness")
    fits = [c.fitness for c in by_fitness]
    assert fits == sorted(fits, reverse=True)


@pytest.mark.slow
def test_a_candidate_is_a_live_optax_transformation_equal_to_its_program(run):
    best = run.top(1)[0]
    program = best.simplify()
    tx = best.optax(learning_rate=0.05)
    assert isinstance(tx, optax.GradientTransformation)
    # one step on random inputs matches the program evaluated directly (update subtracted)
    rng = np.random.default_rng(0)
    w = {"x": jnp.asarray(rng.normal(size=5), jnp.float32)}
    g = {"x": jnp.asarray(rng.normal(size=5), jnp.float32)}
    updates, _ = tx.update(g, tx.init(w), w)
    inputs = {"w": np.asarray(w["x"]), "g": np.asarray(g["x"]), "lr": 0.05, "step": 1.0,
              "progress": 0.0}
    state = {p: np.zeros(5) for p in program.params if p not in inputs}
    expected = evaluate(program, {**inputs, **state})[0]
    np.testing.assert_allclose(np.asarray(updates["x"]), -expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_winner_trains_a_quadratic_with_optax(run):
    tx = run.top(1)[0].optax(learning_rate=0.05)
    target = jnp.arange(4.0)
    loss = jax.jit(lambda p: jnp.sum((p["x"] - target) ** 2))
    params = {"x": jnp.zeros(4)}
    state = tx.init(params)
    start = float(loss(params))
    for _ in range(50):
        updates, state = tx.update(jax.grad(loss)(params), state, params)
        params = optax.apply_updates(params, updates)
    assert float(loss(params)) < 0.5 * start


@pytest.mark.slow
def test_export_is_a_module_named_after_the_run_and_candidate(run):
    best = run.top(1)[0]
    source = best.export("numpy")
    assert f"def {best.name}(" in source and "disco_rules" not in source
    assert best.name == f"run_c{best.id}"
    assert simplify(best.program) == best.simplify()


def test_program_parse_is_the_parser():
    program = disco_rules.Program.parse("def p(w, g, lr):\n    return lr * g\n")
    assert program.params == ("w", "g", "lr") and len(program.body) == 1
    with pytest.raises(disco_rules.ProgramError, match="line 2"):
        disco_rules.Program.parse("def p(w, g):\n    return open(g)\n")


def test_importing_the_namespace_loads_neither_jax_nor_ray():
    code = ("import sys, disco_rules; disco_rules.Program; "
            "assert 'jax' not in sys.modules and 'ray' not in sys.modules, 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", ["quickstart", "adamw_search", "regret_search",
                                  "ta_lpo_cartpole", "lpo_cartpole", "optimizer_search"])
def test_a_config_written_back_as_toml_reads_the_same(name):
    from pathlib import Path

    config, _ = load_config(Path(__file__).parents[1] / "examples" / f"{name}.toml")
    assert parse_config(config_text(config)) == config


@pytest.mark.slow  # a whole 1-generation search
def test_launch_takes_a_config_object_and_rejects_bad_generations(tmp_path):
    config = parse_config(TINY)
    with pytest.raises(ConfigError, match="generations: expected a positive integer"):
        disco_rules.launch(config, run_dir=tmp_path / "r", generations=0)
    assert not (tmp_path / "r").exists()
    run = disco_rules.launch(config, run_dir=tmp_path / "r", generations=1,
                             pool=LocalPool(lambda: Evaluator(16)))
    assert run.status().generations == 1 and run.config.generations == 1


@pytest.mark.slow  # three whole 1-generation searches
def test_a_seed_override_is_the_config_with_that_seed(tmp_path):
    """launch(seed=7) runs, stores and reproduces exactly what a config saying seed = 7 does."""
    def texts(run):
        return [(c.record.text, c.fitness) for c in run.top(100, by="fitness")]

    with pytest.raises(ConfigError, match="seed: expected a non-negative integer"):
        disco_rules.launch(TINY, run_dir=tmp_path / "bad", seed=-1)
    assert not (tmp_path / "bad").exists()
    overridden = disco_rules.launch(TINY, run_dir=tmp_path / "a", generations=1, seed=7,
                                    pool=LocalPool(lambda: Evaluator(16)))
    assert overridden.config.seed == 7
    written = disco_rules.launch(config_variant(TINY, {"seed": 7}), run_dir=tmp_path / "b",
                                 generations=1, pool=LocalPool(lambda: Evaluator(16)))
    original = disco_rules.launch(TINY, run_dir=tmp_path / "c", generations=1,
                                  pool=LocalPool(lambda: Evaluator(16)))
    assert texts(overridden) == texts(written) != texts(original)


@pytest.mark.slow
def test_a_run_reads_while_another_process_writes_it(run):
    from disco_rules.discovery.store import RunStore

    with RunStore.open(run.run_dir, write=True):  # the writer's lock is held
        assert disco_rules.open_run(run.run_dir).status().generations == 2
        assert run.top(1)[0].validation_score is not None


@pytest.mark.slow  # two whole 1-generation searches
def test_all_inputs_gives_the_warm_starts_every_slot_input(tmp_path):
    """With population.all_inputs the stored warm starts declare step and progress (SGD reads
    neither), and the search still starts from programs that compute SGD's update."""
    from disco_rules.dsl.parser import parse

    text = config_variant(TINY, {"population.all_inputs": True})
    run = disco_rules.launch(text, run_dir=tmp_path / "r", generations=1,
                             pool=LocalPool(lambda: Evaluator(16)))
    stored = {program.name: program for program in
              (parse(path.read_text()) for path in (tmp_path / "r" / "warm_start").glob("*.py"))}
    assert stored["sgd"].params == ("w", "g", "lr", "step", "progress")
    assert stored["adam"].params[-1] == "progress"
    plain = disco_rules.launch(TINY, run_dir=tmp_path / "p", generations=1,
                               pool=LocalPool(lambda: Evaluator(16)))
    # the warm starts compute the same updates, so they score the same
    assert run.candidate(0).scores == plain.candidate(0).scores
    assert "progress" not in parse((tmp_path / "p" / "warm_start" / "00-sgd.py").read_text()).params
