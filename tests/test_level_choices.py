"""Levels drawn from listed values: a family's parameter given as a list takes one of its
values per level (uniformly, reproducibly by seed), so horizons, batch sizes, widths and
datasets vary from level to level while the compiled shapes stay a bounded, declared set."""

import collections
import itertools
import math
from pathlib import Path

import msgpack
import numpy as np
import pytest
from scipy import stats

from disco_rules.discovery.config import ConfigError, load_config, parse_config
from disco_rules.discovery.levels import Levels
from disco_rules.discovery.scheduler import (SchedulerConfig, make_scheduler, split_parameters,
                                             state_from_data, state_to_data)
from disco_rules.discovery.tasks import FAMILIES, Task
from tests.configs import config_variant

EXAMPLES = Path(__file__).parent.parent / "examples"

LISTED = {
    "digits_mlp": {"width": [16, 32, 64], "batch_size": [16, 64], "horizon": [100, 400, 1600],
                   "depth": 1},
    "tabular": {"dataset": ["diabetes", "breast_cancer", "wine"], "depth": 1, "width": [16, 32],
                "batch_size": [16, 64], "horizon": [100, 400, 1200]},
}
DECLARED = 3 * 2 * 3 + 3 * 2 * 2 * 3  # the product of list lengths, per family


def draw(families, seed, samples, n=1, kind="uniform"):
    """The levels of `samples` sample calls of `n` levels, with regrets fed back."""
    sched = make_scheduler(SchedulerConfig(families=families, kind=kind, capacity=8))
    state, drawn = sched.init(seed), []
    for _ in range(samples):
        levels, state = sched.sample(state, n)
        state = sched.update(state, levels, [float(len(level.key)) for level in levels])
        drawn += levels
    return drawn


def test_every_drawn_level_takes_its_parameters_from_the_lists_or_fixed_values():
    for level in draw(LISTED, seed=0, samples=300):
        fixed, listed = split_parameters(LISTED[level.family])
        for name, values in listed.items():
            assert level.get(name) in values
        for name, value in fixed.items():
            assert level.get(name) == value


def test_draws_are_reproducible_by_seed_and_differ_between_seeds():
    assert draw(LISTED, seed=3, samples=20, n=2, kind="regret") == \
        draw(LISTED, seed=3, samples=20, n=2, kind="regret")
    assert draw(LISTED, seed=3, samples=20, n=2) != draw(LISTED, seed=4, samples=20, n=2)


def test_every_listed_value_is_drawn_about_equally_often():
    levels = draw({"digits_mlp": LISTED["digits_mlp"]}, seed=1, samples=1800)
    for name, values in split_parameters(LISTED["digits_mlp"])[1].items():
        counts = collections.Counter(level.get(name) for level in levels)
        assert set(counts) == set(values)
        assert stats.chisquare([counts[v] for v in values]).pvalue > 1e-3, (name, counts)
    tabular = draw({"tabular": LISTED["tabular"]}, seed=2, samples=300)
    assert {level.get("dataset") for level in tabular} == set(LISTED["tabular"]["dataset"])


def test_drawn_shapes_never_exceed_the_declared_set():
    config = SchedulerConfig(families=LISTED)
    shapes = config.shapes()
    assert len(shapes) == DECLARED and config.unbounded() == []
    levels = draw(LISTED, seed=5, samples=200, n=3)
    drawn = {level.shape for level in levels}
    assert drawn <= shapes and len(drawn) <= DECLARED
    assert len(drawn) > DECLARED // 2  # the lists are really used, not one value of each


def test_a_listed_float_varies_values_within_one_shape():
    families = {"quadratic": {"dim": [4, 8], "horizon": 20, "noise": [0.0, 0.5],
                              "condition_number": [10.0, 1000.0]}}
    config = SchedulerConfig(families=families)
    assert config.shapes() == {Task.make("quadratic", dim=d, horizon=20).shape for d in (4, 8)}
    levels = draw(families, seed=0, samples=200)
    assert {level.get("noise") for level in levels} == {0.0, 0.5}
    assert {level.get("condition_number") for level in levels} == {10.0, 1000.0}
    assert {level.shape for level in levels} == config.shapes()


