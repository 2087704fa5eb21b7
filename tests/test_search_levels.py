"""The program search driven by the regret scheduler: every member is ranked on the current
generation's tasks and takes its mean over every training task it has been scored on, the
scheduler is told the population's regret, the levels are archived, and a resumed run
samples the levels an uninterrupted one samples."""

import math
import sqlite3
from contextlib import closing

import numpy as np
import pytest

from disco_rules.cluster.results import Failed
from disco_rules.discovery.config import ConfigError, parse_config
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.levels import buffer_rows
from disco_rules.discovery.scoring import FITNESS_CAP
from disco_rules.discovery.search.engine import make_engine
from disco_rules.discovery.store import ARCHIVE_NAME, RunStore, SampledLevelRecord
from disco_rules.dsl.parser import parse
from disco_rules.populations.evolution import Child, RegularizedEvolution
from test_search import CONFIG, EXAMPLES, CountingPool, archive_rows, make_search, programs
from tests.configs import config_variant

SCHEDULED = config_variant(CONFIG, {"generations": 3}) + """
[scheduler]
kind = "regret"
levels = 2
capacity = 3
families = { quadratic = { dim = 4, horizon = 12 } }
"""


def levels_of(store, generation):
    return [row for row in store.sampled_levels() if row.generation == generation]


@pytest.mark.parametrize("cap", [FITNESS_CAP, 0.1])
def test_each_generation_ranks_every_member_by_its_mean_over_all_its_training_tasks(tmp_path,
                                                                                   cap):
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"),
                                   config_text=config_variant(SCHEDULED,
                                                              {"tasks.fitness_cap": cap}))
    heldout = {task.key for task in search.tasks.heldout}
    sampled, histories = set(), 0
    for g in range(3):
        search.step()
        rows = levels_of(store, g)
        assert len(rows) == 2 and not {row.task for row in rows} & heldout
        sampled |= {row.task for row in rows}
        train = [task.key for task in search.tasks.train] + [row.task for row in rows]
        assert all(store.baseline(key) is not None for key in train)
        trained = []
        for member in search.population.state.members:
            source = search.population._source(member)
            if store.candidate(source).status == "screened":  # unstable: never trained
                assert member.fitness == -math.inf and store.scores_of(source) == []
                continue
            trained.append(member)
            scores = {s.task: s.score for s in store.scores_of(source)}
            assert set(train) <= scores.keys()  # re-scored on new levels if need be
            # every training score it has (none of validation's), each at most the cap
            values = [score for task, score in scores.items() if task not in heldout]
            histories += len(values) > len(train)
            expected = np.mean(np.minimum(values, cap)) if all(map(math.isfinite, values)) \
                else -math.inf
            assert member.fitness == pytest.approx(expected)
        for row in rows:  # regret: baseline (0) minus the best scored member's clipped score
            best = max(min(max({s.task: s.score for s in store.scores_of(
                search.population._source(m))}[row.task], -FITNESS_CAP), FITNESS_CAP)
                for m in trained)
            assert row.regret == pytest.approx(-best)
    # new levels keep arriving, members carry scores of earlier ones, and the buffer holds the
    # highest-regret ones seen
    assert len(sampled) > 2 and histories
    buffer = search.levels.describe()
    assert len(buffer) == 3
    assert {b["level"] for b in buffer} <= sampled
    assert [e.value for e in store.events("regret")] == pytest.approx(
        [np.mean([row.regret for row in levels_of(store, g)]) for g in range(3)])


