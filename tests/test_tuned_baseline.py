"""The baseline deserves to be beaten: AdamW tuned over lr x weight decay (0: Adam) on more
seeds than a candidate gets, archived with its optimizer and weight decay; a candidate is
scored against the best of the grid; archives of schema 3 still open and migrate."""

import math
import sqlite3
from contextlib import closing

import jax
import numpy as np
import optax
import pytest

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.cli import main
from disco_rules.discovery.baselines import BaselineError, ensure_baselines
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.evaluator import Evaluator, task_keys
from disco_rules.discovery.inner.train import (evaluate_population, fitness, make_optax_train,
                                               tuned_adamw)
from disco_rules.discovery.store import (ARCHIVE_NAME, SCHEMA_VERSION, BaselineRecord,
                                         CandidateRecord, RunStore)
from disco_rules.discovery.tasks import Task
from disco_rules.dsl import library
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse

TASK = Task.make("tabular", dataset="wine", width=8, depth=1, batch_size=8, horizon=80)
LRS = (3e-3, 3e-2, 3e-1)
DECAYS = (0.0, 1e-2, 3e-1)
KEYS = jax.random.split(jax.random.PRNGKey(5), 3)


def log_losses(make_optimizer) -> dict[float, np.ndarray]:
    """An independent reference: optax's own optimizer (weight decay a constant), log final
    loss per seed at each lr."""
    train = jax.jit(jax.vmap(make_optax_train(TASK, make_optimizer), in_axes=(None, 0)))
    return {lr: np.log(np.asarray(train(np.float32(lr), KEYS).final_loss, np.float64))
            for lr in LRS}


@pytest.mark.slow  # tunes Adam/AdamW over the grid twice: by disco and by optax itself
def test_the_tuned_baseline_is_the_best_point_of_the_grid_by_optax_itself():
    tuned = tuned_adamw(TASK, LRS, DECAYS, KEYS)
    per_seed = {}
    for wd in DECAYS:
        make = optax.adam if wd == 0 else (lambda lr, wd=wd: optax.adamw(lr, weight_decay=wd))
        per_seed.update({(lr, wd): value for lr, value in log_losses(make).items()})
    reference = {point: float(np.mean(values)) for point, values in per_seed.items()}
    best_lr, best_wd = min(reference, key=reference.get)
    assert (tuned.lr, tuned.weight_decay) == pytest.approx((best_lr, best_wd))
    assert tuned.optimizer == ("adam" if best_wd == 0 else "adamw")
    assert tuned.loss == pytest.approx(math.exp(reference[best_lr, best_wd]), rel=1e-3)
    assert tuned.curve.shape == (20,) and tuned.curve[-1] < tuned.curve[0]
    # the grid is not flat: tuning the weight decay changes the loss at the best lr
    assert max(reference[best_lr, wd] for wd in DECAYS) > reference[best_lr, best_wd] + 0.01
    # paired with a candidate's seeds: the point chosen on all seeds, its loss on the first
    paired = tuned_adamw(TASK, LRS, DECAYS, KEYS, scored=2)
    assert (paired.lr, paired.weight_decay) == (tuned.lr, tuned.weight_decay)
    assert paired.loss == pytest.approx(
        math.exp(np.mean(per_seed[best_lr, best_wd][:2])), rel=1e-3)


