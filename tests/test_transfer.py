"""docs/experiments/transfer.py: every optimizer is tuned on some seeds and paired with tuned
AdamW on others, seed by seed; its scores are log loss ratios one can recompute from the
trainers, and the errors are standard errors over tasks x seeds."""

import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

from disco_rules.discovery.cli import main as disco
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.train import evaluate_population, make_optax_train
from disco_rules.discovery.tasks import Task
from disco_rules.dsl import library
from disco_rules.dsl.interpreter import Encoding

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("transfer", ROOT / "docs/experiments/transfer.py")
transfer = importlib.util.module_from_spec(_spec)
sys.modules["transfer"] = transfer  # dataclasses look their module up
_spec.loader.exec_module(transfer)

TASK = Task.make("mlp_regression", in_dim=2, width=4, horizon=12)
SEEDS, RUN_SEED, TEST_SEED = 2, 3, 4
LRS = (1e-3, 1e-2, 1e-1)
DECAYS = (0.0, 1e-1)
ENCODING = Encoding(max_statements=16)


def test_the_adamw_program_at_the_baselines_only_point_scores_zero_on_every_seed():
    result = transfer.evaluate_task(TASK, {"adamw": library.program("adamw")}, ENCODING,
                                    SEEDS, RUN_SEED, TEST_SEED, lrs=(1e-2,),
                                    weight_decays=(0.01,))
    losses = result.baseline.losses
    assert losses.shape == (SEEDS,)
    # the seeds differ, so a pairing of mismatched seeds would not score 0
    assert abs(math.log(losses[0] / losses[1])) > 1e-2
    assert (result.baseline.lr, result.baseline.weight_decay) == pytest.approx((1e-2, 0.01))
    np.testing.assert_allclose(result.scores("adamw"), 0.0, atol=1e-4)


def test_sgd_scores_are_the_log_ratios_of_the_trainers_outputs():
    sgd, momentum = library.program("sgd"), library.program("momentum")
    result = transfer.evaluate_task(TASK, {"sgd": sgd, "momentum": momentum}, ENCODING, SEEDS,
                                    RUN_SEED, TEST_SEED, lrs=LRS, weight_decays=DECAYS)
    final = {}  # keys' seed -> [lr, seed] final losses of sgd
    adamw = {}  # keys' seed -> {(lr, decay): [seed]} final losses of optax's own AdamW
    for seed in (RUN_SEED, TEST_SEED):
        keys = task_keys(TASK, SEEDS, seed)
        raw = evaluate_population(TASK, ENCODING, ENCODING.encode_population([sgd]),
                                  np.asarray(LRS, np.float32), keys)
        assert not np.asarray(raw.diverged).any()
        final[seed] = np.asarray(raw.final_loss[0], np.float64)
        adamw[seed] = {}
        for decay in DECAYS:  # weight decay a constant
            train = jax.jit(jax.vmap(make_optax_train(
                TASK, lambda lr, decay=decay: optax.adamw(lr, weight_decay=decay)),
                in_axes=(None, 0)))
            for lr in LRS:
                adamw[seed][lr, decay] = np.asarray(train(np.float32(lr), keys).final_loss,
                                                    np.float64)
    chosen = int(np.argmin(np.log(final[RUN_SEED]).mean(axis=1)))  # tuned on RUN_SEED's keys
    best = min(adamw[RUN_SEED], key=lambda point: np.log(adamw[RUN_SEED][point]).mean())
    assert result.optimizers["sgd"].lr == pytest.approx(LRS[chosen])
    assert (result.baseline.lr, result.baseline.weight_decay) == pytest.approx(best)
    expected = np.log(adamw[TEST_SEED][best]) - np.log(final[TEST_SEED][chosen])
    assert np.abs(expected - (np.log(adamw[RUN_SEED][best]) - np.log(final[RUN_SEED][chosen]))
                  ).max() > 1e-3  # scoring on the tuning seeds would not pass
    np.testing.assert_allclose(result.scores("sgd"), expected, rtol=1e-4, atol=1e-5)


def test_a_cached_task_is_not_trained_again(monkeypatch):
    cache: dict = {}
    programs = {"sgd": library.program("sgd")}
    first = transfer.evaluate_task(TASK, programs, ENCODING, SEEDS, RUN_SEED, TEST_SEED,
                                   lrs=LRS[:1], weight_decays=DECAYS[:1], cache=cache)
    cache = json.loads(json.dumps(cache))  # as the script stores it
    for name in ("tune_adamw", "tune_programs"):
        monkeypatch.setattr(transfer, name, lambda *args: pytest.fail("trained again"))
    again = transfer.evaluate_task(TASK, programs, ENCODING, SEEDS, RUN_SEED, TEST_SEED,
                                   lrs=LRS[:1], weight_decays=DECAYS[:1], cache=cache)
    np.testing.assert_array_equal(again.scores("sgd"), first.scores("sgd"))