def test_shapes_are_unbounded_when_an_int_shape_parameter_is_drawn_from_its_range():
    config = SchedulerConfig(families={"digits_mlp": {"width": [16, 32], "depth": 1},
                                       "quadratic": {"dim": 4, "horizon": 10}})
    assert config.shapes() is None
    assert config.unbounded() == ["digits_mlp.batch_size", "digits_mlp.horizon"]
    levels = Levels(config, per_generation=2, seed=0, cap=5.0)
    assert "unbounded" in levels.summary() and "digits_mlp.horizon" in levels.summary()
    # a categorical parameter left out is bounded by its options; floats never count
    open_dataset = {"tabular": {**LISTED["tabular"]}}
    del open_dataset["tabular"]["dataset"]
    assert SchedulerConfig(families=open_dataset).shapes() == SchedulerConfig(
        families={"tabular": LISTED["tabular"]}).shapes()
    assert len(SchedulerConfig(families={"quadratic": {"dim": 4, "horizon": 10}}).shapes()) == 1


def test_the_summary_of_a_runs_levels_counts_its_compiled_shapes():
    levels = Levels(SchedulerConfig(families=LISTED, kind="regret"), per_generation=3, seed=0,
                    cap=5.0)
    assert levels.shapes() == SchedulerConfig(families=LISTED).shapes()
    assert levels.summary() == (f"regret levels, 3 per generation, from digits_mlp, tabular: "
                                f"at most {DECLARED} compiled shapes")


def test_without_lists_the_draws_are_the_familys_own():
    """A config of fixed values samples what it sampled before lists existed."""
    from disco_rules.discovery.scheduler import _STREAM

    fixed = {"dim": 2, "noise": 0.0, "horizon": 10}
    sched = make_scheduler(SchedulerConfig(families={"quadratic": fixed}, replay_prob=0.0))
    levels, _ = sched.sample(sched.init(9), 3)
    rng = np.random.default_rng([9, 0, _STREAM])
    rng.binomial(3, 0.0)
    expected = []
    for _ in range(3):
        assert int(rng.integers(1)) == 0
        expected.append(FAMILIES.get("quadratic").sample(rng, **fixed))
    assert levels == expected


@pytest.mark.parametrize("params, message", [
    ({"width": [16, 32, 300]}, r"^families\.digits_mlp: width\[2\]=300 is outside its range"),
    ({"width": []}, r"^families\.digits_mlp: width=\[\] is an empty list"),
    ({"width": [16.5]}, r"^families\.digits_mlp: width\[0\] must be an int, got 16\.5"),
    ({"widths": [16]}, r"^families\.digits_mlp: task family 'digits_mlp' has no parameter "
                       r"'widths'"),
    ({"depth": 9, "width": [16]}, r"^families\.digits_mlp: depth=9 is outside its range"),
])
def test_a_bad_listed_value_is_an_error_naming_the_parameter_and_index(params, message):
    with pytest.raises(ValueError, match=message):
        SchedulerConfig(families={"digits_mlp": params})


@pytest.mark.parametrize("entry, message", [
    ("tabular = { dataset = [\"diabetes\", \"mnist\"] }",
     "scheduler.families.tabular: dataset[1]='mnist' is not one of diabetes, breast_cancer, "
     "wine"),
    ("digits_mlp = { horizon = [] }", "scheduler.families.digits_mlp: horizon=[] is an empty "
                                      "list: list at least one value, or leave horizon out to "
                                      "draw it from its range"),
    ("quadratic = { noise = [0.1, 2.0] }", "scheduler.families.quadratic: noise[1]=2.0 is "
                                           "outside its range [0.0, 1.0]"),
])
def test_a_bad_listed_value_in_a_config_is_one_config_error(entry, message):
    text = f'[scheduler]\nkind = "uniform"\nfamilies = {{ {entry} }}\n'
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    assert str(error.value) == message


def test_a_restored_state_samples_what_the_uninterrupted_one_samples():
    sched = make_scheduler(SchedulerConfig(families=LISTED, capacity=4, replay_prob=0.5))

    def steps(state, count):
        history = []
        for _ in range(count):
            levels, state = sched.sample(state, 3)
            state = sched.update(state, levels, [len(level.key) % 7 for level in levels])
            history.append(levels)
        return state, history

    straight, all_levels = steps(sched.init(11), 10)
    half, first = steps(sched.init(11), 5)
    data = msgpack.unpackb(msgpack.packb(state_to_data(half), use_bin_type=True), raw=False)
    resumed, second = steps(state_from_data(data), 5)
    assert first + second == all_levels and resumed == straight


