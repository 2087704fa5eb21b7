"""Successive halving in the program search's funnel (`[screen] keep`): of the new children
that pass `screen.min_fitness`, only the best ceil(keep * new children) by screen fitness train
on the training tasks; the rest are archived as screened with their rank. Warm starts are
never cut. keep = 1.0 is the funnel as it was."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.config import ConfigError, parse_config
from disco_rules.discovery.evaluator import Evaluator, ProgramsItem
from disco_rules.discovery.scoring import WORST
from disco_rules.discovery.search.programs import (ProgramPopulation, Scored, screen_reasons,
                                                  survivors)
from disco_rules.discovery.status import CandidateStatus
from disco_rules.dsl.slots import OPTIMIZER
from test_search import CONFIG, archive_rows, make_search, programs
from tests.configs import config_variant

SCREEN = """
[screen]
task = { family = "quadratic", dim = 4, horizon = 10 }
min_fitness = -3.0
"""
# one program per work item, so that work items count programs
HALVING = config_variant(CONFIG + SCREEN, {"generations": 3, "cluster.batch_size": 1,
                                           "screen.keep": 0.5})


# --- the rule, alone ------------------------------------------------------------------------

def test_the_best_by_screen_fitness_go_on_and_the_rest_are_told_their_rank():
    scores = [0.1, 0.5, -0.2, 0.9, 0.3, 0.0, 0.7, 0.2]
    kept, reasons = survivors(scores, keep=0.25, min_fitness=-math.inf)
    assert kept == [3, 6]  # 0.9 and 0.7, in position order
    assert set(reasons) == {0, 1, 2, 4, 5, 7}
    assert reasons[1] == "screen rank 3 of 8 (screen.keep 0.25 trains the best 2 of 8 new children)"
    assert reasons[2].startswith("screen rank 8 of 8 ")


def test_ties_go_to_the_earlier_position():
    kept, reasons = survivors([0.5, 0.7, 0.7, 0.7, 0.1], keep=0.4, min_fitness=-1.0)
    assert kept == [1, 2]
    assert reasons[3].startswith("screen rank 3 of 5 ")
    assert survivors([0.0] * 6, keep=0.5, min_fitness=-1.0)[0] == [0, 1, 2]


def test_the_min_fitness_threshold_still_applies_before_the_ranking():
    scores = [-2.0, 0.1, math.nan, -0.5, 0.3, -math.inf]
    kept, reasons = survivors(scores, keep=1.0, min_fitness=-1.0)
    assert kept == [1, 3, 4]
    assert reasons == {0: "screen fitness -2 < -1.0", 2: "screen fitness nan < -1.0",
                       5: "screen fitness -inf < -1.0"}
    # 6 new children at keep 0.5: 3 places, and only 3 passed, so the cut takes none of them
    assert survivors(scores, keep=0.5, min_fitness=-1.0)[0] == [1, 3, 4]
    kept, reasons = survivors(scores, keep=0.25, min_fitness=-1.0)  # 2 places
    assert kept == [1, 4] and reasons[3].startswith("screen rank 3 of 3 ")
    # places are never given to those below the threshold
    assert survivors([-2.0, -3.0], keep=1.0, min_fitness=-1.0) == (
        [], {0: "screen fitness -2 < -1.0", 1: "screen fitness -3 < -1.0"})


@pytest.mark.parametrize("keep, new, places", [
    (0.25, 16, 4), (0.25, 9, 3), (0.5, 5, 3), (0.1, 30, 3), (0.3, 10, 3), (0.001, 5, 1),
    (1.0, 7, 7)])
def test_the_number_of_places_is_keep_times_the_new_children_rounded_up(keep, new, places):
    kept, _ = survivors(list(range(new)), keep=keep, min_fitness=-math.inf)
    assert len(kept) == places
    assert kept == list(range(new - places, new))  # the highest scores


def test_places_are_sized_from_all_new_children_not_only_those_screened():
    # 3 reached the screen task of 8 new children (5 were unstable): ceil(0.25 * 8) = 2 places
    kept, reasons = survivors([0.1, 0.3, 0.2], keep=0.25, min_fitness=-1.0, new=8)
    assert kept == [1, 2]
    assert reasons[0] == ("screen rank 3 of 3 (screen.keep 0.25 trains the best 2 of 8 new "
                          "children)")


def test_exempt_positions_pass_on_the_threshold_alone_and_take_no_place():
    scores = [-0.5, 0.9, 0.1, 0.4, -5.0]
    kept, reasons = survivors(scores, keep=0.3, min_fitness=-1.0, new=3, exempt={0, 4})
    assert kept == [0, 1]  # the exempt 0, and the one place (ceil(0.3 * 3)) to the best
    assert reasons[4] == "screen fitness -5 < -1.0"
    assert reasons[3].startswith("screen rank 2 of 3 ") and reasons[2].startswith(
        "screen rank 3 of 3 ")


scores_st = st.lists(st.one_of(st.floats(allow_nan=True), st.sampled_from([0.0, 1.0, -1.0])),
                     max_size=40)


@settings(max_examples=300, deadline=None)
@given(scores_st, st.floats(-5, 5))
def test_keep_one_keeps_everyone_who_passed_the_threshold(scores, min_fitness):
    kept, reasons = survivors(scores, keep=1.0, min_fitness=min_fitness)
    assert kept == [i for i, v in enumerate(scores) if v >= min_fitness]
    assert all(r.startswith("screen fitness ") for r in reasons.values())


@settings(max_examples=300, deadline=None)
@given(scores_st, st.floats(0.01, 1.0), st.floats(-5, 5))
def test_the_kept_are_the_top_of_the_ranking_and_every_other_position_has_a_reason(
        scores, keep, min_fitness):
    kept, reasons = survivors(scores, keep=keep, min_fitness=min_fitness)
    passed = [i for i, v in enumerate(scores) if v >= min_fitness]
    ranking = sorted(passed, key=lambda i: (-scores[i], i))
    assert kept == sorted(ranking[:math.ceil(round(keep * len(scores), 9))])
    assert sorted(kept + list(reasons)) == list(range(len(scores)))


# --- the config key -------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["0", "0.0", "-0.25", "1.5", "nan", "inf", '"half"', "true"])
def test_keep_outside_0_to_1_is_one_config_error_naming_it(value):
    with pytest.raises(ConfigError, match=r"^screen\.keep: ") as error:
        parse_config(CONFIG + SCREEN + f"keep = {value}\n")
    assert "\n" not in str(error.value)


def test_keep_needs_a_screen_task_and_defaults_to_everyone():
    with pytest.raises(ConfigError, match=r"^screen\.keep: .*needs a screen\.task"):
        parse_config(CONFIG + "[screen]\nkeep = 0.5\n")
    assert parse_config(CONFIG).screen.keep == 1.0
    assert parse_config(CONFIG + SCREEN + "keep = 1\n").screen.keep == 1.0


# --- in the search --------------------------------------------------------------------------

def archived(store):
    return [store.candidate(i) for i in range(store.count())]


class TrainCounting(LocalPool):
    """In-process pool that counts the work items it ran, per task key."""

    def __init__(self, factory):
        super().__init__(factory)
        self.items: dict[str, int] = {}

    def map(self, items):
        for item in items:
            if isinstance(item, ProgramsItem):
                self.items[item.task.key] = self.items.get(item.task.key, 0) + 1
        return super().map(items)


@pytest.mark.slow  # a whole 3-generation search with a screen task
def test_only_the_kept_children_train_and_the_archive_says_why_the_others_did_not(tmp_path):
    config = parse_config(HALVING)
    pool = TrainCounting(lambda: Evaluator(config.population.max_statements))
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"), HALVING, pool)
    train_key, = (task.key for task in search.tasks.train)
    screen = search.tasks.screen
    cut = 0
    for g in range(3):
        before = pool.items.get(train_key, 0)
        search.step()
        records = [r for r in archived(store) if r.generation == g]
        warm = records[:2] if g == 0 else []
        assert all(r.status == "ok" for r in warm)  # warm starts are never cut
        children = [r for r in records[len(warm):] if r.status != "cached"]
        places = math.ceil(config.screen.keep * len(children))
        trained = [r for r in children if r.status != "screened"]
        ranked_out = [r for r in children if r.reason and r.reason.startswith("screen rank ")]
        # the kept count: the places, or all who passed the threshold if fewer
        assert len(trained) == min(places, len(trained) + len(ranked_out))
        for r in ranked_out:
            assert r.status == "screened" and r.fitness == WORST
            assert r.reason.endswith(f"of {len(trained) + len(ranked_out)} (screen.keep 0.5 "
                                     f"trains the best {places} of {len(children)} new children)")
            assert store.scores_of(r.id) == []
        # what the pool trained on the training task, and the score rows, are the kept ones
        assert pool.items[train_key] - before == len(trained) + len(warm)
        assert sum(any(s.task == train_key for s in store.scores_of(r.id))
                   for r in records) == len(trained) + len(warm)
        # the kept scored at least as well on the screen task as those cut
        if ranked_out:
            baselines = {screen.key: store.baseline(screen.key)}
            ids = [r.id for r in trained + ranked_out]
            values = [s.value for (s,) in search.population.score(
                ids, [screen], baselines, config.tasks.seeds)]
            assert min(values[:len(trained)]) >= max(values[len(trained):])
        cut += len(ranked_out)
    assert cut > 0  # the config makes the cut bite


def committed_evaluate(self, programs, train, baselines, warm=0):
    """ProgramPopulation._evaluate as committed before `screen.keep` (8e425bb): the
    threshold alone (`warm` is unused), with the step-count screen added since (6e4dcfd)."""
    outcomes = [None] * len(programs)
    passing = list(range(len(programs)))
    if self.slot == OPTIMIZER:
        passing = []
        for i, reason in enumerate(screen_reasons(programs)):
            if reason is None:
                passing.append(i)
            else:
                outcomes[i] = Scored(WORST, CandidateStatus.SCREENED, reason)
    if self.screen is not None and passing:
        screened = self._score([programs[i] for i in passing], [self.screen], baselines)
        candidates, passing = passing, []
        for i, (score,) in zip(candidates, screened):
            if score.value >= self.config.screen.min_fitness:
                passing.append(i)
            else:
                outcomes[i] = Scored(WORST, CandidateStatus.SCREENED,
                                     score.reason or f"screen fitness {score.value:.3g} < "
                                               f"{self.config.screen.min_fitness}")
    full = self._score([programs[i] for i in passing], train, baselines)
    for i, per_task in zip(passing, full):
        values = [score.value for score in per_task]
        reasons = [score.reason for score in per_task if score.reason]
        rows = tuple(score.row for score in per_task)
        if reasons:
            status = CandidateStatus(reasons[0]) if reasons[0] in ("nan", "diverged") \
                else CandidateStatus.FAILED
            outcomes[i] = Scored(WORST, status, reasons[0], rows)
        else:
            outcomes[i] = Scored(float(np.mean(values)), CandidateStatus.OK, None, rows)
    return [o for o in outcomes if o is not None]


@pytest.mark.slow  # two whole 3-generation searches
def test_keep_one_archives_exactly_what_the_committed_funnel_archived(tmp_path, monkeypatch):
    # a threshold that screens some children out
    text = config_variant(CONFIG + SCREEN, {"generations": 3, "screen.min_fitness": -0.5})
    warm = programs("sgd", "momentum")
    search, now, _ = make_search(tmp_path / "now", warm,
                                 config_variant(text, {"screen.keep": 1.0}))
    search.run(3)
    with monkeypatch.context() as patch:
        patch.setattr(ProgramPopulation, "_evaluate", committed_evaluate)
        search, before, _ = make_search(tmp_path / "before", warm, text)
        search.run(3)
    assert any(r.reason and r.reason.startswith("screen fitness ") for r in archived(now))
    assert archive_rows(now) == archive_rows(before)


@pytest.mark.slow  # a whole search, and one interrupted and resumed
def test_a_resumed_halving_run_ends_with_the_same_archive(tmp_path):
    from test_search import CountingPool

    warm = programs("sgd", "momentum")
    search, straight, _ = make_search(tmp_path / "straight", warm, HALVING)
    search.run(3)
    config = parse_config(HALVING)
    crashing = CountingPool(lambda: Evaluator(config.population.max_statements), fail_on_call=6)
    search, interrupted, _ = make_search(tmp_path / "interrupted", warm, HALVING, crashing)
    with pytest.raises(KeyboardInterrupt):
        search.run(3)
    interrupted.close()
    search, resumed, _ = make_search(tmp_path / "interrupted", warm, HALVING)
    assert 0 < search.generation < 3
    search.run(3)
    assert archive_rows(resumed) == archive_rows(straight)
