"""The levels glue: regret of a population from its scores (clipped, best or mean), the level
sequence continues across a checkpoint, excluded tasks are never drawn, and archive rows."""

import math

import msgpack
import numpy as np
import pytest

from disco_rules.discovery.config import parse_config
from disco_rules.discovery.levels import Levels, buffer_rows
from disco_rules.discovery.scheduler import SchedulerConfig
from disco_rules.discovery.tasks import Task

QUADRATIC = {"quadratic": {"dim": 2, "noise": 0.0, "horizon": 10}}


def levels(regret_of="best", seed=0, exclude=(), **overrides):
    config = SchedulerConfig(families=overrides.pop("families", QUADRATIC),
                             regret_of=regret_of, **overrides)
    return Levels(config, per_generation=3, seed=seed, cap=5.0, exclude=exclude)


def closed_form(level: Task) -> float:
    return math.log10(level.get("condition_number"))


def test_regret_is_the_baseline_score_minus_the_populations_best_clipped_score():
    scores = [[0.5, -2.0, math.nan, -math.inf],
              [-0.25, -9.0, math.nan, -1.0],
              [math.nan, 7.0, math.nan, math.nan]]
    regrets = levels("best").regrets(scores)
    # level 1: the best is 7 clipped to the cap 5; level 2: nobody scored -> baseline + cap
    np.testing.assert_allclose(regrets, [-0.5, -5.0, 5.0, 1.0])
    np.testing.assert_allclose(levels("best").regrets(scores, baseline_score=1.0),
                               [0.5, -4.0, 6.0, 2.0])


def test_mean_regret_averages_the_scored_members_with_failures_at_minus_the_cap():
    scores = [[0.5, -2.0, math.nan, -math.inf],
              [-0.25, -9.0, math.nan, -1.0],
              [math.nan, 7.0, math.nan, math.nan]]
    regrets = levels("mean").regrets(scores)
    np.testing.assert_allclose(regrets, [-0.125, 2.0 / 3.0, 5.0, 3.0])


def test_regrets_need_a_members_by_levels_table():
    with pytest.raises(ValueError, match=r"\[members, levels\]"):
        levels().regrets([1.0, 2.0])


def test_a_loaded_checkpoint_continues_the_same_level_sequence():
    straight, interrupted = levels(), levels()
    replays = 0
    for step in range(8):
        if step == 4:
            data = msgpack.unpackb(msgpack.packb(interrupted.to_data()), raw=False)
            interrupted = levels()
            interrupted.load(data)
        sampled = [straight.sample(), interrupted.sample()]
        assert sampled[0] == sampled[1]
        assert straight.replayed == interrupted.replayed
        for each, chosen in zip((straight, interrupted), sampled):
            each.update(chosen, [closed_form(level) for level in chosen])
        replays += len(straight.replayed)
    assert replays > 0  # the sequence goes through the buffer, not only fresh draws
    assert straight.describe() == interrupted.describe()
    assert buffer_rows(straight.to_data()) == straight.describe()


def test_rows_record_each_level_its_regret_and_whether_it_was_replayed():
    chosen = levels(replay_prob=1.0)
    first = chosen.sample()
    chosen.update(first, [1.0, 2.0, 3.0])
    assert not any(row.replayed for row in chosen.rows(0, first, [1.0, 2.0, 3.0]))
    again = chosen.sample()
    rows = chosen.rows(1, again, [0.5, 0.25, 0.125])
    assert [row.replayed for row in rows] == [True, True, True]  # replay_prob 1, buffer of 3
    assert [(row.generation, row.position, row.task, row.regret) for row in rows] == \
        [(1, i, level.key, r) for i, (level, r) in enumerate(zip(again, [0.5, 0.25, 0.125]))]
    assert rows[0].params == dict(again[0].params)


def test_excluded_tasks_are_never_drawn():
    family = {"rosenbrock": {"horizon": 10}}  # only dim varies: few distinct levels
    held_out = [Task.make("rosenbrock", dim=d, horizon=10) for d in range(2, 40)]
    chosen = levels(families=family, exclude=held_out, replay_prob=0.0)
    drawn = {level for _ in range(10) for level in chosen.sample(2)}
    assert drawn and not drawn & set(held_out)
    assert {level.get("dim") for level in drawn} <= set(range(40, 65))