def test_the_memory_estimate_sees_the_largest_listed_shape():
    from disco_rules.discovery.footprint import estimated_tasks, item_bytes
    from disco_rules.discovery.plan import TaskPlan

    def config(widths):
        return parse_config(f"""
[tasks]
seeds = 1
lr_grid = [0.01]
train = [{{ family = "quadratic", dim = 4, horizon = 10 }}]
[scheduler]
kind = "uniform"
[scheduler.families]
digits_mlp = {{ width = {widths}, depth = 1, batch_size = [16, 32], horizon = [10, 5000] }}
""")

    small, large = config("[8, 16]"), config("[8, 64]")
    largest = Task.make("digits_mlp", width=64, depth=1, batch_size=32, horizon=5000)
    assert largest in estimated_tasks(large, TaskPlan.from_config(large))
    assert Task.make("digits_mlp", width=8, depth=1, batch_size=16, horizon=10) not in \
        estimated_tasks(large, TaskPlan.from_config(large))
    assert item_bytes(large, TaskPlan.from_config(large)) > \
        item_bytes(small, TaskPlan.from_config(small))
    # an int parameter drawn from its range counts at the top of the range
    drawn = SchedulerConfig(families={"tabular": {"width": 8, "depth": 0, "batch_size": 4,
                                                  "dataset": ["wine", "diabetes"]}})
    assert [(t.get("dataset"), t.get("horizon")) for t in drawn.largest_levels()] == \
        [("diabetes", 10000), ("wine", 10000)]


def test_the_flagship_bounds_its_shapes_and_spans_the_previous_flagships_horizons():
    config, _ = load_config(EXAMPLES / "optimizer_search.toml")
    flagship, _ = load_config(EXAMPLES.parent / "docs" / "experiments" / "optimizer_search_v1.toml")
    assert config.scheduler.kind in ("uniform", "regret")
    families = config.scheduler.families
    assert set(families) == {"digits_mlp", "tabular", "mlp_autoencoder", "sequence_copy"}
    shapes = SchedulerConfig(families=families).shapes()
    assert shapes is not None and len(shapes) <= 200
    for name, params in families.items():
        horizons, batches = params["horizon"], params["batch_size"]
        assert max(batches) / min(batches) >= 4 and len(params["width"]) >= 2
        trained = [t["horizon"] for t in flagship.tasks.train if t["family"] == name]
        assert max(horizons) >= 16 * min(horizons), name  # 0.25x..4x of a middle horizon
        if name != "mlp_autoencoder":  # the one family the previous flagship did not train
            assert any(min(horizons) <= h / 4 and max(horizons) >= 4 * h for h in trained), name
    # `wine`, whose loss a rule drives to near zero, is no tabular level and not the screen
    assert sorted(families["tabular"]["dataset"]) == ["breast_cancer", "diabetes"]
    assert len(families["mlp_autoencoder"]["dataset"]) >= 2
    assert config.screen.task["family"] == "mlp_autoencoder"
    assert families["sequence_copy"]["cell"] == "gru"


@pytest.mark.slow
def test_a_resumed_search_with_listed_levels_samples_the_same_levels(tmp_path):
    from test_search import CONFIG, CountingPool, archive_rows, make_search, programs

    from disco_rules.discovery.evaluator import Evaluator
    from disco_rules.discovery.levels import buffer_rows

    text = config_variant(CONFIG, {"generations": 3}) + """
[scheduler]
kind = "regret"
levels = 2
capacity = 3
families = { quadratic = { dim = [3, 4], horizon = [10, 12], noise = [0.0, 0.1] } }
"""
    warm = programs("sgd", "momentum")
    search, straight, _ = make_search(tmp_path / "straight", warm, config_text=text)
    search.run(3)
    sampled = straight.sampled_levels()
    assert {(row.params["dim"], row.params["horizon"]) for row in sampled} <= \
        set(itertools.product((3, 4), (10, 12)))
    crashing = CountingPool(lambda: Evaluator(parse_config(text).population.max_statements),
                            fail_on_call=6)
    search, interrupted, _ = make_search(tmp_path / "interrupted", warm, pool=crashing,
                                         config_text=text)
    with pytest.raises(KeyboardInterrupt):
        search.run(3)
    interrupted.close()
    search, resumed, _ = make_search(tmp_path / "interrupted", warm, config_text=text)
    assert search.generation == 1
    search.run(3)
    assert resumed.sampled_levels() == sampled
    assert archive_rows(resumed) == archive_rows(straight)
    assert buffer_rows(resumed.load_checkpoint()[1]["levels"]) == \
        buffer_rows(straight.load_checkpoint()[1]["levels"])
    assert not any(math.isnan(row.regret) for row in sampled)
