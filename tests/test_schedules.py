"""Learning-rate schedules: the factor against optax's schedules, a program reading the
scheduled lr against optax's own scheduled optimizer, AdamW tuned over schedules, the config
keys and the archive's record of the baseline's schedule."""

import json
import math
import sqlite3
from contextlib import closing

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disco_rules.discovery.cli import main
from disco_rules.discovery.config import ConfigError, parse_config
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner import schedules
from disco_rules.discovery.inner.schedules import CONSTANT, Point, Schedule, grid
from disco_rules.discovery.inner.train import (TrainResult, evaluate_population, lr_scores,
                                               make_optax_train, tuned_adamw)
from disco_rules.discovery.store import (ARCHIVE_NAME, SCHEMA_VERSION, BaselineRecord,
                                         CandidateRecord, RunStore, ScoreRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.dsl import library
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.printer import to_text

HORIZON = 40
COUNTS = np.arange(0, HORIZON + 5)


@pytest.mark.parametrize("schedule, reference", [
    (CONSTANT, optax.constant_schedule(0.3)),
    (Schedule("cosine", 0.0, 0.1), optax.cosine_decay_schedule(0.3, HORIZON, alpha=0.1)),
    (Schedule("cosine", 0.0, 0.0), optax.cosine_decay_schedule(0.3, HORIZON)),
    (Schedule("warmup_cosine", 0.25, 0.0),
     optax.warmup_cosine_decay_schedule(0.0, 0.3, 10, HORIZON, 0.0)),
    (Schedule("warmup_cosine", 0.1, 0.2),
     optax.warmup_cosine_decay_schedule(0.0, 0.3, 4, HORIZON, 0.3 * 0.2)),
])
def test_a_point_schedules_its_lr_as_optax_does(schedule, reference):
    lr_at = Point(0.3, schedule.warmup, schedule.final).lr_at(HORIZON)
    np.testing.assert_allclose([float(lr_at(c)) for c in COUNTS],
                               [float(reference(c)) for c in COUNTS], rtol=1e-5, atol=1e-7)


def test_closed_forms_of_the_factor():
    assert float(schedules.factor(0, 100, 0.0, 0.0)) == 1.0  # cosine starts at the peak
    assert float(schedules.factor(50, 100, 0.0, 0.0)) == pytest.approx(0.5)  # half-way: 1/2
    assert float(schedules.factor(100, 100, 0.0, 0.1)) == pytest.approx(0.1)  # ends at final
    assert float(schedules.factor(5, 100, 0.1, 0.0)) == pytest.approx(0.5)  # half the warm-up
    assert float(schedules.factor(77, 100, 0.0, 1.0)) == 1.0  # constant, exactly


def test_the_grid_is_lr_major_and_one_schedule_keeps_the_lr_order():
    cosine = Schedule("cosine", 0.0, 0.0)
    points = grid([0.1, 0.01], (CONSTANT, cosine))
    assert points.lr.tolist() == pytest.approx([0.1, 0.1, 0.01, 0.01])
    assert points.final.tolist() == [1.0, 0.0, 1.0, 0.0]
    assert schedules.schedule_of(3, (CONSTANT, cosine)) == cosine
    assert [schedules.lr_of(k, [0.1, 0.01], (CONSTANT, cosine)) for k in range(4)] == \
        pytest.approx(points.lr.tolist())
    assert grid([0.1, 0.01, 0.001]).lr.tolist() == pytest.approx([0.1, 0.01, 0.001])


TASK = Task.make("quadratic", dim=8, horizon=HORIZON)
KEYS = task_keys(TASK, 2, 0)
ENCODING = Encoding(max_statements=8)


def test_a_program_reads_the_scheduled_lr():
    """SGD as a program under a cosine schedule trains exactly as optax.sgd with optax's
    cosine schedule, and differently from SGD at a constant lr."""
    sgd = ENCODING.encode_population([library.program("sgd")])
    cosine = Schedule("cosine", 0.0, 0.1)
    ours = TrainResult(*(np.asarray(x) for x in evaluate_population(
        TASK, ENCODING, sgd, [0.05], KEYS, schedules=(cosine,))))
    train = make_optax_train(TASK, lambda lr: optax.sgd(
        optax.cosine_decay_schedule(lr, HORIZON, alpha=0.1)))
    reference = jax.jit(jax.vmap(train, in_axes=(None, 0)))(0.05, KEYS)
    np.testing.assert_allclose(ours.curve[0, 0], np.asarray(reference.curve), rtol=2e-5)
    constant = TrainResult(*(np.asarray(x) for x in evaluate_population(
        TASK, ENCODING, sgd, [0.05], KEYS)))
    assert not np.allclose(constant.final_loss, ours.final_loss, rtol=1e-3)


@pytest.mark.slow  # tunes AdamW over lr, decay and schedule grids
def test_adamw_tuned_over_schedules_is_optax_adamw_at_its_chosen_point():
    lrs, decays = (0.003, 0.03, 0.3), (0.0, 0.01)
    cosine = Schedule("cosine", 0.0, 0.0)
    both = tuned_adamw(TASK, lrs, decays, KEYS, schedules=(CONSTANT, cosine))
    constant = tuned_adamw(TASK, lrs, decays, KEYS)
    assert constant.schedule == "constant"
    assert math.log(both.loss) <= math.log(constant.loss) + 1e-6  # a superset of the grid
    chosen = cosine if both.schedule == "cosine" else CONSTANT
    train = make_optax_train(TASK, lambda lr: optax.adamw(
        optax.cosine_decay_schedule(lr, HORIZON, alpha=chosen.final)
        if chosen.name == "cosine" else lr, weight_decay=both.weight_decay))
    reference = jax.jit(jax.vmap(train, in_axes=(None, 0)))(both.lr, KEYS)
    expected = math.exp(float(lr_scores(TrainResult(*(np.asarray(x)[None] for x in
                                                      reference)))[0]))
    assert both.loss == pytest.approx(expected, rel=1e-4)


def test_schedule_config_keys():
    tasks = parse_config('[tasks]\nschedule = "warmup_cosine"\nwarmup = 0.1\nfinal_lr = 0.05\n'
                         ).tasks
    assert tasks.candidate_schedules == (Schedule("warmup_cosine", 0.1, 0.05),)
    assert tasks.baseline_schedule_grid == (CONSTANT, Schedule("cosine", 0.0, 0.05),
                                            Schedule("warmup_cosine", 0.1, 0.05))
    both = parse_config('[tasks]\nschedule = ["cosine", "constant"]\n').tasks
    assert both.candidate_schedules == (Schedule("cosine", 0.0, 0.0), CONSTANT)
    assert [s.name for s in both.baseline_schedule_grid] == ["constant", "cosine"]
    defaults = parse_config("").tasks
    assert defaults.candidate_schedules == (CONSTANT,)
    assert [s.name for s in defaults.baseline_schedule_grid] == ["constant", "cosine"]
    for text, key in [('[tasks]\nschedule = "linear"\n', "tasks.schedule"),
                      ('[tasks]\nschedule = ["cosine", "linear"]\n', r"tasks.schedule\[1\]"),
                      ('[tasks]\nschedule = ["cosine", "cosine"]\n', "at most once"),
                      ("[tasks]\nschedule = []\n", "tasks.schedule"),
                      ('[tasks]\nbaseline_schedules = ["cosine", "step"]\n',
                       r"tasks.baseline_schedules\[1\]"),
                      ("[tasks]\nwarmup = 1.0\n", "tasks.warmup"),
                      ("[tasks]\nfinal_lr = -0.1\n", "tasks.final_lr"),
                      ("[tasks]\nbaseline_schedules = []\n", "tasks.baseline_schedules")]:
        with pytest.raises(ConfigError, match=key):
            parse_config(text)


def test_the_archive_records_the_baselines_schedule(tmp_path):
    with RunStore.create(tmp_path / "run", "seed = 0\n") as store:
        store.add_baseline(BaselineRecord(task="t", score=0.0, loss=0.5, lr=0.1,
                                          optimizer="adamw", weight_decay=0.01, seeds=2,
                                          schedule="cosine"))
    with RunStore.open(tmp_path / "run", write=False) as reader:
        assert reader.baseline("t").schedule == "cosine"
        assert reader.baseline("t").name == "adamw(lr=0.1, wd=0.01, cosine)"


def test_scores_record_their_schedule_and_schema_6_archives_gain_the_column(tmp_path):
    with RunStore.create(tmp_path / "run", "seed = 0\n") as store:
        store.add_generation(0, [CandidateRecord(id=1, generation=0, parent_id=None,
                                                 kind="programs", text="x", hash="h",
                                                 fitness=0.1, status="ok")],
                             [ScoreRecord(candidate_id=1, task="t", score=0.1, lr=0.01,
                                          schedule="cosine")])
    with RunStore.open(tmp_path / "run", write=False) as reader:
        assert [(s.lr, s.schedule) for s in reader.scores_of(1)] == [(0.01, "cosine")]
    with closing(sqlite3.connect(tmp_path / "run" / ARCHIVE_NAME)) as db:  # as schema 6 wrote it
        db.executescript("ALTER TABLE scores DROP COLUMN schedule; PRAGMA user_version = 6;")
    with RunStore.open(tmp_path / "run", write=False) as reader:
        assert [(s.lr, s.schedule) for s in reader.scores_of(1)] == [(0.01, None)]
        assert reader.query("PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_inspect_shows_a_candidates_lr_with_its_schedule(tmp_path, capsys):
    with RunStore.create(tmp_path / "run", "seed = 0\n") as store:
        store.add_generation(0, [CandidateRecord(id=0, generation=0, kind="programs",
                                                 text=to_text(library.program("sgd")),
                                                 hash="h", fitness=0.1, status="ok")],
                             [ScoreRecord(candidate_id=0, task="a", score=0.1, loss=0.5,
                                          lr=0.01, schedule="cosine"),
                              ScoreRecord(candidate_id=0, task="b", score=0.2, loss=0.4,
                                          lr=0.1, schedule="constant")])
    assert main(["inspect", f"{tmp_path / 'run'}:0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[-1] for line in lines if ": score " in line] == \
        ["lr 0.01 cosine", "lr 0.1"]  # constant is the default, unsaid
    assert main(["inspect", f"{tmp_path / 'run'}:0", "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert (scores["a"]["schedule"], scores["b"]["schedule"]) == ("cosine", "constant")


def test_an_archive_of_schema_4_gains_the_schedule_column(tmp_path):
    with RunStore.create(tmp_path / "run", "seed = 0\n") as store:
        store.add_baseline(BaselineRecord(task="t", score=0.0, loss=0.5, lr=0.1,
                                          optimizer="adam", weight_decay=0.0, seeds=2))
        store.add_baseline(BaselineRecord(task="rl", score=200.0, lr=0.003))
    with closing(sqlite3.connect(tmp_path / "run" / ARCHIVE_NAME)) as db:  # as schema 4 wrote it
        db.executescript("ALTER TABLE baselines DROP COLUMN schedule; PRAGMA user_version = 4;")
    with RunStore.open(tmp_path / "run", write=False) as reader:
        assert reader.baseline("t").schedule == "constant"  # what schema 4 trained with
        assert reader.baseline("rl").schedule is None
