"""The regret scheduler replays high-regret levels with Prioritized Level Replay's probabilities,
keeps the highest-regret levels in its buffer, and is deterministic across a checkpoint.

The synthetic regret is known in closed form: a quadratic level's regret is
log10(condition_number), so the level ranks are known without training anything."""

import collections
import dataclasses
import math

import msgpack
import numpy as np
import pytest
from scipy import stats

from disco_rules.discovery.scheduler import (RegretScheduler, SchedulerConfig, SchedulerState,
                                 UniformScheduler, describe, make_scheduler, state_from_data,
                                 state_to_data)
from disco_rules.discovery.tasks import Task

QUADRATIC = {"quadratic": {"dim": 2, "noise": 0.0, "horizon": 10}}  # only the condition varies


def regret(level: Task) -> float:
    return math.log10(level.get("condition_number"))


def scheduler(**overrides) -> RegretScheduler:
    return make_scheduler(SchedulerConfig(**{"families": QUADRATIC, **overrides}))


def run(sched: RegretScheduler, state: SchedulerState, steps: int, n: int):
    """`steps` generations of sample -> closed-form regret -> update; the levels of each."""
    history = []
    for _ in range(steps):
        levels, state = sched.sample(state, n)
        state = sched.update(state, levels, [regret(level) for level in levels])
        history.append(levels)
    return state, history


def warm(capacity: int, steps: int = 30, n: int = 2, replay_prob: float = 0.5) -> SchedulerState:
    """A buffer filled by a mixed curriculum, so regrets and last-sampled steps differ."""
    sched = scheduler(capacity=capacity, replay_prob=replay_prob)
    state, _ = run(sched, sched.init(0), steps, n)
    assert len(state.buffer) == capacity
    return state


def plr_probabilities(state: SchedulerState, beta: float, rho: float) -> np.ndarray:
    """Jiang et al. 2021: h = 1/rank, P_S = h^(1/beta) / sum, P_C = (c - C_i) / sum,
    P_replay = (1 - rho) P_S + rho P_C."""
    regrets = [r.regret for r in state.buffer]
    rank = np.array([1 + sum(other > mine for other in regrets) for mine in regrets], float)
    p_s = (1 / rank) ** (1 / beta) / np.sum((1 / rank) ** (1 / beta))
    stale = np.array([state.step - r.last_sampled for r in state.buffer], float)
    return (1 - rho) * p_s + rho * stale / stale.sum()


def replay_counts(sched: RegretScheduler, state: SchedulerState, draws: int) -> np.ndarray:
    """How often one replayed level is each buffered level, over `draws` seeds of the state."""
    where = {r.level: i for i, r in enumerate(state.buffer)}
    counts = np.zeros(len(state.buffer))
    for seed in range(draws):
        (level,), _ = sched.sample(dataclasses.replace(state, seed=seed), 1)
        counts[where[level]] += 1
    return counts


def test_replayed_levels_follow_the_plr_formula():
    state = warm(capacity=8)
    assert len({r.regret for r in state.buffer}) == 8
    assert len({r.last_sampled for r in state.buffer}) > 1
    beta, rho = 0.5, 0.3
    expected = plr_probabilities(state, beta, rho)
    sched = scheduler(capacity=8, temperature=beta, staleness_coef=rho, replay_prob=1.0)
    np.testing.assert_allclose(sched.replay_probabilities(state), expected, rtol=1e-12)
    draws = 4000
    counts = replay_counts(sched, state, draws)
    assert stats.chisquare(counts, expected * draws).pvalue > 1e-3
    top = int(np.argmax([r.regret for r in state.buffer]))
    assert counts[top] == counts.max()


def test_replay_concentrates_on_high_regret_levels():
    sched = scheduler(capacity=8, temperature=0.3, staleness_coef=0.1, replay_prob=0.5)
    state = sched.init(1)
    replayed, fresh = [], []
    for _ in range(150):
        buffered = {r.level for r in state.buffer}
        levels, state = sched.sample(state, 4)
        state = sched.update(state, levels, [regret(level) for level in levels])
        for level in levels:
            (replayed if level in buffered else fresh).append(regret(level))
    assert 0.4 < len(replayed) / (len(replayed) + len(fresh)) < 0.6
    assert abs(np.mean(fresh) - 3.0) < 0.3  # log10 of a log-uniform condition in [1, 1e6]
    assert np.mean(replayed) > 5.0