def test_from_config_is_none_without_a_scheduler_and_seeded_by_the_run():
    assert Levels.from_config(parse_config("seed = 3"), cap=5.0) is None
    text = ('seed = 3\n[scheduler]\nkind = "uniform"\nlevels = 2\n'
            'families = { quadratic = { dim = 2, horizon = 10 } }\n')
    made = Levels.from_config(parse_config(text), cap=5.0)
    assert made.config.kind == "uniform" and made.state.seed == 3
    assert len(made.sample()) == 2


def test_levels_differing_only_in_floats_share_one_compiled_trainer_and_differ_in_results():
    import jax
    from disco_rules.discovery.inner import train
    from disco_rules.dsl.interpreter import Encoding
    from disco_rules.dsl.parser import parse

    encoding = Encoding(max_statements=4)
    sgd = encoding.encode_population([parse("def sgd(w, g, lr):\n    u = lr * g\n    return u\n")])
    keys = jax.random.split(jax.random.PRNGKey(0), 1)
    easy = Task.make("quadratic", dim=3, horizon=11, condition_number=2.0, noise=0.0)
    hard = Task.make("quadratic", dim=3, horizon=11, condition_number=1e4, noise=0.5)
    assert easy.shape == hard.shape and easy.floats != hard.floats
    before = dict(train._COMPILED)
    losses = [np.asarray(train.evaluate_population(level, encoding, sgd, [0.1], keys).final_loss)
              for level in (easy, hard)]
    baselines = [train.baseline(level, [0.1], keys)[1] for level in (easy, hard)]
    added = {key: fn for key, fn in train._COMPILED.items() if key not in before}
    assert sorted(key[0] for key in added) == ["optax", "programs"]  # one each, not two
    assert all(fn._cache_size() == 1 for fn in added.values())  # traced once for both levels
    assert not np.allclose(losses[0], losses[1]) and baselines[0] != baselines[1]
    alone = jax.jit(train.make_program_train(hard, encoding))  # floats as constants
    reference = alone(jax.tree.map(lambda x: x[0], sgd), np.float32(0.1), keys[0])
    np.testing.assert_allclose(losses[1].ravel(), [reference.final_loss], rtol=1e-4)


def test_regret_by_family_is_the_mean_of_each_familys_levels():
    from disco_rules.discovery.levels import regret_by_family
    from disco_rules.discovery.store import SampledLevelRecord

    rows = [SampledLevelRecord(generation=0, position=i, task=f"t{i}", family=family, params={},
                               regret=regret, replayed=False)
            for i, (family, regret) in enumerate([("rnn", 1.0), ("quadratic", 0.5),
                                                  ("rnn", 2.0)])]
    assert regret_by_family(rows) == (("quadratic", 0.5), ("rnn", 1.5))
    assert regret_by_family([]) == ()


def test_a_new_draw_equal_to_a_buffered_level_is_not_a_replay():
    """Uniform sampling never replays, even when a fresh draw equals a level in the buffer."""
    import copy
    import dataclasses

    from disco_rules.discovery.scheduler import LevelRecord

    uniform = levels(kind="uniform")
    peek = copy.deepcopy(uniform)
    peek.update(first := peek.sample(), [1.0, 2.0, 3.0])
    upcoming = peek.sample()  # what step 1 draws: it depends on the seed and step only
    uniform.update(uniform.sample(), [1.0, 2.0, 3.0])
    uniform.state = dataclasses.replace(uniform.state, buffer=uniform.state.buffer + (
        LevelRecord(upcoming[0], 9.0, 1, 0),))
    assert uniform.sample() == upcoming and first != upcoming
    assert uniform.replayed == frozenset()
    replaying = levels(replay_prob=1.0)
    replaying.update(replaying.sample(), [1.0, 2.0, 3.0])
    assert replaying.replayed == frozenset()
    again = replaying.sample()
    assert replaying.replayed == frozenset(again)  # replay_prob 1, buffer of 3