def _tuned(losses: list[float]) -> "transfer.Tuned":
    return transfer.Tuned(1e-3, 0.0, np.asarray(losses), np.ones(20))


def test_family_and_overall_errors_are_standard_errors_over_tasks_and_seeds():
    rng = np.random.default_rng(0)
    baseline = [rng.uniform(0.5, 2.0, 3) for _ in range(3)]
    optimizer = [rng.uniform(0.5, 2.0, 3) for _ in range(3)]
    results = [transfer.TaskResult(TASK, _tuned(b), {"x": _tuned(o)})
               for b, o in zip(baseline, optimizer)]
    groups = ["a", "a", "b"]
    pooled = transfer.group_scores(results, groups, "x")
    by_hand = {"a": np.log(np.concatenate(baseline[:2]) / np.concatenate(optimizer[:2])),
               "b": np.log(baseline[2] / optimizer[2]),
               "overall": np.log(np.concatenate(baseline) / np.concatenate(optimizer))}
    for group, values in by_hand.items():
        mean, error = transfer.mean_and_error(pooled[group])
        assert mean == pytest.approx(values.mean())
        assert error == pytest.approx(np.std(values, ddof=1) / np.sqrt(values.size))
    row = transfer.summary_table(results, groups, ["x"]).splitlines()[2]
    above = sum(by_hand[g].mean() > 0 for g in ("a", "b"))
    assert row.endswith(f"| {above}/2 |")
    assert f"{by_hand['overall'].mean():+.3f} ± " in row


def test_an_optimizer_that_never_worked_scores_minus_infinity():
    failed = transfer.Tuned(math.nan, math.nan, np.full(2, np.inf), np.full(20, np.nan))
    result = transfer.TaskResult(TASK, _tuned([1.0, 2.0]), {"x": failed})
    assert np.all(result.scores("x") == -np.inf)
    assert transfer.mean_and_error(result.scores("x"))[0] == -math.inf


def test_variants_are_new_tasks_in_their_familys_ranges_after_the_held_out_tasks():
    other = Task.make("mlp_regression", in_dim=3, width=4, horizon=40)
    plan = transfer.TaskPlan(train=(), heldout=(TASK, other), screen=None)
    rows = transfer.suite(plan)
    assert [(group, label) for group, label, _ in rows] == [
        (task.key, label) for label in ("held-out", "0.5x horizon", "2x wider", "2x horizon")
        for task in (TASK, other)]  # one family twice: groups named by task
    assert len({task.key for _, _, task in rows}) == len(rows)
    assert rows[2][2].get("horizon") == 10  # 12 x 0.5, raised to the range's low end
    assert rows[3][2].get("horizon") == 20
    assert rows[4][2].get("width") == 8
    assert rows[7][2].get("horizon") == 80


def test_the_default_candidates_are_the_winner_disco_inspect_chooses(tmp_path, capsys):
    run_dir = tmp_path / "programs"
    shutil.copytree(ROOT / "tests/data/runs-0.1/programs", run_dir)
    disco(["inspect", str(run_dir), "--pareto", "--json"])
    chosen = json.loads(capsys.readouterr().out)["chosen"]
    ids = transfer.default_ids(transfer.open_run(run_dir))
    assert ids[0][0] == chosen
    assert ids[-1][0] == transfer.open_run(run_dir).top(1)[0].id


def test_the_optax_export_check_finds_the_interpreters_losses(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("optax_check",
                                                  ROOT / "docs/experiments/optax_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    run_dir = tmp_path / "programs"
    shutil.copytree(ROOT / "tests/data/runs-0.1/programs", run_dir)
    best = transfer.open_run(run_dir).top(1)[0].id
    check.main([str(run_dir), str(best), "--lr", "0.01", "--seeds", "3"])
    (line,) = capsys.readouterr().out.splitlines()  # one held-out task
    assert line.startswith("mlp_regression(")
    interpreter, exported = (float(part.split(" ")[-1].rstrip(","))
                             for part in line.split(": ", 1)[1].split(", ")[:2])
    assert exported == pytest.approx(interpreter, rel=1e-4)
    assert float(line.rsplit(" ", 1)[1]) < 1e-4