def test_lower_temperature_is_sharper():
    state = warm(capacity=6)
    order = np.argsort([-r.regret for r in state.buffer])
    top, bottom = order[0], order[-1]
    share = {}
    for beta in (0.2, 1.0, 5.0):
        sched = scheduler(capacity=6, temperature=beta, staleness_coef=0.0, replay_prob=1.0)
        share[beta] = replay_counts(sched, state, 2000) / 2000
    assert share[0.2][top] > share[1.0][top] > share[5.0][top]
    assert share[0.2][bottom] < share[1.0][bottom] < share[5.0][bottom]
    assert share[0.2][top] > 0.9 and np.all(np.abs(share[5.0] - 1 / 6) < 0.08)


@pytest.mark.parametrize("rho, replays_of_lowest", [(0.0, 0), (0.5, None)])
def test_staleness_brings_an_old_level_back(rho, replays_of_lowest):
    state = warm(capacity=4, steps=4, n=1, replay_prob=0.0)
    lowest = min(state.buffer, key=lambda r: r.regret).level
    sched = scheduler(capacity=4, temperature=0.1, staleness_coef=rho, replay_prob=1.0)
    state, history = run(sched, state, 300, 1)
    steps = [t for t, (level,) in enumerate(history) if level == lowest]
    if replays_of_lowest is not None:
        assert len(steps) == replays_of_lowest  # 4^-10 of the mass: never, by ranks alone
    else:
        assert len(steps) >= 10
        assert max(np.diff([0] + steps + [300])) < 60


def test_a_full_buffer_keeps_the_highest_regret_levels():
    sched = scheduler(capacity=6, replay_prob=0.3)
    state, history = run(sched, sched.init(2), 80, 3)
    seen = {level for levels in history for level in levels}
    best = sorted(seen, key=regret, reverse=True)[:6]
    assert {r.level for r in state.buffer} == set(best)
    assert all(r.regret == regret(r.level) for r in state.buffer)


def test_a_new_level_enters_a_full_buffer_only_with_a_higher_regret():
    sched = scheduler(capacity=2)
    a, b, c, d = (Task.make("quadratic", **QUADRATIC["quadratic"], condition_number=k)
                  for k in (10.0, 20.0, 30.0, 40.0))
    _, state = sched.sample(sched.init(0), 1)
    state = sched.update(state, [a, b], [1.0, 2.0])
    assert [r.level for r in sched.update(state, [c], [1.0]).buffer] == [a, b]
    state = sched.update(state, [c], [1.5])
    assert [r.level for r in state.buffer] == [c, b]
    _, state = sched.sample(state, 1)
    state = sched.update(state, [b, d], [0.5, 0.7])
    assert [(r.level, r.regret, r.times_sampled, r.last_sampled) for r in state.buffer] == \
        [(c, 1.5, 1, 0), (d, 0.7, 1, 1)]


def test_a_replayed_level_gets_its_new_regret_and_last_sampled_step():
    sched = scheduler(capacity=4, replay_prob=1.0)
    level = Task.make("quadratic", **QUADRATIC["quadratic"], condition_number=10.0)
    _, state = sched.sample(sched.init(0), 1)
    state = sched.update(state, [level], [3.0])
    for _ in range(3):
        (replayed,), state = sched.sample(state, 1)
        assert replayed == level
        state = sched.update(state, [replayed], [0.5])
    assert state.buffer == (dataclasses.replace(state.buffer[0], regret=0.5, times_sampled=4,
                                                last_sampled=3),)


def test_levels_of_one_sample_are_distinct_and_zero_probability_levels_are_not_replayed():
    sched = scheduler(capacity=3, temperature=1e-4, staleness_coef=0.0, replay_prob=1.0)
    state = warm(capacity=3)
    assert np.count_nonzero(sched.replay_probabilities(state)) == 1  # 2^-10000 underflows
    levels, _ = sched.sample(state, 3)
    top = max(state.buffer, key=lambda r: r.regret).level
    assert levels[0] == top and len(set(levels)) == 3
    assert not {r.level for r in state.buffer} & set(levels[1:])


