"""The step-count screen (dsl/stationarity.py): rules whose steps depend on the step count,
not on their gradients or on `progress`, are found, with the closed form of their steps on a
constant gradient as the reference; its compiled steps match the reference evaluator's, one
step at a time, on the shipped optimizers and on mutants; the shipped optimizers and the
flagship's stationary candidates pass, and the search screens a child that counts steps
before training it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from disco_rules.dsl import library
from disco_rules.dsl.mutate import mutation_chain
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program
from disco_rules.dsl.simplify import simplify
from disco_rules.dsl.stationarity import (CHUNK, HORIZONS, LR, WINDOWS, mean_steps,
                                          reference_steps, step_schedule, step_schedules)
from tests.experiment_programs import experiment_program

CONSTANT = ((1.0, 0.0),)  # a gradient of 1 at every step: the closed forms below

ADAM_NO_CORRECTION = experiment_program("adam_no_correction")
# runs/flagship_seed7's #256 (simplified): Cautious AdamW whose v is divided by the step
DIVIDES_V_BY_STEP = parse("""\
def cautious(w, g, m, v, lr, step):
    v0 = 0.0023289568555789008 * w
    v1 = interp(g, m, 0.520975809055713)
    v2 = 0.9 ** step
    v3 = 1.6654483621124276 - v2
    v4 = v1 / v3
    v5 = square(g)
    v6 = interp(v5, v, 0.4779612806028028)
    v7 = 0.999 + step
    v8 = v6 / v7
    v9 = sqrt(v8)
    v10 = 8.71910125317755e-09 + v9
    v11 = v4 / v10
    v12 = g * v11
    v13 = where(v12, 1.0, 0.0)
    v14 = v11 * v13
    v15 = mean(v13)
    v16 = 0.0009637688377111329 + v15
    v17 = v14 / v16
    v18 = v0 + v17
    v19 = lr * v18
    return v19, v1, v6
