"""The inner training loops train every task family, agree with optax, evaluate a population
in one cached compiled call, and turn results into fitness without ever raising."""

import functools
import math
from pathlib import Path

import jax
import numpy as np
import optax
import pytest

import disco_rules.discovery.inner.train as train_module
from disco_rules.discovery.tasks import FAMILIES, Task, heldout, real
from disco_rules.discovery.tasks.plugins import is_plugin
from disco_rules.discovery.inner.train import (CURVE_POINTS, TrainResult, baseline, checkpoints,
                             evaluate_population, fitness, make_optax_train,
                             make_program_train)
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse

EXAMPLES = {p.stem: parse(p.read_text()) for p in
            sorted((Path(__file__).parent.parent / "dsl" / "programs").glob("*.py"))
            if p.stem not in ("dpo", "ppo_clip")}  # those fill the objective slot
NAN = parse("def nan_update(w, g, lr):\n    update = log(-1.0 - abs(g))\n    return update\n")
BLOWUP = parse("def blowup(w, g, lr):\n    update = -sign(g)\n    return update\n")  # ascent
PROGRAMS = {**EXAMPLES, "nan": NAN, "blowup": BLOWUP}
NAMES = list(PROGRAMS)
ENCODING = Encoding(max_statements=16)
POPULATION = ENCODING.encode_population(list(PROGRAMS.values()))
LRS = np.array([1e-3, 1e-2, 1e-1, 1.0], np.float32)
KEYS = jax.random.split(jax.random.PRNGKey(0), 2)

TASKS = {
    "mlp_regression": Task.make("mlp_regression", horizon=60),
    "classification": Task.make("classification", width=16, depth=1, batch_size=16,
                                horizon=60),
    "rnn": Task.make("rnn", seq_len=4, width=8, batch_size=16, horizon=60),
    "rosenbrock": Task.make("rosenbrock", horizon=60),
    "quadratic": Task.make("quadratic", dim=8, horizon=60),
}
TASK = TASKS["mlp_regression"]


@functools.cache
def population_result(family: str) -> TrainResult:
    """Every test program on a small task of `family`: arrays [P, K, S, ...]."""
    return TrainResult(*(np.asarray(x) for x in evaluate_population(
        TASKS[family], ENCODING, POPULATION, LRS, KEYS)))


def program_result(family: str, name: str) -> TrainResult:
    """The [K, S] results of one program."""
    return TrainResult(*(x[NAMES.index(name)] for x in population_result(family)))


@functools.cache
def single_program_train():
    return jax.jit(make_program_train(TASK, ENCODING))


def adamw_with_decay(lr):
    """AdamW as the adamw.py example program writes it (weight decay 0.01)."""
    return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01)


def test_every_optimizer_family_has_a_test_task():
    # the real-data families are trained in tests/test_real_tasks.py
    assert set(TASKS) == {family.name for family in map(FAMILIES.get, FAMILIES)
                          if family.kind == "optimizer"
                          and family.build.__module__ not in (real.__name__, heldout.__name__)
                          and not is_plugin(family.name)}


def test_checkpoints_run_evenly_from_the_start_to_the_end():
    marks = checkpoints(200)
    assert len(marks) == CURVE_POINTS and marks[0] == 0 and marks[-1] == 200
    assert np.all(np.diff(marks) > 0)


@pytest.mark.slow  # trains a network of each family to a lower loss
@pytest.mark.parametrize("family", sorted(TASKS))
@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_every_family_learns_with_sgd_and_adam(family, name):
    result = program_result(family, name)
    assert result.curve.shape == (len(LRS), len(KEYS), CURVE_POINTS)
    np.testing.assert_array_equal(result.final_loss, result.curve[..., -1])
    usable = ~result.diverged.any(axis=-1)
    assert usable.any()
    best = np.where(usable, result.final_loss.mean(axis=-1), np.inf).min()
    initial = result.curve[..., 0].mean()
    assert best < 0.9 * initial, (best, initial)


