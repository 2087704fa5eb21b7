"""`disco transfer` and the one verdict the CLI prints everywhere: a candidate beats tuned
AdamW only when its mean margin clears twice its standard error (discovery/verdict.py); the
transfer protocol tunes every optimizer on some seeds and pairs it with tuned AdamW on others,
on the run's held-out tasks and variants of them (discovery/transfer.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery import transfer, transfer_report, verdict
from disco_rules.discovery.cli import main
from disco_rules.discovery.inner.train import step_past_edge, tune_past_edges
from disco_rules.discovery.cli.summary import print_summary
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.store import (BaselineRecord, CandidateRecord, RunStore,
                                         ValidationRecord)
from disco_rules.discovery.tasks import Task
from disco_rules.discovery.verdict import judge, winner_text
from disco_rules.dsl import library
from tests.configs import config_variant

ROOT = Path(__file__).resolve().parents[1]

# -- the verdict: closed forms ------------------------------------------------------------------


def _closed_form(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)


def family_form(scores: dict[str, float]) -> tuple[float, float]:
    """The verdict's mean and SE by hand from task -> score: the mean of the family means, and
    the larger of their standard error over families and the one the results' own variances
    give that mean (sqrt(sum var_f / n_f) / F)."""
    families: dict[str, list[float]] = {}
    for task, score in scores.items():
        families.setdefault(task.split("(")[0], []).append(score)
    means = [sum(v) / len(v) for v in families.values()]
    f = len(means)
    noise = sum(_closed_form(v)[1] ** 2 for v in families.values() if len(v) > 1)
    within = math.sqrt(noise) / f
    return sum(means) / f, max(_closed_form(means)[1], within) if f > 1 else within


def test_the_verdict_is_the_mean_over_families_with_its_standard_error_over_families():
    scores = {"a": [0.3, 0.1, 0.2], "b": [0.05, -0.02], "c": [0.25], "d": [0.1, 0.12]}
    means = [0.2, 0.015, 0.25, 0.11]  # each family counts once, however many results it has
    mean, se = _closed_form(means)
    result = judge(scores)
    assert (result.mean, result.se) == pytest.approx((mean, se))
    assert (result.families_ahead, result.families, result.count) == (4, 4, 8)
    # 0.144 ± 0.052 clears 2 SE, but over 4 families a margin must clear t(0.975, 3) = 3.18 SE
    assert mean - 2 * se > verdict.NEGLIGIBLE > mean - 3.1824 * se
    assert result.kind == "within noise" and result.needs == pytest.approx(3.1824463, abs=1e-6)
    assert result.text("#9") == (f"#9 is within noise of tuned AdamW ({mean:+.3f} ± {se:.3f}, "
                                 "3.18 SE needed from 4 families; ahead on 4 of 4 held-out "
                                 "families)")
    steady = judge({"a": [0.3, 0.1, 0.2], "b": [0.15, 0.21], "c": [0.25]})
    mean, se = family_form({"a(1)": 0.3, "a(2)": 0.1, "a(3)": 0.2, "b(1)": 0.15, "b(2)": 0.21,
                            "c(1)": 0.25})
    assert (steady.mean, steady.se) == pytest.approx((mean, se)) and mean == pytest.approx(0.21)
    assert steady.kind == "beats" and mean - 4.3027 * se > verdict.NEGLIGIBLE
    assert steady.text("#960") == (f"#960 beats tuned AdamW by {mean:+.3f} ± {se:.3f} "
                                   "(ahead on 3 of 3 held-out families)")


@pytest.mark.parametrize("degrees, quantile", [  # Student's t, 97.5%, from printed tables
    (1, 12.706), (2, 4.303), (3, 3.182), (7, 2.365), (30, 2.042), (60, 2.000)])
def test_a_margin_must_clear_students_t_standard_errors_never_fewer_than_two(degrees, quantile):
    assert verdict.needed(degrees) == pytest.approx(quantile, abs=5e-4)
    assert verdict.needed(1000) == 2.0 and verdict.needed(0) == math.inf


def test_families_that_agree_by_chance_are_no_surer_than_their_seeds():
    # both families' means are 0.1 (SE 0 over families), but each one's results swing by 0.8
    result = judge({"a": [0.5, -0.3], "b": [0.5, -0.3]})
    within = math.sqrt(2 * _closed_form([0.5, -0.3])[1] ** 2) / 2
    assert result.se == pytest.approx(within) and result.kind == "within noise"
    assert (result.mean, result.se) == pytest.approx(family_form(
        {"a(1)": 0.5, "a(2)": -0.3, "b(1)": 0.5, "b(2)": -0.3}))


def test_a_margin_carried_by_a_minority_of_families_does_not_beat():
    # three of eight families at +0.3, five at 0: mean 0.1125, SE 0.0549 over families, so
    # mean - 2 SE = +0.003 clears NEGLIGIBLE, but a user's problem is more likely one of the five
    scores = {f"f{i}": [0.3, 0.3] if i < 3 else [0.0, 0.0] for i in range(8)}
    mean, se = _closed_form([0.3] * 3 + [0.0] * 5)
    result = judge(scores)
    assert mean - 2 * se > verdict.NEGLIGIBLE and result.families_ahead == 3
    assert result.kind == "within noise"
    # the same margin carried by five of eight families beats
    flipped = judge({f"f{i}": [0.3, 0.3] if i < 5 else [0.0, 0.0] for i in range(8)})
    assert flipped.kind == "beats" and flipped.families_ahead == 5


@pytest.mark.parametrize("values, kind", [
    ([0.20, 0.22, 0.18, 0.21], "beats"),  # mean 0.2025, SE 0.0085
    ([0.30, -0.25, 0.01], "within noise"),
    ([-0.30, -0.32, -0.28], "worse"),
    ([0.0, 0.0, 0.0], "within noise"),  # SE 0: neither side clears NEGLIGIBLE
    ([1e-7, 1.1e-7, 0.9e-7], "within noise"),  # float rounding is no win
])
def test_the_two_standard_error_rule(values, kind):
    mean, se = _closed_form(values)
    assert judge({"f": values}).kind == kind
    assert (mean - 2 * se > verdict.NEGLIGIBLE) == (kind == "beats")
    assert (mean + 2 * se < -verdict.NEGLIGIBLE) == (kind == "worse")


def test_a_margin_from_few_results_needs_more_standard_errors():
    # two values a, 2.9a: mean 1.95a, SE 0.95a clears 2 SE but not t(0.975, 1) = 12.7 SE
    assert judge({"f": [1.0, 2.9]}, negligible=0.0).kind == "within noise"
    assert judge({"f": [-1.0, -2.9]}, negligible=0.0).kind == "within noise"
    # the same two values on each of 62 families: 2 SE, and it beats (or is worse)
    assert judge({f"f{i}": [1.0, 2.9] for i in range(62)}, negligible=0.0).kind == "beats"
    assert judge({f"f{i}": [-1.0, -2.9] for i in range(62)}, negligible=0.0).kind == "worse"


def test_fewer_than_two_results_never_beat():
    one = judge({"f": [5.0]})
    assert one.kind == "within noise" and one.too_few and math.isnan(one.se)
    assert one.text("#3") == ("too few results to tell whether #3 beats tuned AdamW "
                              "(+5.000 from 1 result; ahead on 1 of 1 held-out families)")


def test_a_failed_result_makes_it_worse():
    failed = judge({"a": [0.5, 0.6], "b": [0.4, -math.inf]})
    assert failed.kind == "worse" and failed.mean == -math.inf
    assert (failed.families_ahead, failed.failed) == (1, 1)
    assert failed.text("x") == ("x is worse than tuned AdamW (no finite score on 1 of 4 "
                                "results; ahead on 1 of 2 held-out families)")


def test_rl_scores_are_compared_with_one():
    returns = {"cartpole": [1.3, 1.4], "acrobot": [1.35, 1.25], "pendulum": [1.3, 1.32]}
    result = judge(returns, reference=1.0)
    assert result.kind == "beats" and result.mean == pytest.approx(0.32)
    assert judge(returns).mean == pytest.approx(1.32)


def test_the_winner_is_not_crowned_when_it_does_not_beat_the_baseline():
    within = judge({"f": [0.3, -0.25, 0.01]})
    assert winner_text("#12", within).startswith(
        "no candidate beats tuned AdamW beyond noise on the held-out tasks: tuned AdamW stays "
        "the one to use; the closest is #12 "
        "(within noise: ")
    other = judge({"f": [0.2, 0.21, 0.19]})
    assert "#15 beats tuned AdamW by +0.200" in winner_text("#12", within, beating=[("#15", other)])
    assert winner_text("#15", other) == other.text("#15")


def test_scores_are_grouped_by_family():
    grouped = verdict.by_family({"quadratic(dim=4)": 0.1, "rnn(width=8)": 0.2,
                                 "quadratic(dim=8)": 0.3})
    assert list(grouped) == ["quadratic", "rnn"]
    np.testing.assert_array_equal(grouped["quadratic"], [0.1, 0.3])


# -- the verdict in the launch summary and inspect --pareto -------------------------------------

PROGRAM = "def p{0}(w, g, lr):\n    update = {1} * lr * g\n    return update\n"


def _validated_run(run_dir: Path, validation: dict[int, dict[str, float]], rl: bool = False,
                   population: str = "programs") -> Path:
    """A quickstart run of population kind `population` whose candidates (id -> held-out task
    -> score) were meta-validated, with a baseline for each task (a return without a loss on
    RL tasks)."""
    tasks = sorted({task for scores in validation.values() for task in scores})
    config = config_variant((ROOT / "examples" / "quickstart.toml").read_text(),
                            {"population.kind": population})
    with RunStore.create(run_dir, config) as store:
        for task in tasks:
            store.add_baseline(BaselineRecord(task=task, score=200.0, curve=[1.0])
                               if rl else BaselineRecord(task=task, score=0.0, loss=1.0,
                                                         lr=0.01, optimizer="adam",
                                                         weight_decay=0.0, seeds=2))
        store.add_generation(0, [CandidateRecord(
            id=cid, generation=0, kind="programs", hash=f"h{cid}", fitness=0.0, status="ok",
            text=PROGRAM.format(cid, " * ".join(["lr"] * cid)))  # p1 is the simplest
            for cid in validation],
            validation=[ValidationRecord(candidate_id=cid, task=task, score=score)
                        for cid, scores in validation.items() for task, score in scores.items()])
    return run_dir


def test_the_summary_and_pareto_say_plainly_that_no_candidate_beats_the_baseline(tmp_path,
                                                                                 capsys):
    run_dir = _validated_run(tmp_path / "run", {1: {"quadratic(dim=4)": 0.02,
                                                    "rnn(width=8)": -0.01,
                                                    "quadratic(dim=8)": 0.03}})
    expected = ("verdict: no candidate beats tuned AdamW beyond noise on the held-out tasks: "
                "tuned AdamW stays the one to use; the closest is #1 (within noise: ")
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    assert expected in capsys.readouterr().out
    assert main(["inspect", str(run_dir), "--pareto"]) == 0
    out = capsys.readouterr().out
    assert expected in out and "ahead on 1 of 2 held-out families" in out
    assert main(["inspect", str(run_dir), "--pareto", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"]["kind"] == "within noise"


def test_the_summary_and_pareto_name_a_winner_that_beats_the_baseline(tmp_path, capsys):
    scores = {"quadratic(dim=4)": 0.20, "rnn(width=8)": 0.22, "quadratic(dim=8)": 0.18}
    run_dir = _validated_run(tmp_path / "run", {1: scores})
    mean, se = family_form(scores)
    line = (f"verdict: #1 beats tuned AdamW by {mean:+.3f} ± {se:.3f} (ahead on 2 of 2 "
            "held-out families)")
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    assert line in capsys.readouterr().out
    assert main(["inspect", str(run_dir), "--pareto"]) == 0
    assert line in capsys.readouterr().out


@pytest.mark.parametrize("population, agent", [("programs", "PPO"), ("lpo", "PPO"),
                                               ("ta-lpg", "A2C")])
def test_an_rl_run_is_judged_against_the_tuned_agent_at_one(tmp_path, capsys, population, agent):
    returns = {"cartpole(a=1)": 1.3, "acrobot(a=1)": 1.4, "cartpole(a=2)": 1.35,
               "pendulum(a=1)": 1.38}
    run_dir = _validated_run(tmp_path / "run", {1: returns}, rl=True, population=population)
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    mean, se = family_form({task: value - 1.0 for task, value in returns.items()})
    assert mean == pytest.approx((0.325 + 0.4 + 0.38) / 3)  # each family counts once
    assert f"verdict: #1 beats tuned {agent} by {mean:+.3f} ± {se:.3f}" in capsys.readouterr().out


def _evolved_run(run_dir: Path, warm: dict[str, float], child: dict[str, float]) -> Path:
    """A quickstart run (one warm start, #0) whose child #5 descends from it, both validated."""
    tasks = sorted(warm)
    with RunStore.create(run_dir, (ROOT / "examples" / "quickstart.toml").read_text()) as store:
        for task in tasks:
            store.add_baseline(BaselineRecord(task=task, score=0.0, loss=1.0, lr=0.01,
                                              optimizer="adam", weight_decay=0.0, seeds=2))
        store.add_generation(0, [CandidateRecord(
            id=0, generation=0, kind="programs", hash="h0", fitness=0.0, status="ok",
            text="def sgd(w, g, lr):\n    update = lr * g\n    return update\n")],
            validation=[ValidationRecord(candidate_id=0, task=t, score=s)
                        for t, s in warm.items()])
        store.add_generation(1, [CandidateRecord(
            id=5, generation=1, parent_id=0, kind="programs", hash="h5", fitness=0.1,
            status="ok", text="def sgd(w, g, lr):\n    update = lr * sign(g)\n"
                              "    return update\n")],
            validation=[ValidationRecord(candidate_id=5, task=t, score=s)
                        for t, s in child.items()])
    return run_dir


def test_the_summary_says_what_the_winner_beats_its_warm_start_and_not_adamw(tmp_path, capsys):
    # every task is hard for both (about -0.6 against AdamW), the child gains 0.2-0.3 on each
    warm = {"quadratic(dim=4)": -0.9, "rnn(width=8)": -0.8, "quadratic(dim=8)": -0.85,
            "rnn(width=16)": -0.75, "mlp(width=8)": -0.8}
    gains = [0.3, 0.19, 0.25, 0.22, 0.26]
    child = {task: score + gain for (task, score), gain in zip(warm.items(), gains)}
    run_dir = _evolved_run(tmp_path / "run", warm, child)
    mean, se = family_form(dict(zip(warm, gains)))
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert "chosen: #5" in out  # beyond one paired standard error of the warm start
    assert "verdict: no candidate beats tuned AdamW beyond noise" in out
    assert "the closest is #5 (worse: " in out
    assert (f"#5 beats its warm start #0 (sgd) by {mean:+.3f} ± {se:.3f} (ahead on 3 of 3 "
            "held-out families)") in out


def test_the_summary_says_when_the_chosen_rule_is_its_own_warm_start(tmp_path, capsys):
    # the same mean, but the child swings twice as far from task to task: the warm start is
    # the more surely ahead (mean - 2 SE -0.93 against -1.16)
    warm = {"quadratic(dim=4)": -0.9, "rnn(width=8)": -0.5, "quadratic(dim=8)": -0.7}
    child = {"quadratic(dim=4)": -0.3, "rnn(width=8)": -1.1, "quadratic(dim=8)": -0.7}
    run_dir = _evolved_run(tmp_path / "run", warm, child)
    with RunStore.open(run_dir) as store:
        print_summary(store, 1.0)
    out = capsys.readouterr().out
    assert "chosen: #0" in out
    assert ("the chosen rule is its warm start #0 (sgd): nothing the search found beats it "
            "beyond noise on the held-out tasks") in out


# -- the suite: variants of the held-out tasks ---------------------------------------------------

TASK = Task.make("mlp_regression", in_dim=2, width=4, horizon=12)


def test_variants_scale_horizon_batch_size_and_width_within_the_familys_ranges():
    by_label = dict(transfer.VARIANTS)
    assert transfer.variant(TASK, by_label["0.25x horizon"]).get("horizon") == 10  # 3, raised
    assert transfer.variant(TASK, by_label["4x horizon"]).get("horizon") == 48
    assert transfer.variant(TASK, by_label["4x batch size"]).get("batch_size") == 128
    wider = transfer.variant(TASK, by_label["2x width"])
    assert (wider.get("width"), wider.get("in_dim"), wider.get("horizon")) == (8, 2, 12)
    big = Task.make("mlp_regression", width=100, batch_size=100, horizon=1000)
    assert transfer.variant(big, by_label["2x width"]).get("width") == 128  # the range's top
    assert transfer.variant(big, by_label["4x batch size"]).get("batch_size") == 256
    assert transfer.variant(big, by_label["4x horizon"]).get("horizon") == 2000
    cnn = Task.make("digits_cnn", channels=4)
    assert transfer.variant(cnn, by_label["2x width"]).get("channels") == 8
    lm = Task.make("char_lm", head_dim=8)
    assert transfer.variant(lm, by_label["2x width"]).get("head_dim") == 16


def test_the_suite_is_the_held_out_tasks_then_new_variants_grouped_by_family():
    long = Task.make("mlp_regression", in_dim=2, width=4, horizon=48)  # TASK's 4x horizon
    quadratic = Task.make("quadratic", dim=4, horizon=40)  # no width, no batch size
    plan = TaskPlan(train=(long,), heldout=(TASK, quadratic), screen=None)
    rows = transfer.suite(plan)
    assert [(row.group, row.label) for row in rows] == [
        ("mlp_regression", "held-out"), ("quadratic", "held-out"),
        ("mlp_regression", "0.25x horizon"), ("quadratic", "0.25x horizon"),
        ("mlp_regression", "2x width"), ("mlp_regression", "4x batch size"),
        ("quadratic", "4x horizon")]  # TASK's 4x horizon is a training task
    assert len({row.task.key for row in rows}) == len(rows)
    assert {row.task.key for row in rows}.isdisjoint({long.key})


def test_transfer_announces_each_task_before_it_trains_and_after(monkeypatch):
    quadratic = Task.make("quadratic", dim=4, horizon=40)
    plan = TaskPlan(train=(), heldout=(TASK, quadratic), screen=None)
    events = []
    monkeypatch.setattr(transfer, "evaluate_task",
                        lambda task, *args: events.append(("train", task.key)) or task)
    outcome = transfer.transfer(
        plan, {"sgd": library.program("sgd")}, seeds=1, run_seed=1, test_seed=2, tasks=3,
        on_start=lambda row: events.append(("start", row.task.key)),
        on_task=lambda row: events.append(("done", row.task.key)))
    keys = [row.task.key for row in outcome.evaluated]
    assert len(keys) == 3 and keys[:2] == [TASK.key, quadratic.key]
    assert events == [(event, key) for key in keys for event in ("start", "train", "done")]


SMALL_GRID = transfer.Grid((1e-3, 1e-2), (0.0, 1e-2), (transfer.CONSTANT,), past_edge=0)


@pytest.mark.slow  # tunes and scores every rule twice, here and through a pool
def test_a_pool_of_task_evaluators_gives_what_training_here_gives(monkeypatch):
    plan = TaskPlan(train=(), heldout=(Task.make("quadratic", dim=4, horizon=10),), screen=None)
    programs = {"sgd": library.program("sgd"), "adam": library.program("adam")}
    kwargs = dict(seeds=2, run_seed=1, test_seed=2, grid=SMALL_GRID, tasks=2)
    here_cache, pooled_cache = {}, {}
    here_stored, pooled_stored = [], []
    here = transfer.transfer(plan, programs, cache=here_cache,
                             on_store=lambda entries: here_stored.append(dict(entries)), **kwargs)
    done = []
    pooled = transfer.transfer(plan, programs, cache=pooled_cache,
                               pool=LocalPool(transfer.TaskEvaluator),
                               on_store=lambda entries: pooled_stored.append(dict(entries)),
                               on_task=lambda row: done.append(row.task.key), **kwargs)
    assert done == [row.task.key for row in here.evaluated] and len(done) == 2
    # on_store hears of each entry once: here as each tuning is made, from a pool per task
    assert [len(entries) for entries in here_stored] == [1] * len(here_cache)
    assert [key for entries in here_stored for key in entries] == list(here_cache)
    assert len(pooled_stored) == 2
    assert [key for entries in pooled_stored for key in entries] == list(pooled_cache)
    assert json.dumps(pooled_cache) == json.dumps(here_cache)  # NaN weight decays: as text
    # per task: AdamW tuned at each of 2 weight decays, over both and scored; each program
    # tuned and scored
    assert len(here_cache) == 2 * (2 + 1 + 1 + 2 * 2)
    for a, b in zip(here.results, pooled.results):
        np.testing.assert_array_equal(a.baseline.losses, b.baseline.losses)
        for name in programs:
            np.testing.assert_array_equal(a.scores(name), b.scores(name))
    # a cached rerun through the pool trains nothing: each item carries its task's entries
    for name in ("tune_adamw", "tune_programs"):  # LocalPool runs the items in this process
        monkeypatch.setattr(transfer, name, lambda *args: pytest.fail("trained again"))
    again = transfer.transfer(plan, programs, cache=dict(here_cache),
                              pool=LocalPool(transfer.TaskEvaluator), **kwargs)
    assert [r.baseline.score for r in again.results] == [r.baseline.score for r in here.results]


@pytest.mark.slow  # a whole transfer of SGD on a quadratic, then one stopped within it
def test_a_transfer_stopped_within_a_task_keeps_the_tunings_it_finished():
    plan = TaskPlan(train=(), heldout=(Task.make("quadratic", dim=4, horizon=10),), screen=None)
    programs = {"sgd": library.program("sgd")}
    kwargs = dict(seeds=2, run_seed=1, test_seed=2, grid=SMALL_GRID, tasks=1)
    whole = {}
    transfer.transfer(plan, programs, cache=whole, **kwargs)
    assert len(whole) == 6  # AdamW at each of 2 weight decays, over both and scored; sgd

    class Stopped(Exception):
        pass

    cache, sizes = {}, []

    def on_store(entries):  # the CLI writes the cache file here
        assert set(entries) <= set(cache)
        sizes.append(len(cache))
        if len(sizes) == 2:
            raise Stopped

    with pytest.raises(Stopped):
        transfer.transfer(plan, programs, cache=cache, on_store=on_store, **kwargs)
    assert sizes == [1, 2] and set(cache) < set(whole)
    assert all(json.dumps(cache[key]) == json.dumps(whole[key]) for key in cache)


def test_tasks_a_pool_could_not_evaluate_are_named_and_the_others_kept(monkeypatch):
    quadratic = Task.make("quadratic", dim=4, horizon=40)
    plan = TaskPlan(train=(), heldout=(TASK, quadratic), screen=None)

    def fake(task, programs, encoding, seeds, run_seed, test_seed, grid, cache, on_store):
        cache[json.dumps([task.key, "tuned"])] = {"lr": 0.1}
        return task

    class HalfBroken:
        def map(self, items, on_result):
            results = [transfer.Failed("its worker died") if i == 1 else transfer.run_item(item)
                       for i, item in enumerate(items)]
            for i, result in enumerate(results):
                on_result(i, result)
            return results

    monkeypatch.setattr(transfer, "evaluate_task", fake)
    cache = {}
    with pytest.raises(transfer.TaskFailed, match=re.escape(
            f"1 of 2 tasks failed ({quadratic.key}: its worker died)")):
        transfer.transfer(plan, {"sgd": library.program("sgd")}, seeds=1, run_seed=1,
                          test_seed=2, tasks=2, cache=cache, pool=HalfBroken())
    assert cache == {json.dumps([TASK.key, "tuned"]): {"lr": 0.1}}


@pytest.mark.slow  # starts Ray in this process, and JAX in its actors
def test_a_transfer_on_ray_actors_gives_what_training_here_gives():
    pytest.importorskip("ray")
    import ray

    from disco_rules.api import make_transfer_pool
    from disco_rules.discovery.config import parse_config

    config = parse_config(CONFIG.replace("[cluster]", "[cluster]\nnum_actors = 2"))
    plan = TaskPlan.from_config(config)
    programs = {"sgd": library.program("sgd")}
    kwargs = dict(seeds=2, run_seed=1, test_seed=2, grid=SMALL_GRID, tasks=3)
    here = transfer.transfer(plan, programs, **kwargs)
    pool = make_transfer_pool(config, None)
    try:
        done = []
        on_ray = transfer.transfer(plan, programs, pool=pool,
                                   on_task=lambda row: done.append(row.task.key), **kwargs)
    finally:
        pool.shutdown()
        ray.shutdown()
    assert sorted(done) == sorted(row.task.key for row in here.evaluated) and len(done) == 3
    for a, b in zip(here.results, on_ray.results):
        assert a.task == b.task
        np.testing.assert_array_equal(a.baseline.losses, b.baseline.losses)
        np.testing.assert_array_equal(a.scores("sgd"), b.scores("sgd"))


# -- summaries of hand-made results --------------------------------------------------------------


def _tuned(losses: list[float]) -> transfer.Tuned:
    return transfer.Tuned(1e-3, 0.0, np.asarray(losses), np.ones(20))


def test_family_errors_are_standard_errors_over_tasks_and_seeds():
    rng = np.random.default_rng(0)
    baseline = [rng.uniform(0.5, 2.0, 3) for _ in range(3)]
    optimizer = [rng.uniform(0.5, 2.0, 3) for _ in range(3)]
    results = [transfer.TaskResult(TASK, _tuned(b), {"x": _tuned(o)})
               for b, o in zip(baseline, optimizer)]
    rows = [transfer.SuiteTask(group, "held-out", TASK) for group in ("a", "a", "b")]
    outcome = transfer.Transfer(tuple(rows), (), tuple(results), 3, 1, 2)
    by_hand = {"a": np.log(np.concatenate(baseline[:2]) / np.concatenate(optimizer[:2])),
               "b": np.log(baseline[2] / optimizer[2])}
    pooled = outcome.scores("x")
    for group, values in by_hand.items():
        mean, error = transfer_report.mean_and_error(pooled[group])
        assert mean == pytest.approx(values.mean())
        assert error == pytest.approx(np.std(values, ddof=1) / np.sqrt(values.size))
    over_families = np.mean([values.mean() for values in by_hand.values()])
    assert outcome.verdict("x") == judge(by_hand)
    row = transfer_report.summary_table(outcome, ["x"]).splitlines()[2]
    assert f"| {over_families:+.3f} ± {outcome.verdict('x').se:.3f} |" in row
    assert row.endswith(f"| {outcome.verdict('x').families_ahead}/2 | "
                        f"{outcome.verdict('x').kind} |")


def test_the_variant_table_pools_each_kind_of_task_over_families():
    rng = np.random.default_rng(1)
    losses = [(rng.uniform(0.5, 2.0, 2), rng.uniform(0.5, 2.0, 2)) for _ in range(4)]
    results = [transfer.TaskResult(TASK, _tuned(b), {"x": _tuned(o)}) for b, o in losses]
    rows = [transfer.SuiteTask(group, label, TASK) for group, label in
            (("a", "held-out"), ("b", "held-out"), ("a", "4x horizon"), ("b", "4x horizon"))]
    outcome = transfer.Transfer(tuple(rows), (), tuple(results), 2, 1, 2)
    table = transfer_report.variant_table(outcome, ["x"]).splitlines()
    assert table[0] == "| optimizer | held-out | 4x horizon |"
    cells = [cell.strip() for cell in table[2].strip("|").split("|")][1:]
    for cell, tasks in zip(cells, (losses[:2], losses[2:])):
        by_hand = np.concatenate([np.log(b / o) for b, o in tasks])
        assert cell == verdict.with_error(by_hand.mean(), np.std(by_hand, ddof=1)
                                          / np.sqrt(by_hand.size), by_hand.size)
    assert "## By variant" in transfer_report.report(outcome, [], "t", "p")
    held_out = transfer.Transfer(tuple(rows[:2]), (), tuple(results[:2]), 2, 1, 2)
    assert "## By variant" not in transfer_report.report(held_out, [], "t", "p")


def test_an_optimizer_that_never_worked_scores_minus_infinity_and_is_worse():
    failed = transfer.Tuned(math.nan, math.nan, np.full(2, np.inf), np.full(20, np.nan))
    result = transfer.TaskResult(TASK, _tuned([1.0, 2.0]), {"x": failed})
    assert np.all(result.scores("x") == -np.inf)
    outcome = transfer.Transfer((transfer.SuiteTask("f", "held-out", TASK),), (), (result,),
                                2, 1, 2)
    assert outcome.verdict("x").kind == "worse"


# -- the command on a small run -----------------------------------------------------------------

CONFIG = """\
seed = 5
generations = 2
[population]
max_statements = 12
[tasks]
seeds = 1
lr_grid = [0.001]
train = [{ family = "quadratic", dim = 4, horizon = 20 }]
heldout = [{ family = "quadratic", dim = 6, horizon = 20, condition_number = 10.0 }]
[cluster]
compilation_cache = false
"""
# Adam with a 10x larger step: better than AdamW at an lr far too small for 20 steps.
ADAM_X10 = """\
def adam_x10(w, g, m, v, lr, step):
    m = interp(g, m, 0.9)
    v = interp(square(g), v, 0.999)
    m_hat = m / (1.0 - 0.9 ** step)
    v_hat = v / (1.0 - 0.999 ** step)
    update = 10.0 * lr * m_hat / (sqrt(v_hat) + 1e-08)
    return update, m, v
"""
SLOW_SGD = "def slow_sgd(w, g, lr):\n    update = 0.01 * lr * g\n    return update\n"


@pytest.fixture
def small_run(tmp_path: Path) -> Path:
    """A run whose one meta-validated program (#1, its chosen winner) is Adam x10."""
    run_dir = tmp_path / "run"
    with RunStore.create(run_dir, CONFIG) as store:
        store.add_generation(0, [CandidateRecord(id=1, generation=0, kind="programs",
                                                 text=ADAM_X10, hash="h1", fitness=0.1,
                                                 status="ok")],
                             validation=[ValidationRecord(
                                 candidate_id=1, task="quadratic(condition_number=10.0,dim=6,"
                                 "horizon=20,noise=0.1)", score=0.2)])
    (tmp_path / "slow_sgd.py").write_text(SLOW_SGD)
    return run_dir


@pytest.mark.slow  # `disco transfer`: tunes and trains each rule on every task of the suite
def test_transfer_finds_the_better_rule_beats_and_the_worse_one_is_worse(small_run, capsys,
                                                                        monkeypatch):
    # AdamW's only point (lr 1e-3, Adam) moves a quadratic little in 20 steps: Adam at 10x
    # the step is surely better, SGD at 0.01x the lr surely worse
    monkeypatch.setattr(transfer, "GRID", transfer.Grid((1e-3,), (0.0,)))
    sgd = str(small_run.parent / "slow_sgd.py")
    cache, out = small_run.parent / "cache.json", small_run.parent / "report.md"
    command = ["transfer", str(small_run), sgd, "--seeds", "3", "--tasks", "1",
               "--cache", str(cache), "--out", str(out)]
    assert main(command) == 0
    printed = capsys.readouterr().out
    *_, winner, loser = printed.strip().splitlines()
    assert re.fullmatch(r"#1 beats tuned AdamW by \+0\.\d+ ± 0\.\d+ \(ahead on 1 of 1 "
                        r"held-out families\)", winner), printed
    assert re.fullmatch(r"slow_sgd is worse than tuned AdamW \(-0\.\d+ ± 0\.\d+; ahead on "
                        r"0 of 1 held-out families\)", loser), printed
    # the adam program is optax's AdamW at weight decay 0: the same numbers seed by seed
    assert "| adam | +0.000 ± 0.000 | +0.000 ± 0.000 | 0/1 | within noise |" in printed
    report = out.read_text()
    # the title: what the archive holds and what the config plans (generations = 2)
    assert report.startswith(f"# Transfer of {small_run} (archive through generation 0; "
                             f"2 planned)\n")
    assert report.endswith(f"{winner}\n{loser}\n")
    assert "command: `disco transfer " in report and out.with_suffix(".png").is_file()
    assert "Not evaluated (--tasks 1): `quadratic(condition_number=10.0,dim=6,horizon=10," \
           "noise=0.1)` (0.25x horizon)" in report
    assert "## Verdict\n\nOn the suite's first 1 of 3 tasks (--tasks 1): the others can " \
           "change these verdicts.\n\n#1 beats" in report

    # rerun from the cache: nothing is trained again, the verdicts are the same
    for name in ("tune_adamw", "tune_programs"):
        monkeypatch.setattr(transfer, name, lambda *args: pytest.fail("trained again"))
    assert main(command) == 0
    assert capsys.readouterr().out.strip().splitlines()[-2:] == [winner, loser]

    # the run's config with the same programs as files: the same tasks and seeds, so the same
    # tunings (from the cache) and verdicts, the candidate named by its file
    config, adam = small_run.parent / "search.toml", small_run.parent / "adam_x10.py"
    config.write_text(CONFIG)
    adam.write_text(ADAM_X10)
    assert main(["transfer", str(config), str(adam), sgd, "--seeds", "3", "--tasks", "1",
                 "--cache", str(cache)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"# Transfer on the held-out tasks of {config}")
    assert printed.strip().splitlines()[-2:] == [winner.replace("#1", "adam_x10"), loser]


def test_transfer_errors_are_one_line(small_run, tmp_path, capsys):
    drift = tmp_path / "drift.py"
    drift.write_text("def d(ratio, advantage):\n    x = ratio * advantage\n    return x\n")
    for args, message in [
            ([str(tmp_path / "missing")], "no such run directory"),
            ([f"{small_run}:9"], "has no candidate 9"),
            ([str(small_run), str(drift)], "transfer scores optimizer programs"),
            ([str(tmp_path / "none.toml"), str(drift)], "no such config file"),
            ([str(ROOT / "examples" / "quickstart.toml")], "name the programs to score"),
            ([str(ROOT / "examples" / "quickstart.toml"), str(drift), "--top", "2"],
             "a config has no candidates")]:
        assert main(["transfer", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit) as usage:  # argparse's errors: one line too, exit 2
        main(["transfer", str(small_run), "--seeds", "0"])
    assert usage.value.code == 2
    assert "--seeds: expected a positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_scores_are_the_log_ratios_of_the_trainers_outputs_on_the_scoring_seeds():
    import jax
    import optax

    from disco_rules.discovery.evaluator import task_keys
    from disco_rules.discovery.inner.train import evaluate_population, make_optax_train
    from disco_rules.dsl import library
    from disco_rules.dsl.interpreter import Encoding

    seeds, run_seed, test_seed = 2, 3, 4
    lrs, decays = (1e-3, 1e-2, 1e-1), (0.0, 1e-1)
    encoding = Encoding(max_statements=16)
    sgd, momentum = library.program("sgd"), library.program("momentum")
    result = transfer.evaluate_task(TASK, {"sgd": sgd, "momentum": momentum}, encoding, seeds,
                                    run_seed, test_seed,
                                    transfer.Grid(lrs, decays, (transfer.CONSTANT,), past_edge=0))
    final = {}  # keys' seed -> [lr, seed] final losses of sgd
    adamw = {}  # keys' seed -> {(lr, decay): [seed]} final losses of optax's own AdamW
    for seed in (run_seed, test_seed):
        keys = task_keys(TASK, seeds, seed)
        raw = evaluate_population(TASK, encoding, encoding.encode_population([sgd]),
                                  np.asarray(lrs, np.float32), keys)
        assert not np.asarray(raw.diverged).any()
        final[seed] = np.asarray(raw.final_loss[0], np.float64)
        adamw[seed] = {}
        for decay in decays:  # weight decay a constant
            train = jax.jit(jax.vmap(make_optax_train(
                TASK, lambda lr, decay=decay: optax.adamw(lr, weight_decay=decay)),
                in_axes=(None, 0)))
            for lr in lrs:
                adamw[seed][lr, decay] = np.asarray(train(np.float32(lr), keys).final_loss,
                                                    np.float64)
    chosen = int(np.argmin(np.log(final[run_seed]).mean(axis=1)))  # tuned on run_seed's keys
    best = min(adamw[run_seed], key=lambda point: np.log(adamw[run_seed][point]).mean())
    assert result.optimizers["sgd"].lr == pytest.approx(lrs[chosen])
    assert (result.baseline.lr, result.baseline.weight_decay) == pytest.approx(best)
    expected = np.log(adamw[test_seed][best]) - np.log(final[test_seed][chosen])
    assert np.abs(expected - (np.log(adamw[run_seed][best]) - np.log(final[run_seed][chosen]))
                  ).max() > 1e-3  # scoring on the tuning seeds would not pass
    np.testing.assert_allclose(result.scores("sgd"), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # trains the winner through the interpreter and its export on 3 seeds
def test_the_optax_export_check_finds_the_interpreters_losses(tmp_path, capsys):
    from disco_rules.api import open_run

    spec = importlib.util.spec_from_file_location("optax_check",
                                                  ROOT / "docs/experiments/optax_check.py")
    check = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(check)
    run_dir = tmp_path / "programs"
    shutil.copytree(ROOT / "tests/data/runs-0.1/programs", run_dir)
    best = open_run(run_dir).top(1)[0].id
    check.main([str(run_dir), str(best), "--lr", "0.01", "--seeds", "3"])
    (line,) = capsys.readouterr().out.splitlines()  # one held-out task
    assert line.startswith("mlp_regression(")
    interpreter, exported = (float(part.split(" ")[-1].rstrip(","))
                             for part in line.split(": ", 1)[1].split(", ")[:2])
    assert exported == pytest.approx(interpreter, rel=1e-4)
    assert float(line.rsplit(" ", 1)[1]) < 1e-4


@pytest.mark.slow  # tunes SGD and AdamW over lr and schedule grids
def test_programs_are_tuned_over_schedules_and_scored_under_the_chosen_one():
    """SGD at a large lr on a noisy quadratic ends at its noise floor at a constant lr and far
    below it under a cosine decay to 0: the tuning chooses the cosine, and scoring trains
    under it (a point that dropped its schedule would reproduce the constant run's losses)."""
    from disco_rules.discovery.evaluator import task_keys
    from disco_rules.discovery.inner.schedules import CONSTANT, Schedule
    from disco_rules.dsl import library
    from disco_rules.dsl.interpreter import Encoding

    task = Task.make("quadratic", dim=8, condition_number=10.0, noise=1.0, horizon=60)
    cosine = Schedule("cosine", 0.0, 0.0)
    keys, encoding, sgd = task_keys(task, 2, 0), Encoding(max_statements=8), library.program("sgd")
    grid = transfer.Grid((0.3,), (0.0,), (CONSTANT, cosine))
    [tuned] = transfer.tune_programs(task, encoding, [sgd], grid, keys)
    [constant] = transfer.tune_programs(task, encoding, [sgd], transfer.Grid((0.3,), (0.0,),
                                                                            (CONSTANT,)), keys)
    assert tuned.schedule == cosine and tuned.point().schedules == (cosine,)
    assert np.all(tuned.losses < constant.losses)
    [again] = transfer.tune_programs(task, encoding, [sgd], tuned.point(), keys)
    np.testing.assert_allclose(again.losses, tuned.losses, rtol=1e-5)  # not the constant's
    adamw = transfer.tune_adamw(task, grid, keys)
    assert adamw.schedule in (CONSTANT, cosine)
    np.testing.assert_allclose(transfer.tune_adamw(task, adamw.point(), keys).losses,
                               adamw.losses, rtol=1e-5)


def _quadratic_in_log_lr(best: float, calls: list[tuple[float, ...]]):
    """A tuning whose loss is exp((log10 lr - log10 best)^2) on two seeds: the closed form
    lets a test name the point it must choose; `calls` records every lrs it was asked for."""
    def tune(lrs: tuple[float, ...]) -> transfer.Tuned:
        calls.append(lrs)
        lr = min(lrs, key=lambda x: (math.log10(x) - math.log10(best)) ** 2)
        loss = math.exp((math.log10(lr) - math.log10(best)) ** 2)
        return transfer.Tuned(lr, math.nan, np.full(2, loss), np.zeros(20))
    return tune


@pytest.mark.parametrize("best, past_edge, chosen, steps", [
    (0.5, 2, 1.0, 2),  # 1 beats 0.1, 10 does not beat 1: stops there
    (30.0, 2, 10.0, 2),  # both steps better: the limit stops it
    (30.0, 1, 1.0, 1),
    (0.02, 2, 0.01, 0),  # inside the grid: no step
    (2e-5, 2, 1e-5, 2),  # the bottom edge: 1e-5 beats 1e-4, 1e-6 does not beat 1e-5
    (0.5, 0, 0.1, 0),
])
def test_tuning_goes_past_an_edge_of_the_grid_one_step_at_a_time_while_better(
        best, past_edge, chosen, steps):
    calls: list[tuple[float, ...]] = []
    grid = transfer.Grid((1e-4, 1e-3, 1e-2, 1e-1), past_edge=past_edge)
    tuned = tune_past_edges(_quadratic_in_log_lr(best, calls), grid.lrs, grid.past_edge,
                            lambda t: t.lr, lambda t: t.score)
    assert tuned.lr == pytest.approx(chosen)
    assert calls[0] == grid.lrs and len(calls) == 1 + steps
    assert all(len(lrs) == 1 for lrs in calls[1:])


def test_the_task_table_marks_an_lr_as_far_as_tuning_reaches():
    """With the protocol's grid (1e-4 to 0.1 in half decades, 2 steps past an edge) tuning
    reaches lr 1 and 1e-5: a point chosen there is marked and footnoted, 0.32 is not."""
    grid = transfer.GRID
    assert transfer_report.at_reach(grid, 1.0) and transfer_report.at_reach(grid, 1e-5)
    assert not any(transfer_report.at_reach(grid, lr) for lr in (0.1, 10 ** -0.5, 1e-4, math.nan))
    assert transfer_report.at_reach(replace(grid, past_edge=0), 0.1)

    def table(lr: float) -> str:
        result = transfer.TaskResult(TASK, _tuned([1.0, 1.0]), {
            "x": transfer.Tuned(lr, math.nan, np.ones(2), np.ones(20))})
        outcome = transfer.Transfer((transfer.SuiteTask("f", "held-out", TASK),), (),
                                    (result,), 2, 1, 2, grid)
        return transfer_report.task_table(outcome, ["x"])

    assert "@ lr 1† |" in table(1.0) and table(1.0).endswith("might do better still beyond it.")
    assert "†" not in table(10 ** -0.5) and "@ lr 0.32 |" in table(10 ** -0.5)


def test_one_step_past_an_edge_is_one_step_of_the_geometric_grid():
    assert step_past_edge((1e-3, 1e-2, 1e-1), 0.01) is None
    assert step_past_edge((1e-3, 1e-2, 1e-1), 0.1) == pytest.approx(1.0)
    assert step_past_edge((1e-3, 3e-3), 1e-3) == pytest.approx(1e-3 / 3)
    assert step_past_edge((1e-3,), 1e-3) is None
    assert step_past_edge((1e-3, 1e-2), math.nan) is None


@pytest.mark.slow  # tunes AdamW over two grids on a small quadratic
def test_an_adamw_cut_short_by_the_grid_is_tuned_on_past_its_edge():
    """On a quadratic AdamW needs an lr far above a grid of 1e-5, 1e-4: tuning goes past the
    top edge and chooses the same point as tuning over the grid that holds those lrs."""
    from disco_rules.discovery.evaluator import task_keys
    from disco_rules.dsl.interpreter import Encoding

    task = Task.make("quadratic", dim=6, condition_number=10.0, horizon=20)
    narrow = transfer.Grid((1e-5, 1e-4), (0.0,), (transfer.CONSTANT,), past_edge=2)
    cache: dict[str, dict] = {}
    result = transfer.evaluate_task(task, {}, Encoding(max_statements=8), 2, 3, 4, narrow, cache)
    wide = transfer.tune_adamw(task, transfer.Grid((1e-5, 1e-4, 1e-3, 1e-2), (0.0,),
                                                   (transfer.CONSTANT,)), task_keys(task, 2, 3))
    assert wide.lr == pytest.approx(1e-2)  # the wide grid's own top: the quadratic wants more
    assert result.baseline.lr == pytest.approx(wide.lr)
    tunings = sorted(json.loads(key)[3] for key in cache if json.loads(key)[2] == 3)
    assert len(tunings) == 3  # the grid, then 1e-3 and 1e-2, each better; 2 steps at most
    assert tunings[0] == [1e-5, 1e-4]
    np.testing.assert_allclose([lrs[0] for lrs in tunings[1:]], [1e-3, 1e-2], rtol=1e-6)
    unextended = transfer.evaluate_task(task, {}, Encoding(max_statements=8), 2, 3, 4,
                                        replace(narrow, past_edge=0))
    assert unextended.baseline.lr == pytest.approx(1e-4)
    assert np.all(unextended.baseline.losses > result.baseline.losses)


@pytest.mark.slow  # tunes AdamW over three weight decays, then the whole grid at once
def test_adamw_is_tuned_one_weight_decay_at_a_time_each_kept_as_it_finishes(monkeypatch):
    """AdamW's grid is tuned one weight decay at a time, each tuning reaching the cache as it
    finishes: the point chosen is the one the whole grid in one call chooses, and a cache that
    lost a decay's tuning (a stop) trains only that decay again."""
    from disco_rules.discovery.evaluator import task_keys
    from disco_rules.dsl.interpreter import Encoding

    task = Task.make("quadratic", dim=6, condition_number=10.0, horizon=30)
    grid = transfer.Grid((1e-2, 1e-1, 1.0), (0.0, 0.3, 3.0), (transfer.CONSTANT,), past_edge=0)
    cache: dict[str, dict] = {}
    stored: list[str] = []
    result = transfer.evaluate_task(task, {}, Encoding(max_statements=8), 2, 3, 4, grid, cache,
                                    lambda entries: stored.extend(entries))
    assert [json.loads(entry)[4] for entry in stored[:4]] == [
        "optax.adamw, weight decays [0.0]", "optax.adamw, weight decays [0.3]",
        "optax.adamw, weight decays [3.0]", "optax.adamw, weight decays [0.0, 0.3, 3.0]"]
    whole = transfer.tune_adamw(task, grid, task_keys(task, 2, 3))
    assert whole.weight_decay == pytest.approx(0.3)  # not the first decay tried, nor the last
    chosen = transfer._loaded(cache[stored[3]])
    assert (chosen.lr, chosen.weight_decay, chosen.schedule) == \
        (pytest.approx(whole.lr), pytest.approx(whole.weight_decay), whole.schedule)
    np.testing.assert_allclose(chosen.losses, whole.losses, rtol=1e-5)

    del cache[stored[2]], cache[stored[3]]  # a stop while the last decay trained
    trained = []
    tune_adamw = transfer.tune_adamw
    monkeypatch.setattr(transfer, "tune_adamw", lambda task, grid, keys: (
        trained.append(grid.weight_decays), tune_adamw(task, grid, keys))[1])
    again = transfer.evaluate_task(task, {}, Encoding(max_statements=8), 2, 3, 4, grid, cache)
    assert trained == [(3.0,)]
    np.testing.assert_array_equal(again.baseline.losses, result.baseline.losses)


@pytest.mark.parametrize("x, y", [([1, 2, 3, 4], [10, 20, 30, 40]),
                                  ([1, 2, 3, 4], [4, 3, 2, 1]),
                                  ([1, 2, 2, 3, 5], [1, 3, 2, 4, 4]),
                                  ([0.3, -0.1, 0.2, 0.0, 0.5], [0.1, 0.0, -0.2, 0.05, 0.3])])
def test_rank_correlation_is_spearmans(x, y):
    from scipy.stats import spearmanr  # scikit-learn's dependency: an independent reference

    assert transfer_report.rank_correlation(x, y) == pytest.approx(spearmanr(x, y).statistic)


def test_rank_correlation_is_undefined_below_three_pairs_or_for_a_constant():
    assert math.isnan(transfer_report.rank_correlation([1, 2], [2, 1]))
    assert math.isnan(transfer_report.rank_correlation([1, 1, 1], [1, 2, 3]))


@pytest.mark.slow  # `disco transfer --top`: tunes and trains each candidate on the suite
def test_transfer_top_calibrates_the_searchs_estimate_against_transfer(small_run, capsys,
                                                                       monkeypatch):
    """--top 2: the run's two best by validation, and a table of each optimizer's in-search
    validation score (archived for the candidates, scored as the run would for the
    references) beside its transfer score, with their rank correlation."""
    monkeypatch.setattr(transfer, "GRID", transfer.Grid((1e-3,), (0.0,)))
    heldout = "quadratic(condition_number=10.0,dim=6,horizon=20,noise=0.1)"
    with RunStore.open(small_run) as store:
        store.add_baseline(BaselineRecord(task=heldout, score=0.0, loss=1.0, lr=1e-3,
                                          optimizer="adam", weight_decay=0.0, seeds=1))
        store.add_generation(1, [CandidateRecord(id=2, generation=1, kind="programs",
                                                 text=SLOW_SGD, hash="h2", fitness=-1.0,
                                                 status="ok")],
                             validation=[ValidationRecord(candidate_id=2, task=heldout,
                                                          score=-0.5)])
    assert main(["transfer", str(small_run), "--top", "2", "--seeds", "2", "--tasks", "1"]) == 0
    printed = capsys.readouterr().out
    table = printed.split("## Calibration")[1].split("## Candidates")[0]
    rows = {line.split("|")[1].strip(): line.split("|")[2:4] for line in table.splitlines()
            if line.startswith("| ") and "optimizer" not in line}
    assert list(rows) == ["#1", "#2", "adam", "lion", "momentum"]
    assert float(rows["#1"][0]) == 0.2 and float(rows["#2"][0]) == -0.5  # archived
    in_search = [float(cells[0]) for cells in rows.values()]
    transferred = [float(cells[1].split()[0]) for cells in rows.values()]
    assert all("from 2 results" in cells[1] for cells in rows.values())  # too few for a ±
    rho = float(table.split("optimizers: ")[1].split()[0])
    assert rho == pytest.approx(transfer_report.rank_correlation(in_search, transferred), abs=0.01)
    # from 2 results a margin must clear t(0.975, 1) = 12.71 SE: neither is called ahead or
    # behind, though Adam x10 is ahead and slow SGD behind on both seeds
    assert transferred[0] > 0 > transferred[1]
    for name in ("#1", "#2"):
        assert re.search(rf"^{name} is within noise of tuned AdamW \([+-]0\.\d+ from 2 results, "
                         r"12\.71 SE needed from 2 results; ", printed, re.MULTILINE), printed


def test_program_files_may_follow_the_options():
    from disco_rules.discovery.cli import parse_arguments

    args = parse_arguments(["transfer", "runs/x", "a.py", "--top", "3", "b.py", "c.py"])
    assert (args.run, args.programs, args.top) == ("runs/x", ["a.py", "b.py", "c.py"], 3)
    with pytest.raises(SystemExit) as usage:  # an unknown option is still refused
        parse_arguments(["transfer", "runs/x", "--top", "3", "b.py", "--colour"])
    assert usage.value.code == 2