def test_validation_draws_on_members_scored_on_two_generations_by_their_last_fitness(tmp_path):
    # top 50: the leaders list (4 x top) keeps every candidate, none is cut off
    text = config_variant(SCHEDULED, {"validation.top": 50})
    search, store, _ = make_search(tmp_path / "run", programs("sgd", "momentum"),
                                   config_text=text)
    heldout = {task.key for task in search.tasks.heldout}
    expected: dict[int, float] = {}
    for g in range(3):
        search.step()
        members = {search.population._source(m) for m in search.population.state.members}
        for source in members:
            values = [min(s.score, FITNESS_CAP) for s in store.scores_of(source)
                      if s.task not in heldout]
            if store.candidate(source).generation < g and values \
                    and all(map(math.isfinite, values)):
                expected[source] = float(np.mean(values))  # its mean over all it has so far
        leaders = {cid: fit for fit, cid in search.counters.leaders}
        assert leaders.keys() == expected.keys()
        assert all(leaders[cid] == pytest.approx(fit) for cid, fit in expected.items())
        assert not any(store.candidate(cid).generation == g for cid in leaders)  # no newborn
        if g == 0:
            assert not leaders  # generation 0 validates its warm starts only
    # members that left the population are still leaders, at the fitness they left with
    assert expected.keys() - members


def test_a_resumed_scheduled_run_ends_with_the_same_levels_and_archive(tmp_path):
    warm = programs("sgd", "momentum")
    search, straight, _ = make_search(tmp_path / "straight", warm, config_text=SCHEDULED)
    search.run(3)

    config = parse_config(SCHEDULED)
    # calls per generation: baselines, evaluation, re-scoring, (validation): 6 is mid gen 1
    crashing = CountingPool(lambda: Evaluator(config.population.max_statements), fail_on_call=6)
    search, interrupted, _ = make_search(tmp_path / "interrupted", warm, pool=crashing,
                                         config_text=SCHEDULED)
    with pytest.raises(KeyboardInterrupt):
        search.run(3)
    interrupted.close()
    search, resumed, _ = make_search(tmp_path / "interrupted", warm, config_text=SCHEDULED)
    assert search.generation == 1
    search.run(3)
    assert archive_rows(resumed) == archive_rows(straight)
    assert resumed.sampled_levels() == straight.sampled_levels()
    assert resumed.baselines() == straight.baselines()
    assert buffer_rows(resumed.load_checkpoint()[1]["levels"]) == \
        buffer_rows(straight.load_checkpoint()[1]["levels"])


def test_rollback_drops_the_levels_of_later_generations(tmp_path):
    search, store, _ = make_search(tmp_path / "run", programs("sgd"), config_text=SCHEDULED)
    search.run(2)
    assert {row.generation for row in store.sampled_levels()} == {0, 1}
    store.rollback_after(0)
    assert store.sampled_levels() == levels_of(store, 0) and levels_of(store, 0)


def test_an_archive_of_schema_2_gains_an_empty_levels_table(tmp_path):
    RunStore.create(tmp_path / "run", "seed = 1\n").close()
    with closing(sqlite3.connect(tmp_path / "run" / ARCHIVE_NAME)) as db:  # as schema 2 wrote it
        db.executescript("DROP TABLE levels; PRAGMA user_version = 2;")
    with RunStore.open(tmp_path / "run") as reopened:
        assert reopened.sampled_levels() == []
        reopened.add_generation(0, [], levels=[SampledLevelRecord(
            generation=0, position=0, task="t", family="quadratic", params={"dim": 2},
            regret=0.5, replayed=False)])
        assert reopened.sampled_levels()[0].params == {"dim": 2}


def test_a_failed_level_evaluation_counts_as_the_worst_score_and_the_run_goes_on(tmp_path):
    class Flaky(CountingPool):
        def map(self, items):
            results = super().map(items)
            return [Failed("node lost") if getattr(i, "programs", None) is not None
                    and i.task.get("condition_number") != 100.0 else r
                    for i, r in zip(items, results)]

    config = parse_config(SCHEDULED)
    pool = Flaky(lambda: Evaluator(config.population.max_statements))
    search, store, _ = make_search(tmp_path / "run", programs("sgd"), pool=pool,
                                   config_text=SCHEDULED)
    search.run(2)
    assert all(m.fitness == -math.inf for m in search.population.state.members)
    assert all(row.regret == FITNESS_CAP for row in store.sampled_levels())


def test_levels_must_be_of_the_kind_of_the_runs_tasks(tmp_path):
    text = config_variant(SCHEDULED, {"scheduler.families": {"cartpole": {}}})
    config = parse_config(text)
    with pytest.raises(ConfigError, match="scheduler.families.cartpole: not an optimizer "
                                          "family"):
        make_engine(config, RunStore.create(tmp_path / "run", text), None)