def test_program_adamw_matches_optax_adamw():
    key, lr = KEYS[1], np.float32(0.01)
    ours = single_program_train()(ENCODING.encode(EXAMPLES["adamw"]), lr, key)
    reference = jax.jit(make_optax_train(TASK, adamw_with_decay))(lr, key)
    assert ours.curve[-1] < 0.5 * ours.curve[0]  # it trained, so the comparison means something
    np.testing.assert_allclose(ours.curve, reference.curve, rtol=1e-4)
    assert not ours.diverged and not reference.diverged


@pytest.mark.slow  # trains each program at each lr and seed alone, one after another
def test_population_equals_one_program_at_a_time():
    result = population_result("mlp_regression")
    assert result.final_loss.shape == (len(NAMES), len(LRS), len(KEYS))
    assert result.diverged.dtype == bool
    train = single_program_train()
    for p, program in enumerate(PROGRAMS.values()):
        encoded = ENCODING.encode(program)
        for k, lr in enumerate(LRS):
            for s, key in enumerate(KEYS):
                alone = train(encoded, lr, key)
                assert result.diverged[p, k, s] == alone.diverged
                # float32 reassociation differs between the two compilations: chaotic runs
                # (lr=1) grow it to ~1e-4, exploding ones beyond any tolerance; Muon at lr=1
                # (each step moves every weight by about 0.2) grows it from 1e-7 to a few
                # percent by the end, so its first half is compared
                checked = slice(None) if not alone.diverged else slice(0, 1)
                if (NAMES[p], lr) == ("muon", 1.0):
                    checked = slice(0, len(alone.curve) // 2)
                np.testing.assert_allclose(result.curve[p, k, s][checked],
                                           alone.curve[checked], rtol=1e-3,
                                           err_msg=f"{NAMES[p]} lr={lr} seed={s}")


def test_nan_program_gets_worst_fitness_with_a_reason():
    result = program_result("mlp_regression", "nan")
    assert result.diverged.all() and np.isnan(result.final_loss).all()
    assert fitness(result, baseline_loss=0.1) == (-math.inf, "nan")


def test_a_program_that_blows_up_finitely_is_diverged():
    result = program_result("mlp_regression", "blowup")
    assert np.isfinite(result.curve).all()
    assert result.diverged.all()
    assert fitness(result, baseline_loss=0.1) == (-math.inf, "diverged")


@pytest.mark.slow  # tunes the AdamW baseline over the lr grid
def test_adamw_scores_zero_against_its_own_baseline():
    best_lr, loss, curve = baseline(TASK, LRS, KEYS, make_optimizer=adamw_with_decay)
    assert best_lr in LRS and np.isfinite(loss) and curve.shape == (CURVE_POINTS,)
    mine = program_result("mlp_regression", "adamw")
    value, reason = fitness(mine, loss)
    assert reason is None and value == pytest.approx(0.0, abs=1e-3)
    sgd_value, _ = fitness(program_result("mlp_regression", "sgd"), loss)
    assert sgd_value != pytest.approx(0.0, abs=1e-3)


def test_default_baseline_is_tuned_adamw():
    best_lr, loss, curve = baseline(TASKS["rosenbrock"], LRS, KEYS[:1])
    assert best_lr in LRS and np.isfinite(loss)
    assert curve[-1] == pytest.approx(loss, rel=1e-5)  # one seed: mean = geometric mean
    assert curve[-1] < curve[0]


def test_the_cpu_compiler_options_change_results_only_by_float_rounding(monkeypatch):
    """train.CPU_COMPILER_OPTIONS only speed compilation: at stable learning rates the
    trainers agree with XLA's default options to float32 rounding (chaotic runs at lr 1
    amplify rounding), and a NaN program is still diverged everywhere."""
    assert jax.default_backend() == "cpu" and train_module.CPU_COMPILER_OPTIONS
    ours = population_result("mlp_regression")
    monkeypatch.setattr(train_module, "CPU_COMPILER_OPTIONS", None)
    monkeypatch.setattr(train_module, "_COMPILED", {})
    default = TrainResult(*(np.asarray(x) for x in evaluate_population(
        TASKS["mlp_regression"], ENCODING, POPULATION, LRS, KEYS)))
    stable = slice(0, 2)  # lrs 1e-3 and 1e-2
    assert np.array_equal(ours.diverged[:, stable], default.diverged[:, stable])
    for p, name in enumerate(NAMES):
        if name not in ("nan", "blowup"):
            np.testing.assert_allclose(ours.curve[p, stable], default.curve[p, stable],
                                       rtol=1e-4, err_msg=name)
    assert ours.diverged[NAMES.index("nan")].all()


def test_compiled_population_is_cached_and_reused(monkeypatch):
    traces = []
    tree_step = train_module.apply_optimizer_tree
    monkeypatch.setattr(train_module, "apply_optimizer_tree",
                        lambda *args: traces.append(1) or tree_step(*args))
    task = Task.make("rosenbrock", dim=3, horizon=10)
    population = ENCODING.encode_population([EXAMPLES["sgd"]])
    first = evaluate_population(task, ENCODING, population, LRS[:1], KEYS[:1])
    assert len(traces) == 1
    again = evaluate_population(Task.make("rosenbrock", dim=3, horizon=10), ENCODING,
                                ENCODING.encode_population([EXAMPLES["adam"]]), LRS[1:2],
                                KEYS[1:])
    assert len(traces) == 1
    assert not np.array_equal(first.curve, again.curve)


def test_baseline_is_cached_and_reused():
    calls = []

    def counting_adamw(lr):
        calls.append(1)
        return optax.adamw(lr)

    task = Task.make("rosenbrock", dim=3, horizon=10)
    baseline(task, LRS[:2], KEYS, make_optimizer=counting_adamw)
    traced = len(calls)
    assert traced >= 1
    baseline(task, LRS[2:], KEYS, make_optimizer=counting_adamw)
    assert len(calls) == traced


def synthetic(final, diverged=None) -> TrainResult:
    """A [K, S] result whose curves fall from 1.0 to `final`."""
    final = np.asarray(final, np.float32)
    curve = np.stack([np.ones_like(final), final], axis=-1)
    if diverged is None:
        diverged = ~np.isfinite(final)
    return TrainResult(final, curve, np.asarray(diverged, bool))


def test_fitness_is_the_log_ratio_at_the_best_lr():
    candidate = synthetic([[0.5, 0.5], [0.1, 0.4], [0.3, 0.3]])
    value, reason = fitness(candidate, baseline_loss=0.3)
    assert reason is None
    assert value == pytest.approx(math.log(0.3 / 0.2), rel=1e-5)  # 0.2: geometric mean


def test_fitness_skips_lrs_that_failed_on_any_seed():
    candidate = synthetic([[np.nan, np.nan], [0.001, np.inf], [0.5, 0.5], [0.01, 0.01]],
                          diverged=[[True, True], [False, True], [False, False], [True, True]])
    value, reason = fitness(candidate, baseline_loss=1.0)
    assert reason is None and value == pytest.approx(-math.log(0.5), rel=1e-6)


def test_fitness_without_a_usable_lr_is_worst_with_a_reason():
    assert fitness(synthetic([[np.nan, 0.1], [np.inf, np.inf]]), 1.0) == (-math.inf, "nan")
    blown = synthetic([[5e3, 5e3], [np.nan, np.nan]], diverged=True)
    assert fitness(blown, 1.0) == (-math.inf, "diverged")


def test_fitness_stays_finite_for_a_solved_problem():
    value, reason = fitness(synthetic([[0.0, 0.0]]), 1.0)
    assert reason is None and np.isfinite(value) and value > 20


def test_fitness_never_raises():
    value, reason = fitness(synthetic([[0.1]]), math.nan)
    assert value == -math.inf and "baseline" in reason
    value, reason = fitness(TrainResult(np.zeros(3), np.zeros(2), np.zeros(4)), 1.0)
    assert value == -math.inf and reason