def test_too_few_distinct_levels_is_an_error():
    sched = make_scheduler(SchedulerConfig(families={"rosenbrock": {"dim": 2, "horizon": 10}}))
    with pytest.raises(ValueError, match="fewer than 2 distinct levels"):
        sched.sample(sched.init(0), 2)


def test_checkpoint_restore_samples_what_the_uninterrupted_run_samples():
    sched = scheduler(capacity=5, replay_prob=0.6)
    straight, straight_history = run(sched, sched.init(7), 12, 3)
    half, first = run(sched, sched.init(7), 6, 3)
    data = msgpack.unpackb(msgpack.packb(state_to_data(half), use_bin_type=True), raw=False)
    restored = state_from_data(data)
    assert restored == half
    resumed, second = run(sched, restored, 6, 3)
    assert first + second == straight_history
    assert resumed == straight and state_to_data(resumed) == state_to_data(straight)


def test_uniform_scheduler_samples_new_levels_uniformly_whatever_the_regrets():
    fixed = {"batch_size": 8, "depth": 1, "horizon": 10, "noise": 0.0, "width": 4}
    families = {"classification": fixed, "rosenbrock": {"dim": 2, "horizon": 10}}
    sched = make_scheduler(SchedulerConfig(families=families, kind="uniform", capacity=4,
                                           replay_prob=1.0))
    assert isinstance(sched, UniformScheduler)
    state, counts = sched.init(3), collections.Counter()
    draws = 2800
    for _ in range(draws):
        (level,), state = sched.sample(state, 1)
        favoured = level.family == "classification" and level.get("dataset") == "spirals"
        state = sched.update(state, [level], [10.0 if favoured else 0.0])
        counts[level.key] += 1
    assert len(state.buffer) == 4 and all(r.regret == 10.0 for r in state.buffer)
    cells = [Task.make("classification", **fixed, dataset=ds, n_classes=k).key
             for ds in ("spirals", "gaussians") for k in range(2, 9)]
    cells.append(Task.make("rosenbrock", **families["rosenbrock"]).key)
    assert set(counts) == set(cells)
    expected = np.array([1 / 28] * 14 + [1 / 2]) * draws
    assert stats.chisquare([counts[c] for c in cells], expected).pvalue > 1e-3


def test_describe_lists_levels_by_regret():
    state = warm(capacity=4)
    rows = describe(state)
    assert [row["regret"] for row in rows] == sorted((r.regret for r in state.buffer),
                                                     reverse=True)
    record = max(state.buffer, key=lambda r: r.regret)
    assert rows[0] == {"level": record.level.key, "family": "quadratic",
                       "params": dict(record.level.params), "regret": record.regret,
                       "times_sampled": record.times_sampled,
                       "last_sampled": record.last_sampled}


@pytest.mark.parametrize("field, value", [
    ("kind", "greedy"), ("regret_of", "median"), ("capacity", 0), ("capacity", 2.5),
    ("temperature", 0.0), ("temperature", math.inf), ("staleness_coef", 1.5),
    ("replay_prob", -0.1), ("replay_prob", math.nan), ("families", {}),
    ("families", {"mnist": {}}), ("families", {"quadratic": {"dim": 1}}),
    ("families", {"quadratic": {"lr": 0.1}}),
])
def test_a_bad_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SchedulerConfig(**{"families": QUADRATIC, field: value})


def test_bad_calls_are_errors():
    sched = scheduler()
    with pytest.raises(ValueError, match="seed"):
        sched.init(-1)
    with pytest.raises(ValueError, match="n must be"):
        sched.sample(sched.init(0), 0)
    levels, state = sched.sample(sched.init(0), 2)
    with pytest.raises(ValueError, match="one value per level"):
        sched.update(state, levels, [1.0])
    with pytest.raises(ValueError, match="not a finite number"):
        sched.update(state, levels, [1.0, math.nan])
    with pytest.raises(ValueError, match="before any sample"):
        sched.update(sched.init(0), levels, [1.0, 2.0])