""")


def rule(body: str, params: str = "w, g, lr") -> Program:
    lines = body.strip().splitlines()
    return parse(f"def r({params}):\n" + "".join(f"    {line}\n" for line in lines))


def window_means(step_size, horizon: int) -> np.ndarray:
    """The mean over each of WINDOWS of `step_size(t)`, as `mean_steps` takes its windows."""
    means = []
    for low, high in WINDOWS:
        steps = np.arange(int(low * horizon) + 1, int(high * horizon) + 1)
        means.append(np.mean([step_size(t) for t in steps]))
    return np.array(means)


def test_adam_without_bias_correction_takes_the_steps_of_its_closed_form():
    # on a constant gradient g = 1: m_t = 1 - b1^t (its b1 is 0.738...), v_t = 1 - 0.999^t,
    # so its step is lr (1 - b1^t) / (sqrt(1 - 0.999^t) + eps)
    b1 = 0.7383576080272077

    def closed(t: int) -> float:
        return LR * (1 - b1 ** t) / (math.sqrt(1 - 0.999 ** t) + 1e-8)

    measured = mean_steps([ADAM_NO_CORRECTION], CONSTANT)[0, :, :, 0]
    for h, horizon in enumerate(HORIZONS):
        np.testing.assert_allclose(measured[h], window_means(closed, horizon), rtol=1e-4)
    reason = step_schedule(ADAM_NO_CORRECTION, CONSTANT)
    ratio = window_means(closed, HORIZONS[0])[0] / window_means(closed, HORIZONS[1])[0]
    assert ratio > 2.5  # three times larger steps early in a short run than in a long one
    assert reason == (f"a schedule counted in steps: at 0.1-0.2 of the way through training, "
                      f"on unchanging gradients (mean 1, sd 0), its steps over 300 steps are "
                      f"{ratio:.2g}x those over 3000 (a rule's only schedule is its lr)")


def test_a_rule_dividing_v_by_the_step_is_found():
    # the seed-7 flagship's choice: its steps grow as sqrt(t), so ten times the horizon takes
    # sqrt(10) times larger steps at the same progress
    measured = mean_steps([DIVIDES_V_BY_STEP], CONSTANT)[0, :, :, 0]
    np.testing.assert_allclose(measured[0] / measured[1], 1 / math.sqrt(10), rtol=0.05)
    assert "a schedule counted in steps" in step_schedule(DIVIDES_V_BY_STEP)


def test_compiled_steps_match_the_reference_evaluator_in_chunks_of_any_fill():
    rng = np.random.default_rng(3)
    # muon: `orth` of each row as an 8 x 8 matrix, in the interpreter's segments and numpy's rows
    shipped = [library.program(name) for name in ("momentum", "adam", "lion", "muon")]
    mutants = [simplify(mutation_chain(shipped[i % 3], rng, 1 + i % 4)) for i in range(CHUNK)]
    programs = shipped + mutants  # more than one chunk, the last one part padding
    measured = mean_steps(programs)
    for i, program in enumerate(programs):
        for h, horizon in enumerate(HORIZONS if i < len(shipped) else HORIZONS[:1]):
            np.testing.assert_allclose(measured[i, h], reference_steps(program, horizon),
                                       rtol=2e-5, atol=1e-30, err_msg=str(program))
    assert step_schedules(programs) == [step_schedule(p) for p in programs]


@pytest.mark.parametrize("body, params", [
    ("u = lr * sqrt(step) * g\nreturn u", "w, g, lr, step"),
    ("u = lr * g / step\nreturn u", "w, g, lr, step"),
    ("v = interp(square(g), v, 0.999)\nu = lr * g / (sqrt(v) + 1e-08)\nreturn u, v",
     "w, g, v, lr"),  # v without correction: Adam's flaw without its momentum
])
def test_steps_that_depend_on_the_step_count_are_screened(body, params):
    assert step_schedule(rule(body, params)).startswith("a schedule counted in steps")


@pytest.mark.parametrize("body, params", [
    # a schedule over progress is the same at the same progress of any horizon
    ("u = lr * (1.0 + cos(3.14159 * progress)) * g\nreturn u", "w, g, lr, progress"),
    # a bias correction gone within tens of steps, and one that corrects exactly
    ("m = interp(g, m, 0.5)\nu = lr * m / (1.0 - 0.5 ** step)\nreturn u, m", "w, g, m, lr, step"),
    ("v = interp(square(g), v, 0.999)\nu = lr * g / (sqrt(v / (1.0 - 0.999 ** step)) + 1e-08)"
     "\nreturn u, v", "w, g, v, lr, step"),
    # a step count whose effect stays within a factor of 2 over a tenfold horizon
    ("u = lr * (1.0 + 0.0003 * step) * g\nreturn u", "w, g, lr, step"),
])
def test_schedules_over_progress_and_vanishing_corrections_pass(body, params):
    assert step_schedule(rule(body, params)) is None


def test_the_shipped_optimizers_and_the_flagships_stationary_rules_pass():
    for name in ("sgd", "momentum", "adam", "adamw", "lion", "muon"):
        assert step_schedule(library.program(name)) is None, name
    for name in ("cautious_adamw", "cautious_24", "decay_24", "adam_linear_decay"):
        assert step_schedule(experiment_program(name)) is None, name


def test_the_previous_flagships_winner_is_found():
    # #960: Adam without bias correction, v capped at |w| (issue #18)
    assert "a schedule counted in steps" in step_schedule(
        experiment_program("flagship_960"))


def test_a_state_that_grows_without_bound_is_named():
    growing = rule("v = 1.5 * v + square(g)\nu = lr * v\nreturn u, v", "w, g, v, lr")
    assert step_schedule(growing) == ("its update is not finite within 3000 steps of "
                                      "unchanging gradients: a state that grows without bound")


def test_the_search_screens_a_child_that_counts_steps_before_training_it(tmp_path):
    from test_search import make_search, programs

    counting = rule("u = lr * sqrt(step) * g\nreturn u", "w, g, lr, step")
    search, store, _ = make_search(tmp_path / "run", [programs("sgd")[0], counting])
    search.step()
    record = store.candidate(1)
    assert record.status == "screened" and record.fitness == -math.inf
    assert record.reason.startswith("a schedule counted in steps")
    train = {task.key for task in search.tasks.train}
    assert not {row.task for row in store.scores_of(1)} & train  # never trained
