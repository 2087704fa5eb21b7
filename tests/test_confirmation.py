"""A run's shortlist, then its chosen winner, is scored again on fresh seeds at its tuned
points, beside tuned AdamW at its own, the winner is the surest on the shortlist's seeds, and
the run's verdict is judged on the confirmation's: the scores against an independent
computation (the `disco transfer` protocol's trainers at the same one-point grids and keys),
the choice against the closed form, resume redoing what a kill cut off, the schema-7 and -8
migrations, and the verdict's words."""

from __future__ import annotations

import json
import math
import sqlite3

import numpy as np
import pytest

from disco_rules import api
from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.cli import main
from disco_rules.discovery.cli.summary import print_summary
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.evaluator import Evaluator, task_keys
from disco_rules.discovery.inner.schedules import named
from disco_rules.discovery.pareto import (awaiting_confirmation, awaiting_shortlist,
                                         chosen_winner, shortlist, validated_programs)
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.selection import surest
from disco_rules.discovery.store import (ARCHIVE_NAME, SCHEMA_VERSION, ConfirmationRecord,
                                         RunStore, ScoreRecord)
from disco_rules.discovery.transfer import Grid, tune_adamw, tune_programs
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify
from tests.configs import config_variant
from tests.test_search import programs
from tests.test_transfer_command import _validated_run, family_form

CONFIG = """
seed = 5
generations = 2
[population]
size = 6
tournament = 3
children = 4
max_statements = 16
[tasks]
seeds = 1
lr_grid = [0.01, 0.1]
wd_grid = [0.0, 0.01]
schedule = ["constant", "cosine"]
train = [{ family = "quadratic", dim = 4, horizon = 12 }]
heldout = [{ family = "quadratic", dim = 6, horizon = 12, condition_number = 10.0 },
           { family = "quadratic", dim = 3, horizon = 16 }]
[validation]
every = 1
top = 2
seeds = 2
confirmation_seeds = 3
[cluster]
batch_size = 8
"""