@pytest.mark.slow  # tunes AdamW on a quadratic over three grids
def test_a_baseline_cut_short_by_the_grid_is_tuned_on_past_its_edge():
    """AdamW needs an lr far above a grid of 1e-5, 1e-4 on a quadratic: going up to two steps
    past the top edge finds the point (and loss, on the scored seeds) that tuning over the
    grid holding those lrs finds; a best point inside the grid is left alone."""
    task = Task.make("quadratic", dim=6, condition_number=10.0, horizon=20)
    narrow = tuned_adamw(task, (1e-5, 1e-4), DECAYS, KEYS, 2, past_edge=0)
    past = tuned_adamw(task, (1e-5, 1e-4), DECAYS, KEYS, 2, past_edge=2)
    wide = tuned_adamw(task, (1e-5, 1e-4, 1e-3, 1e-2), DECAYS, KEYS, 2)
    assert narrow.lr == pytest.approx(1e-4) and wide.lr == pytest.approx(1e-2)
    assert (past.lr, past.weight_decay) == pytest.approx((wide.lr, wide.weight_decay))
    assert past.loss == pytest.approx(wide.loss, rel=1e-5) and past.loss < narrow.loss
    inside = tuned_adamw(task, (0.3, 1.0, 3.0), DECAYS, KEYS, 2, past_edge=2)
    assert inside.lr == pytest.approx(1.0)
    assert inside.loss == pytest.approx(tuned_adamw(task, (0.3, 1.0, 3.0), DECAYS, KEYS,
                                                    2).loss)


@pytest.mark.slow  # trains a candidate and tunes two baseline grids
def test_a_candidate_is_scored_against_the_best_baseline_of_the_grid():
    encoding = Encoding(max_statements=16)
    adam = parse((library.PROGRAMS / "adam.py").read_text())
    population = encoding.encode_population([adam])
    result = jax.tree.map(lambda x: np.asarray(x)[0],
                          evaluate_population(TASK, encoding, population, LRS, KEYS))
    adam_only = tuned_adamw(TASK, LRS, (0.0,), KEYS)
    grid = tuned_adamw(TASK, LRS, DECAYS, KEYS)
    against_adam, _ = fitness(result, adam_only.loss)
    against_grid, _ = fitness(result, grid.loss)
    assert against_adam == pytest.approx(0.0, abs=2e-3)  # the program is Adam
    # the score is log(best baseline loss / candidate loss): Adam is in the grid, so it
    # cannot beat the grid's best, and scores exactly the log ratio of the two baselines
    assert against_grid == pytest.approx(math.log(grid.loss / adam_only.loss) + against_adam,
                                         abs=1e-6)
    assert against_grid <= against_adam + 1e-6


def test_the_first_baseline_that_fails_ends_the_batch_and_archives_nothing(tmp_path):
    """A family that fails (or hangs to its deadline) fails every task's baseline: the first
    failure is the error at once, the other tasks' baselines are not waited for."""
    tried = []

    def evaluator(item):
        tried.append(item.task.key)
        raise RuntimeError("the task's data file is missing")
    tasks = [Task.make("quadratic", dim=4), Task.make("quadratic", dim=6)]
    config = parse_config("seed = 3\n")
    store = RunStore.create(tmp_path / "run", "seed = 3\n")
    with pytest.raises(BaselineError, match=r"^the baseline on quadratic\(.*dim=4,.* failed: "
                                            r".*RuntimeError: the task's data file is missing$"):
        ensure_baselines(LocalPool(lambda: evaluator), store, config, config.ppo, tasks, 0)
    assert tried == [tasks[0].key]
    assert [store.baseline(task.key) for task in tasks] == [None, None]


@pytest.mark.slow  # tunes the baseline grid twice (through the pool and directly)
def test_baselines_are_tuned_on_more_seeds_and_archived_with_their_optimizer(tmp_path):
    config = parse_config("seed = 3\n[tasks]\nseeds = 1\nbaseline_seeds = 3\n"
                          f"lr_grid = {list(LRS)}\nwd_grid = {list(DECAYS)}\n")
    store = RunStore.create(tmp_path / "run", "seed = 3\n")
    pool = LocalPool(lambda: Evaluator(16))
    record = ensure_baselines(pool, store, config, config.ppo, [TASK], 0)[TASK.key]
    expected = tuned_adamw(TASK, LRS, DECAYS, task_keys(TASK, 3, 3), scored=1)
    assert (record.optimizer, record.lr, record.weight_decay, record.seeds) == \
        (expected.optimizer, pytest.approx(expected.lr), pytest.approx(expected.weight_decay), 3)
    assert record.loss == pytest.approx(expected.loss, rel=1e-5)
    assert record.name.startswith(f"{expected.optimizer}(lr=")
    # the candidate's seed is the baseline's first: keys are split consistently
    np.testing.assert_array_equal(task_keys(TASK, 1, 3), task_keys(TASK, 3, 3)[:1])
    store.close()
    with RunStore.open(tmp_path / "run", write=False) as reopened:
        assert reopened.baseline(TASK.key) == record


