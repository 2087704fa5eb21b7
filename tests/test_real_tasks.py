"""The real-data families: shapes follow their parameters, data is a pure function of the
seed, validation examples are never training ones, and Adam lowers the held-out loss."""

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disco_rules.discovery.config import load_config
from disco_rules.discovery.inner.train import make_optax_train
from disco_rules.discovery.plan import TaskPlan
from disco_rules.discovery.tasks import FAMILIES, Task, datasets, heldout, real

KEY = jax.random.PRNGKey(0)
SMALL = {
    "digits_mlp": Task.make("digits_mlp", width=16, depth=2, batch_size=8, horizon=120),
    "digits_cnn": Task.make("digits_cnn", channels=3, batch_size=8, horizon=120),
    "tabular": Task.make("tabular", dataset="wine", width=8, depth=1, batch_size=8,
                         horizon=120),
    "sequence_copy": Task.make("sequence_copy", cell="lstm", seq_len=2, vocab=3, width=12,
                               batch_size=8, horizon=120),
    "char_lm": Task.make("char_lm", heads=2, head_dim=4, context=8, batch_size=8,
                         horizon=120),
    "mlp_autoencoder": Task.make("mlp_autoencoder", dataset="breast_cancer", width=12,
                                 depth=1, code=3, batch_size=8, horizon=120),
}


def test_every_real_family_has_a_small_test_task():
    assert set(SMALL) == {family.name for family in map(FAMILIES.get, FAMILIES)
                          if family.build.__module__ == real.__name__}


@functools.cache
def drawer(name):
    """Data, initial parameters and a batch of a key, in one compiled call."""
    problem = SMALL[name].build()

    def draw(key):
        k_data, k_init, k_batch = jax.random.split(key, 3)
        data = problem.data(k_data)
        return data, problem.init(k_init), problem.train_batch(k_batch, data)

    return jax.jit(draw)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_data_is_a_pure_function_of_the_seed(name):
    drawn = drawer(name)(KEY)
    assert leaves_equal(drawn, drawer(name)(KEY))
    other = drawer(name)(jax.random.PRNGKey(1))
    assert not leaves_equal(drawn[0], other[0])  # another seed: another split or held-out set
    assert not leaves_equal(drawn[1], other[1])


def sorted_rows(x, y) -> np.ndarray:
    rows = np.concatenate([np.asarray(x), np.asarray(y, np.float32).reshape(len(x), -1)], 1)
    return rows[np.lexsort(rows.T[::-1])]


@pytest.mark.parametrize("name, dataset", [("digits_mlp", datasets.digits()),
                                           ("tabular", datasets.tabular("wine"))])
def test_a_seed_splits_the_dataset_into_disjoint_train_and_validation_parts(name, dataset):
    data, _, (x, y) = drawer(name)(KEY)
    (x_train, y_train), (x_val, y_val) = data["train"], data["validation"]
    n = len(dataset.y)
    assert len(y_val) == round(real.VALIDATION_FRACTION * n) and len(y_train) + len(y_val) == n
    # together the two parts are the dataset, each example once
    np.testing.assert_array_equal(
        sorted_rows(np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])),
        sorted_rows(dataset.x, dataset.y))
    # a minibatch holds training examples only
    train_rows = {row.tobytes() for row in np.asarray(x_train)}
    assert all(row.tobytes() in train_rows for row in np.asarray(x))
    assert x.shape == (8, dataset.x.shape[1]) and y.shape == (8,)


def test_network_shapes_follow_the_parameters():
    _, params, (x, y) = drawer("digits_mlp")(KEY)
    assert [layer["w"].shape for layer in params] == [(64, 16), (16, 16), (16, 10)]
    assert set(np.asarray(y)) <= set(range(10)) and float(jnp.max(x)) <= 1.0

    _, params, _ = drawer("digits_cnn")(KEY)
    assert params["conv1"].shape == (3, 3, 1, 3) and params["conv2"].shape == (3, 3, 3, 6)
    assert params["dense"]["w"].shape == (4 * 4 * 6, 10)

    _, params, _ = drawer("tabular")(KEY)
    assert [layer["w"].shape for layer in params] == [(13, 8), (8, 3)]  # wine: 13 -> 3 classes

    _, params, (inputs, symbols) = drawer("sequence_copy")(KEY)
    assert inputs.shape == (8, 2 * 2 + 1, 3 + 2) and symbols.shape == (8, 2)
    assert params["recurrent"].shape == (12, 4 * 12)  # LSTM: four gates
    # the symbols come first, then the delimiter, then blanks
    np.testing.assert_array_equal(np.argmax(inputs[:, :2], -1), symbols)
    assert np.all(np.argmax(inputs[:, 2], -1) == 3) and np.all(np.argmax(inputs[:, 3:], -1) == 4)

    data, params, (x, y) = drawer("mlp_autoencoder")(KEY)
    # 30 features -> 12 -> a 3-wide code -> 12 -> 30, and the target is the input itself
    assert [layer["w"].shape for layer in params] == [(30, 12), (12, 3), (3, 12), (12, 30)]
    np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(*data["validation"])
    assert sorted_rows(*data["train"]).shape == (569 - round(real.VALIDATION_FRACTION * 569), 60)

    _, params, batch = drawer("char_lm")(KEY)
    assert batch.shape == (8, 8 + 1)
    assert params["embed"].shape == (len(datasets.VOCABULARY), 8)
    assert params["qkv"]["w"].shape == (8, 24) and params["mlp_in"]["w"].shape == (8, 32)