def _pool(config):
    return LocalPool(lambda: Evaluator(config.population.max_statements))


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run launched to its end in-process (warm starts sgd and adam), and its config."""
    config = parse_config(CONFIG)
    run_dir = tmp_path_factory.mktemp("confirmation") / "run"
    with api.create_run(run_dir, "test", CONFIG, programs("sgd", "adam")):
        pass
    api.resume(run_dir, pool=_pool(config), progress=False)
    return run_dir, config


@pytest.mark.slow  # `finished` runs a whole search, shortlist and confirmation
def test_the_winner_and_tuned_adamw_are_scored_at_their_points_on_fresh_seeds(finished):
    run_dir, config = finished
    with RunStore.open(run_dir, write=False) as store:
        chosen = chosen_winner(store)
        rows = store.confirmation_of(chosen.id)
        tuned = {row.task: row for row in store.scores_of(chosen.id)}
        baselines = {task.key: store.baseline(task.key)
                     for task in TaskPlan.from_config(config).heldout}
        program = simplify(parse(store.candidate(chosen.id).text))
        validation = {v.task: v.score for v in store.validation_of(chosen.id)}
    assert [row.task for row in rows] == sorted(baselines)
    assert all(row.seed == config.seed + 1 and row.seeds == 3 for row in rows)
    encoding = Encoding(max_statements=len(program.body))
    for row, task in zip(rows, sorted(TaskPlan.from_config(config).heldout,
                                      key=lambda t: t.key)):
        keys = task_keys(task, 3, config.seed + 1)  # fresh: validation trained on seed 5's
        mine, theirs = tuned[task.key], baselines[task.key]
        mine_at = named(mine.schedule, config.tasks.warmup, config.tasks.final_lr)
        theirs_at = named(theirs.schedule, config.tasks.warmup, config.tasks.final_lr)
        losses = tune_programs(task, encoding, [program],
                               Grid((mine.lr,), (), (mine_at,), past_edge=0), keys)[0].losses
        adamw = tune_adamw(task, Grid((theirs.lr,), (theirs.weight_decay,), (theirs_at,),
                                      past_edge=0), keys)
        expected = float(np.mean(np.log(adamw.losses)) - np.mean(np.log(losses)))
        assert row.score == pytest.approx(expected, rel=1e-4, abs=1e-6)
        assert row.loss == pytest.approx(math.exp(np.mean(np.log(losses))), rel=1e-4)
        assert row.baseline_loss == pytest.approx(math.exp(np.mean(np.log(adamw.losses))),
                                                  rel=1e-4)
    # the seeds differ from the validation's, so (almost surely) do the scores
    assert any(abs(row.score - validation[row.task]) > 1e-6 for row in rows)


def _fresh_score(config, task, program, point, baseline, seed):
    """log(AdamW loss / the program's), geometric means over `config`'s confirmation seeds
    from `seed`, each at its one point (the `disco transfer` protocol's trainers)."""
    keys = task_keys(task, config.validation.confirmation_seeds, seed)
    mine_at = named(point.schedule, config.tasks.warmup, config.tasks.final_lr)
    theirs_at = named(baseline.schedule, config.tasks.warmup, config.tasks.final_lr)
    losses = tune_programs(task, Encoding(max_statements=len(program.body)), [program],
                           Grid((point.lr,), (), (mine_at,), past_edge=0), keys)[0].losses
    adamw = tune_adamw(task, Grid((baseline.lr,), (baseline.weight_decay,), (theirs_at,),
                                  past_edge=0), keys)
    return float(np.mean(np.log(adamw.losses)) - np.mean(np.log(losses)))


@pytest.mark.slow  # `finished` runs a whole search
def test_the_shortlist_is_the_surest_validated_and_the_winner_the_surest_on_its_seeds(
        finished, capsys):
    run_dir, config = finished
    heldout = sorted(TaskPlan.from_config(config).heldout, key=lambda t: t.key)
    with RunStore.open(run_dir, write=False) as store:
        validated = {record.id: [v.score for v in records]
                     for record, records in store.validated()}
        listed = {c.id: [row.score for row in store.shortlist_of(c.id)]
                  for c in validated_programs(store)}
        rows = {cid: store.shortlist_of(cid) for cid in listed}
        tuned = {cid: {row.task: row for row in store.scores_of(cid)} for cid in listed}
        baselines = {task.key: store.baseline(task.key) for task in heldout}
        texts = {cid: store.candidate(cid).text for cid in listed}
        chosen = chosen_winner(store).id
        confirmed = store.query("SELECT DISTINCT candidate_id FROM confirmation")

    def lower_bound(values):  # mean - 2 SE, by the closed form
        return np.mean(values) - 2 * np.std(values, ddof=1) / math.sqrt(len(values))

    assert len(validated) > 3  # more validated than the shortlist holds
    surest_first = sorted(validated, key=lambda cid: -lower_bound(validated[cid]))
    shortlisted = [cid for cid in listed if listed[cid]]
    assert sorted(shortlisted) == sorted(surest_first[:3])  # validation.shortlist defaults to 3
    for cid in shortlisted:
        assert [row.task for row in rows[cid]] == [task.key for task in heldout]
        assert all(row.seed == config.seed + 3 and row.seeds == 3 for row in rows[cid])
        program = simplify(parse(texts[cid]))
        for row, task in zip(rows[cid], heldout):
            expected = _fresh_score(config, task, program, tuned[cid][task.key],
                                    baselines[task.key], config.seed + 3)
            assert row.score == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert chosen == max(shortlisted, key=lambda cid: lower_bound(listed[cid]))
    assert confirmed == [(chosen,)]  # only the winner is confirmed
    with RunStore.open(run_dir, write=False) as store:
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert "shortlist: the 3 validated programs most surely ahead, trained again" in out
    assert f"chosen: #{chosen}, the program most surely ahead of the baseline (highest mean - 2 " \
        "SE on the shortlist's fresh seeds;" in out
    mean = float(np.mean(listed[chosen]))
    assert f"on the shortlist's seeds that chose it: {mean:+.3f}" in out
    assert main(["inspect", str(run_dir), "--pareto", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["chosen"] == chosen
    assert [row["id"] for row in report["shortlist"]] == surest_first[:3]
    assert [row["mean"] for row in report["shortlist"]] == pytest.approx(
        [np.mean(listed[cid]) for cid in surest_first[:3]])


def _scored_run(run_dir, validation, shortlist=None, size=None):
    """A `_validated_run` whose candidates' tuned lrs are archived (so they can be shortlisted)
    and, with `shortlist` (id -> task -> score), scored on the shortlist's seeds; `size` sets
    validation.shortlist."""
    _validated_run(run_dir, validation)
    with RunStore.open(run_dir) as store:
        if size is not None:
            store.set_config_text(config_variant(store.config_text,
                                                 {"validation.shortlist": size}))
        store.add_generation(1, [], scores=[
            ScoreRecord(candidate_id=cid, task=task, score=score, loss=1.0, lr=0.01,
                        schedule="constant")
            for cid, scores in validation.items() for task, score in scores.items()])
        if shortlist:
            store.add_shortlist([ConfirmationRecord(
                candidate_id=cid, task=task, score=score, loss=math.exp(-score),
                baseline_loss=1.0, seed=9, seeds=2)
                for cid, scores in shortlist.items() for task, score in scores.items()], 1)
    return run_dir


STEADY = {"quadratic(dim=4)": 0.10, "rnn(width=8)": 0.11, "quadratic(dim=8)": 0.09}


def test_the_winner_is_the_surest_on_the_shortlists_seeds_not_the_validations(tmp_path):
    """#1 validates surest, but on the shortlist's seeds #2 is: the run chooses #2; with a
    shortlist of one (or before the shortlist is scored) it chooses #1."""
    validation = {1: VALIDATION, 2: STEADY, 3: {task: -0.2 for task in STEADY}}
    fresh = {1: {task: 0.0 for task in STEADY}, 2: STEADY}
    scored = _scored_run(tmp_path / "scored", validation, fresh, size=2)
    with RunStore.open(scored, write=False) as store:
        assert [c.id for c in shortlist(store)] == [1, 2]
        assert awaiting_shortlist(store) == [] and chosen_winner(store).id == 2
        assert chosen_winner(store).scores == tuple(STEADY[t] for t in sorted(STEADY))
        assert awaiting_confirmation(store).id == 2
    pending = _scored_run(tmp_path / "pending", validation)
    with RunStore.open(pending, write=False) as store:
        assert [c.id for c in awaiting_shortlist(store)] == [1, 2, 3]
        assert chosen_winner(store).id == 1 and awaiting_confirmation(store) is None
    one = _scored_run(tmp_path / "one", validation, size=1)
    with RunStore.open(one, write=False) as store:
        assert shortlist(store) == [] and chosen_winner(store).id == 1
        assert awaiting_confirmation(store).id == 1


@pytest.mark.slow  # `finished` runs a whole search
def test_resume_redoes_a_confirmation_that_a_kill_cut_off_and_keeps_a_finished_one(
        finished, tmp_path):
    run_dir, config = finished
    with RunStore.open(run_dir, write=False) as store:
        chosen = chosen_winner(store).id
        before = store.confirmation_of(chosen)
        last = store.last_generation()
    api.resume(run_dir, pool=_pool(config), progress=False)  # finished: nothing to redo
    with RunStore.open(run_dir, write=False) as store:
        assert store.confirmation_of(chosen) == before
    with RunStore.open(run_dir, write=False) as store:
        listed = store.query("SELECT * FROM shortlist ORDER BY candidate_id, task")
    with sqlite3.connect(run_dir / ARCHIVE_NAME) as db:  # killed before the rows landed
        db.execute("DELETE FROM confirmation")
        db.execute("DELETE FROM shortlist")
    api.resume(run_dir, pool=_pool(config), progress=False)
    with RunStore.open(run_dir, write=False) as store:
        assert store.query("SELECT * FROM shortlist ORDER BY candidate_id, task") == listed
        assert store.confirmation_of(chosen) == before  # the same fresh seeds, the same rows
        assert store.last_generation() == last
        generations = store.query("SELECT DISTINCT generation FROM confirmation UNION "
                                  "SELECT DISTINCT generation FROM shortlist")
    assert generations == [(last,)]  # rolled back with the last generation


@pytest.mark.parametrize("version, dropped", [(7, "confirmation, shortlist"),
                                               (8, "shortlist")])
def test_an_older_archive_gains_empty_fresh_seed_tables(tmp_path, version, dropped):
    with RunStore.create(tmp_path / "run", CONFIG):
        pass
    with sqlite3.connect(tmp_path / "run" / ARCHIVE_NAME) as db:
        db.executescript("".join(f"DROP TABLE {table}; " for table in dropped.split(", "))
                         + f"PRAGMA user_version = {version};")
    with RunStore.open(tmp_path / "run", write=False) as reader:
        assert reader.query("PRAGMA user_version") == [(SCHEMA_VERSION,)]
        assert reader.confirmation_of(0) == [] and reader.shortlist_of(0) == []


def _confirmed(run_dir, scores):
    """Add candidate #1's confirmation (task -> score) to a `_validated_run`."""
    with RunStore.open(run_dir) as store:
        store.add_confirmation([ConfirmationRecord(
            candidate_id=1, task=task, score=score, loss=math.exp(-score), baseline_loss=1.0,
            seed=8, seeds=2) for task, score in scores.items()], generation=0)


VALIDATION = {"quadratic(dim=4)": 0.20, "rnn(width=8)": 0.22, "quadratic(dim=8)": 0.18,
              "mlp(width=8)": 0.21}


def test_the_verdict_is_judged_on_the_fresh_seeds_where_the_winner_still_beats(tmp_path,
                                                                                capsys):
    run_dir = _validated_run(tmp_path / "run", {1: VALIDATION})
    fresh = {"quadratic(dim=4)": 0.12, "rnn(width=8)": 0.15, "quadratic(dim=8)": 0.10,
             "mlp(width=8)": 0.13}
    _confirmed(run_dir, fresh)
    mean, se = family_form(fresh)
    chose, chose_se = family_form(VALIDATION)
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert (f"verdict: #1 beats tuned AdamW by {mean:+.3f} ± {se:.3f} (ahead on 3 of 3 "
            "held-out families) on fresh seeds") in out
    assert (f"on 2 fresh seeds per held-out task, each at its tuned lr; on the seeds that "
            f"chose it: {chose:+.3f} ± {chose_se:.3f}") in out


def test_a_winner_that_does_not_hold_on_fresh_seeds_is_not_called_a_winner(tmp_path, capsys):
    run_dir = _validated_run(tmp_path / "run", {1: VALIDATION})
    _confirmed(run_dir, {"quadratic(dim=4)": 0.05, "rnn(width=8)": -0.04,
                         "quadratic(dim=8)": 0.02})
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert "#1 beats tuned AdamW" not in out  # the seeds that chose it say it does
    assert ("verdict: on fresh seeds the chosen #1 does not beat tuned AdamW beyond noise "
            "(within noise: ") in out and "tuned AdamW stays the one to use" in out
    assert main(["inspect", str(run_dir), "--pareto", "--json"]) == 0
    verdict = json.loads(capsys.readouterr().out)["verdict"]
    assert verdict["kind"] == "within noise" and verdict["fresh_seeds"] is True
    assert verdict["mean"] == pytest.approx(np.mean([(0.05 + 0.02) / 2, -0.04]))
    assert verdict["standard_errors_needed"] == pytest.approx(12.706, abs=1e-3)  # t, 1 df


@pytest.mark.slow  # `finished` runs a whole search
def test_a_winner_whose_tuned_lr_is_not_archived_is_left_unconfirmed(finished, tmp_path,
                                                                     capsys):
    """An archive whose held-out score rows lack the lr (a disco before they were recorded)
    has nothing to shortlist or confirm: resume adds no rows, the winner is the surest
    validated, and the verdict stays on the seeds that chose it, saying so."""
    import shutil

    run_dir, config = finished
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    with sqlite3.connect(copy / ARCHIVE_NAME) as db:
        db.execute("DELETE FROM confirmation")
        db.execute("DELETE FROM shortlist")
        db.execute("UPDATE scores SET lr = NULL")
    api.resume(copy, pool=_pool(config), progress=False)
    with RunStore.open(copy) as store:
        chosen = chosen_winner(store).id
        assert chosen == surest(validated_programs(store)).id
        assert store.query("SELECT COUNT(*) FROM confirmation") == [(0,)]
        assert store.query("SELECT COUNT(*) FROM shortlist") == [(0,)]
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert "fresh seeds per held-out task" not in out
    assert "(on the held-out tasks that chose it;" in out


@pytest.mark.slow
def test_disco_resume_confirms_a_finished_run_that_lacks_its_confirmation(finished, tmp_path):
    """A run finished by a disco without confirmation (or killed before it landed):
    `disco resume` confirms it instead of calling it finished, and calls it finished after."""
    import shutil
    import subprocess

    from tests.test_cli_runs import DISCO, _environment

    run_dir, _ = finished
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    with RunStore.open(copy, write=False) as store:
        chosen = chosen_winner(store).id
        before = store.confirmation_of(chosen)
    with sqlite3.connect(copy / ARCHIVE_NAME) as db:
        db.execute("DELETE FROM confirmation")
    env = _environment(tmp_path / "jax-cache")
    result = subprocess.run([DISCO, "resume", str(copy)], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"choosing and confirming the winner of {copy} on fresh seeds" in result.stdout
    assert "fresh seeds per held-out task" in result.stdout  # the summary's verdict
    with RunStore.open(copy, write=False) as store:
        assert store.confirmation_of(chosen) == before
    again = subprocess.run([DISCO, "resume", str(copy)], capture_output=True, text=True,
                           env=env, timeout=300)
    assert again.returncode == 2 and "is finished (2 of 2 generations)" in again.stderr