def test_baseline_config_keys_are_checked():
    for text, message in [("[tasks]\nwd_grid = [-0.1]\n", "tasks.wd_grid"),
                          ("[tasks]\nseeds = 3\nbaseline_seeds = 2\n", "tasks.baseline_seeds"),
                          ("[tasks]\nwd_grid = []\n", "tasks.wd_grid")]:
        with pytest.raises(ValueError, match=message):
            parse_config(text)
    assert parse_config("").tasks.seeds_of_baseline == 2  # defaults: the candidates' seeds


SGD = (library.PROGRAMS / "sgd.py").read_text()
SCHEMA_3_BASELINES = """
CREATE TABLE baselines_v3 (task TEXT PRIMARY KEY, generation INTEGER NOT NULL, score REAL,
                           loss REAL, lr REAL, curve BLOB);
INSERT INTO baselines_v3 SELECT task, generation, score, loss, lr, curve FROM baselines;
DROP TABLE baselines;
ALTER TABLE baselines_v3 RENAME TO baselines;
PRAGMA user_version = 3;
"""


def schema_3_run(path) -> None:
    """A run directory as the code of schema 3 wrote it: baselines without the optimizer."""
    store = RunStore.create(path, "seed = 1\n")
    store.add_baseline(BaselineRecord(task="t", score=0.0, loss=0.25, lr=0.01, curve=[1, 0.5]))
    store.add_baseline(BaselineRecord(task="rl", score=200.0, lr=0.003, curve=[10, 200]))
    store.add_generation(0, [CandidateRecord(id=0, generation=0, kind="programs", text=SGD,
                                             hash="h", fitness=0.1, status="ok")])
    store.save_checkpoint(0, {"generation": 0})
    store.close()
    with closing(sqlite3.connect(path / ARCHIVE_NAME)) as db:
        db.executescript(SCHEMA_3_BASELINES)
        columns = [row[1] for row in db.execute("PRAGMA table_info(baselines)")]
    assert columns == ["task", "generation", "score", "loss", "lr", "curve"]


def test_an_archive_of_schema_3_opens_to_inspect_and_resume(tmp_path, capsys):
    schema_3_run(tmp_path / "run")
    assert main(["inspect", str(tmp_path / "run")]) == 0  # the command line reads it
    assert "1 candidates archived" in capsys.readouterr().out
    with RunStore.open(tmp_path / "run", write=False) as reader:  # inspect, status, export
        old = reader.baseline("t")
        assert (old.optimizer, old.weight_decay, old.seeds) == ("adamw", 1e-4, None)
        assert old.schedule == "constant"  # schema 5: old baselines trained at a constant lr
        assert old.loss == 0.25 and old.curve == (1.0, 0.5)
        assert old.name == "adamw(lr=0.01, wd=0.0001)"
        rl = reader.baseline("rl")
        assert rl.optimizer is None and math.isnan(rl.weight_decay) and rl.name == ""
        assert rl.schedule is None
        assert reader.candidate(0).fitness == pytest.approx(0.1)
    with RunStore.open(tmp_path / "run") as writer:  # resume: rewind, then write on
        assert writer.query("PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert writer.rewind()[0] == 0
        writer.add_baseline(BaselineRecord(task="u", score=0.0, loss=0.5, lr=0.1,
                                           optimizer="adam", weight_decay=0.0, seeds=4), 1)
        writer.add_generation(1, [CandidateRecord(id=1, generation=1, kind="programs",
                                                  text=SGD, hash="h2", fitness=0.2,
                                                  status="ok", parent_id=0)])
        assert writer.baseline("u").name == "adam(lr=0.1)" and writer.baseline("u").seeds == 4
        assert [r.id for r in writer.lineage(1)] == [1, 0]