def test_char_lm_trains_on_the_start_of_the_text_and_validates_on_its_end():
    text = datasets.corpus()
    assert text.dtype == np.uint8 and len(text) > 100_000 and text.max() < len(datasets.VOCABULARY)
    decoded = "".join(datasets.VOCABULARY[i] for i in text[:2000])
    assert "def" in decoded or "class" in decoded or "The" in decoded  # English and Python
    split = round((1 - real.VALIDATION_FRACTION) * len(text))
    heldout, train = text[split:].tobytes(), text[:split].tobytes()
    validation, _, batch = drawer("char_lm")(KEY)
    assert validation.shape == (real.N_VALIDATION_SEQUENCES, 9)
    assert all(heldout.find(np.asarray(w, np.uint8).tobytes()) >= 0 for w in validation[:32])
    assert all(train.find(np.asarray(w, np.uint8).tobytes()) >= 0 for w in batch)


def test_tabular_datasets_are_standardised_with_the_right_targets():
    diabetes = datasets.tabular("diabetes")
    assert diabetes.x.shape == (442, 10) and diabetes.y.shape == (442, 1)
    assert diabetes.n_classes == 0
    np.testing.assert_allclose(diabetes.x.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(diabetes.y.std(), 1, rtol=1e-5)
    cancer = datasets.tabular("breast_cancer")
    assert cancer.n_classes == 2 and set(cancer.y) == {0, 1} and cancer.x.shape == (569, 30)
    with pytest.raises(ValueError, match="unknown tabular dataset"):
        datasets.tabular("iris")


@pytest.mark.slow  # trains a network of each family to a lower loss
@pytest.mark.parametrize("name", sorted(SMALL))
def test_adam_lowers_the_validation_loss(name):
    task = SMALL[name]
    train = jax.jit(make_optax_train(task, optax.adam))
    result = train(jnp.float32(1e-2), KEY)
    problem = task.build()
    k_data, k_init, _ = jax.random.split(KEY, 3)
    initial = problem.validation_loss(problem.init(k_init), problem.data(k_data))
    np.testing.assert_allclose(result.curve[0], initial, rtol=1e-5)  # the curve starts there
    assert not result.diverged
    assert float(result.final_loss) < 0.85 * float(initial), (result.curve[0], result.final_loss)


def test_the_flagship_search_holds_out_whole_families_and_tunes_a_fair_baseline():
    """The flagship's protocol: held-out families share neither a family (so neither
    architecture nor data) with training, each at two horizons and batch sizes; training
    levels vary horizon 0.25x-4x, batch size 4x and width; the baseline is AdamW tuned over
    lr x schedule x weight decay (Adam included) on more seeds than a candidate gets, and
    candidates are tuned over the same schedules."""
    config, _ = load_config(Path(__file__).parents[1] / "examples" / "optimizer_search.toml")
    plan = TaskPlan.from_config(config)
    trained = {task.family for task in plan.train} | set(config.scheduler.families)
    held_out = {task.family for task in plan.heldout}
    assert held_out == {"conv_autoencoder", "code_lm", "matrix_completion"}
    assert not held_out & (trained | {plan.screen.family})
    assert all(FAMILIES.get(family).build.__module__ == heldout.__name__ for family in held_out)
    for family in held_out:
        tasks = [task for task in plan.heldout if task.family == family]
        assert len({task.get("horizon") for task in tasks}) >= 2
        assert len({task.get("batch_size") for task in tasks}) >= 2
    for task in plan.heldout:  # a matrix completion a fit cannot interpolate (64 x 48 at rank
        if task.family == "matrix_completion":  # 8 has as many parameters as observations)
            observed = heldout.observed_entries(task.get("rows"), task.get("cols"))
            assert observed >= 4 * (task.get("rows") + task.get("cols")) * task.get("rank")
    for params in config.scheduler.families.values():
        assert max(params["horizon"]) >= 16 * min(params["horizon"])  # 0.25x..4x
        assert max(params["batch_size"]) >= 4 * min(params["batch_size"])
        assert len(params["width"]) >= 2
    assert {s.name for s in config.tasks.candidate_schedules} == {"constant", "cosine"}
    assert {s.name for s in config.tasks.baseline_schedule_grid} == {"constant", "cosine"}
    assert 0.0 in config.tasks.wd_grid and len(config.tasks.wd_grid) > 2  # Adam and AdamWs
    assert config.tasks.seeds_of_baseline > config.tasks.seeds
    assert config.screen.keep < 1.0