NUDGED = (EXAMPLES / "adam.py").read_text().replace("0.9)", "0.9001)").replace("0.9 **",
                                                                                "0.9001 **")
OTHER = (EXAMPLES / "adam.py").read_text().replace("0.999", "0.99")


@pytest.mark.parametrize("near", [0.0, 0.01])
def test_a_near_duplicate_child_is_a_cached_copy_of_its_source_and_resumes_so(tmp_path,
                                                                              monkeypatch, near):
    """Children of generation 1 on: Adam with m's decay 0.9001 (a rollout within 0.1% of
    Adam's: a copy when population.near_duplicate is 0.01) and with v's decay 0.99 (another
    optimizer); the copy takes Adam's scores as a member, also after a resume."""
    assert NUDGED.count("0.9001") == 2
    monkeypatch.setattr(RegularizedEvolution, "ask", lambda self, state, rng, n: [
        Child(parse(NUDGED), 0), Child(parse(OTHER), 0)])
    text = config_variant(SCHEDULED, {"population.near_duplicate": near,
                                      "population.max_statements": 16})
    search, store, _ = make_search(tmp_path / "run", programs("adam"), config_text=text)
    search.step()
    first = search.counters.next_id  # generation 1's first id; Adam is candidate 0
    search.step()
    nudged, other = store.candidate(first), store.candidate(first + 1)
    assert other.status != "cached"
    if near:
        members = {m.id: m for m in search.population.state.members}
        assert nudged.status == "cached" and nudged.reason.startswith(
            "nearly the same function as candidate 0")
        # Adam's running fitness, over generation 0's and 1's tasks
        assert nudged.fitness == members[first].fitness == members[0].fitness
    else:
        assert nudged.status != "cached"
    search.step()
    resumed, resumed_store, _ = make_search(tmp_path / "run2", programs("adam"), config_text=text)
    resumed.run(2)
    resumed_store.close()
    resumed, resumed_store, _ = make_search(tmp_path / "run2", programs("adam"), config_text=text)
    resumed.run(3)
    assert archive_rows(resumed_store) == archive_rows(store)


@pytest.mark.parametrize("value", [-0.01, 1.0, "nan"])
def test_near_duplicate_is_a_fraction_of_a_step_below_one(value):
    assert parse_config("[population]\nnear_duplicate = 0.01\n").population.near_duplicate == 0.01
    with pytest.raises(ConfigError, match="population.near_duplicate"):
        parse_config(f"[population]\nnear_duplicate = {value}\n")


def test_the_elite_is_chosen_by_running_fitness_on_this_generations_levels(tmp_path,
                                                                          monkeypatch):
    """Elite 1 of 2: the leader after generation 0 does badly on generation 1's levels, so it
    leaves as the oldest; chosen by its stale fitness it would have stayed."""
    text = config_variant(SCHEDULED, {"population.size": 2, "population.elite": 1,
                                      "population.children": 1,
                                      "population.tournament": 1})
    search, store, _ = make_search(tmp_path / "run", programs("momentum", "sgd"),
                                   config_text=text)
    search.step()
    first, second = search.population.state.members
    assert first.fitness > second.fitness  # the older member leads after generation 0
    weak = parse("def weak(w, g, lr):\n    update = 0.001 * lr * g\n    return update\n")
    monkeypatch.setattr(RegularizedEvolution, "ask",
                        lambda self, state, rng, n: [Child(weak, second.id)])
    rescore = search.population._rescore

    def leader_falls(*args):
        running, level_scores, rows = rescore(*args)
        return {**running, first.id: -2 * FITNESS_CAP}, level_scores, rows

    monkeypatch.setattr(search.population, "_rescore", leader_falls)
    search.step()
    members = search.population.state.members
    assert store.candidate(members[-1].id).text.startswith("def weak")
    assert members[-1].fitness < second.fitness  # the child is not the elite: `second` is
    assert [m.id for m in members] == [second.id, members[-1].id]
