"""The held-out families: shapes follow their parameters, data is a pure function of the seed,
validation examples are never trained on, Adam lowers the held-out loss, and the ranges leave
room for the usual transfer levels (a quarter to four times the horizon, four times the batch,
twice the width)."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from disco_rules.discovery.inner.train import make_optax_train
from disco_rules.discovery.tasks import FAMILIES, Task, datasets, heldout, real

KEY = jax.random.PRNGKey(0)
SMALL = {
    "conv_autoencoder": Task.make("conv_autoencoder", channels=4, shapes=2, batch_size=16,
                                  horizon=150),
    "code_lm": Task.make("code_lm", heads=2, head_dim=4, context=8, batch_size=8, horizon=150),
    "matrix_completion": Task.make("matrix_completion", rows=48, cols=40, rank=4, true_rank=2,
                                   batch_size=32, horizon=400),
    "graph_regression": Task.make("graph_regression", nodes=16, features=4, width=8,
                                  batch_size=8, horizon=300),
}
WIDTH = {"conv_autoencoder": "channels", "code_lm": "head_dim", "matrix_completion": "rank",
         "graph_regression": "width"}


def test_every_heldout_family_has_a_small_test_task():
    assert set(SMALL) == set(WIDTH) == {family.name for family in map(FAMILIES.get, FAMILIES)
                                        if family.build.__module__ == heldout.__name__}


@functools.cache
def drawer(name):
    """Data, initial parameters, a batch and the two initial losses of a key, in one compiled
    call; the key is split as the training loop splits it."""
    problem = SMALL[name].build()

    def draw(key):
        k_data, k_init, k_batch = jax.random.split(key, 3)
        data, params = problem.data(k_data), problem.init(k_init)
        batch = problem.train_batch(k_batch, data)
        return (data, params, batch, problem.loss(params, batch),
                problem.validation_loss(params, data))

    return jax.jit(draw)


def leaves_equal(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_data_is_a_pure_function_of_the_seed(name):
    drawn = drawer(name)(KEY)
    assert leaves_equal(drawn, drawer(name)(KEY))
    other = drawer(name)(jax.random.PRNGKey(1))
    for part in range(3):  # data, initial parameters, minibatch
        assert not leaves_equal(drawn[part], other[part]), part


@pytest.mark.parametrize("name", sorted(SMALL))
def test_initial_losses_are_finite_and_positive(name):
    for value in drawer(name)(KEY)[3:]:  # training loss of a batch, validation loss
        assert value.shape == () and np.isfinite(value) and value > 0


def test_depth_to_space_makes_each_pixels_channels_a_two_by_two_block():
    x = jnp.arange(2 * 3 * 5 * 8).reshape(2, 3, 5, 8)
    y = np.asarray(heldout._depth_to_space(x))
    assert y.shape == (2, 6, 10, 2)
    np.testing.assert_array_equal(y[1, 2:4, 6:8, 1], np.asarray(x[1, 1, 3, 1::2]).reshape(2, 2))


def test_autoencoder_shapes_and_images():
    data, params, batch, *_ = drawer("conv_autoencoder")(KEY)
    assert data.shape == (heldout.N_VALIDATION_IMAGES, 16, 16, 1) and batch.shape == (16, 16, 16, 1)
    assert params["encode1"]["w"].shape == (3, 3, 1, 4)
    assert params["encode2"]["w"].shape == (3, 3, 4, 8)
    assert params["latent"]["w"].shape == (1, 1, 8, heldout.LATENT_CHANNELS)
    assert params["decode1"]["w"].shape == (3, 3, heldout.LATENT_CHANNELS, 16)
    assert params["decode2"]["w"].shape == (3, 3, 4, 4)
    assert set(params) == {"encode1", "encode2", "latent", "decode1", "decode2"}
    images = np.asarray(data)
    assert images.min() >= 0.0 and images.max() <= 1.0
    drawn = (images > 0.05).mean(axis=(1, 2, 3))  # every canvas has something on it, not all
    assert drawn.min() > 0.0 and drawn.max() < 1.0 and 0.05 < drawn.mean() < 0.6
    assert len({image.tobytes() for image in images}) == len(images)  # no repeats


def test_autoencoder_never_trains_on_its_validation_images():
    problem = SMALL["conv_autoencoder"].build()
    data, *_ = drawer("conv_autoencoder")(KEY)
    keys = jax.random.split(jax.random.PRNGKey(7), 40)
    batches = jax.jit(jax.vmap(problem.train_batch, in_axes=(0, None)))(keys, data)
    trained = {image.tobytes() for image in np.asarray(batches).reshape(-1, 16, 16, 1)}
    assert len(trained) == 40 * 16  # fresh images every step
    assert not trained & {image.tobytes() for image in np.asarray(data)}


def test_code_lm_is_a_two_block_transformer_with_an_untied_readout():
    _, params, batch, *_ = drawer("code_lm")(KEY)
    vocab, width = len(datasets.VOCABULARY), 2 * 4
    assert batch.shape == (8, 8 + 1) and batch.dtype == jnp.int32
    assert params["embed"].shape == (vocab, width)
    assert params["readout"]["w"].shape == (width, vocab)
    assert len(params["blocks"]) == 2
    assert params["blocks"][0]["qkv"]["w"].shape == (width, 3 * width)
    assert "position" not in params  # sinusoidal positions, nothing to learn


def test_code_lm_text_is_standard_library_source_and_not_the_help_text():
    code = datasets.python_source()
    assert code.dtype == np.uint8 and len(code) > 300_000 and code.max() < len(datasets.VOCABULARY)
    decoded = "".join(datasets.VOCABULARY[i] for i in code[:20_000])
    assert "import " in decoded and "def " in decoded
    assert np.mean(code == datasets.UNKNOWN) < 0.01
    help_text = datasets.corpus().tobytes()
    starts = np.random.default_rng(0).integers(0, len(code) - 64, 200)
    shared = sum(help_text.find(code[s:s + 64].tobytes()) >= 0 for s in starts)
    assert shared <= 2  # char_lm's text and code_lm's share (almost) no 64-character runs


def test_code_lm_trains_on_the_start_of_the_text_and_validates_on_its_end():
    text = datasets.python_source()
    split = round((1 - real.VALIDATION_FRACTION) * len(text))
    head, tail = text[:split].tobytes(), text[split:].tobytes()
    validation, _, batch, *_ = drawer("code_lm")(KEY)
    assert validation.shape == (real.N_VALIDATION_SEQUENCES, 9)
    windows = [np.asarray(w, np.uint8).tobytes() for w in validation]
    assert all(tail.find(w) >= 0 for w in windows)
    assert len(set(windows)) > 200  # spread over the tail, not one window
    assert all(head.find(np.asarray(w, np.uint8).tobytes()) >= 0 for w in batch)


def test_matrix_completion_holds_out_entries_it_never_trains_on():
    task = SMALL["matrix_completion"]
    problem = task.build()
    data, params, *_ = drawer("matrix_completion")(KEY)
    assert params["u"].shape == (48, 4) and params["v"].shape == (40, 4)
    observed = [np.asarray(a) for a in data["observed"]]
    validation = [np.asarray(a) for a in data["validation"]]
    n_observed = round(heldout.OBSERVED_FRACTION * 48 * 40)
    assert len(observed[0]) == n_observed
    assert len(validation[0]) == min(heldout.N_VALIDATION_ENTRIES, 48 * 40 - n_observed)
    cells = lambda entries: set(zip(entries[0].tolist(), entries[1].tolist()))  # noqa: E731
    assert len(cells(observed)) == n_observed  # each observed entry once
    assert not cells(observed) & cells(validation)
    assert all(0 <= r < 48 and 0 <= c < 40 for r, c in cells(observed) | cells(validation))
    keys = jax.random.split(jax.random.PRNGKey(3), 20)
    batches = jax.vmap(problem.train_batch, in_axes=(0, None))(keys, data)
    seen = {(r, c, v) for r, c, v in zip(*(np.asarray(a).ravel().tolist() for a in batches))}
    assert seen <= set(zip(*(a.tolist() for a in observed)))  # minibatches: observed entries


def test_matrix_completion_noise_is_a_traced_float_on_every_entry():
    task = SMALL["matrix_completion"]

    @jax.jit
    def entries(noise):
        return task.build({"noise": noise}).data(KEY)

    clean, noisy = entries(jnp.float32(0.0)), entries(jnp.float32(0.5))
    for part in ("observed", "validation"):
        np.testing.assert_array_equal(clean[part][0], noisy[part][0])  # same cells
        difference = np.asarray(noisy[part][2] - clean[part][2])
        assert 0.4 < difference.std() < 0.6
    values = np.asarray(clean["observed"][2])
    assert 0.3 < values.var() < 3.0  # entries of variance about 1


def closed_form_propagation(adjacency):
    """D^-1/2 (A + I) D^-1/2 of one 0/1 adjacency, in numpy."""
    with_loops = np.asarray(adjacency, np.float64) + np.eye(len(adjacency))
    scale = np.diag(with_loops.sum(axis=1) ** -0.5)
    return scale @ with_loops @ scale


def test_normalised_adjacency_is_the_symmetric_normalisation_with_self_loops():
    adjacency = np.zeros((5, 5), np.float32)  # edges 0-1, 1-2, 1-3, 2-3; node 4 alone
    for i, j in ((0, 1), (1, 2), (1, 3), (2, 3)):
        adjacency[i, j] = adjacency[j, i] = 1.0
    propagate = np.asarray(heldout._normalised_adjacency(jnp.asarray(adjacency)))
    np.testing.assert_allclose(propagate, closed_form_propagation(adjacency), rtol=1e-6)
    # degrees with self-loops 2, 4, 3, 3, 1
    np.testing.assert_allclose([propagate[0, 0], propagate[0, 1], propagate[2, 3],
                                propagate[4, 4], propagate[0, 2]],
                               [1 / 2, 1 / np.sqrt(8), 1 / 3, 1.0, 0.0], rtol=1e-6)
    batched = heldout._normalised_adjacency(jnp.stack([jnp.asarray(adjacency), jnp.zeros((5, 5))]))
    np.testing.assert_allclose(batched[0], propagate, rtol=1e-6)
    np.testing.assert_array_equal(batched[1], np.eye(5))  # no edges: each node keeps itself


def test_random_graphs_are_symmetric_without_self_loops_and_as_dense_as_edge_prob():
    draw = jax.jit(lambda key, p: heldout._random_graphs(key, 200, 16, 3, p))
    for edge_prob in (0.05, 0.3):  # traced: one compiled draw for both
        x, adjacency = (np.asarray(a) for a in draw(KEY, jnp.float32(edge_prob)))
        assert x.shape == (200, 16, 3) and adjacency.shape == (200, 16, 16)
        assert abs(x.mean()) < 0.05 and abs(x.std() - 1.0) < 0.05
        assert set(np.unique(adjacency)) <= {0.0, 1.0}
        np.testing.assert_array_equal(adjacency, adjacency.transpose(0, 2, 1))
        assert not adjacency[:, np.arange(16), np.arange(16)].any()
        rows, cols = np.triu_indices(16, k=1)
        pairs = adjacency[:, rows, cols]  # 200 graphs x 120 node pairs
        assert abs(pairs.mean() - edge_prob) < 0.02, pairs.mean()
        assert len({a.tobytes() for a in adjacency}) > 190  # different graphs


def student_loss(params, x, propagate, targets):
    """The student GCN's mean squared error, in numpy."""
    h = np.asarray(x, np.float64)
    for layer in (params["conv1"], params["conv2"]):
        h = np.tanh(propagate @ h @ np.asarray(layer["w"]) + np.asarray(layer["b"]))
    predicted = (h @ np.asarray(params["readout"]["w"]) + np.asarray(params["readout"]["b"]))
    return np.mean((predicted[..., 0] - targets) ** 2)


def test_graph_regression_is_a_two_layer_gcn_on_the_normalised_adjacency():
    data, params, batch, train_loss, validation_loss = drawer("graph_regression")(KEY)
    assert params["conv1"]["w"].shape == (4, 8) and params["conv2"]["w"].shape == (8, 8)
    assert params["readout"]["w"].shape == (8, 1)
    assert set(params) == {"conv1", "conv2", "readout"}
    x, propagate, targets = (np.asarray(a, np.float64) for a in batch)
    assert x.shape == (8, 16, 4) and propagate.shape == (8, 16, 16) and targets.shape == (8, 16)
    assert [a.shape[0] for a in data["validation"]] == [heldout.N_VALIDATION_GRAPHS] * 3
    for graphs in (batch, data["validation"]):  # the propagation of each graph's own edges
        for one in np.asarray(graphs[1], np.float64):
            adjacency = (one > 0) & ~np.eye(16, dtype=bool)
            np.testing.assert_allclose(one, closed_form_propagation(adjacency), atol=1e-6)
    np.testing.assert_allclose(train_loss, student_loss(params, x, propagate, targets),
                               rtol=1e-4)
    validation = [np.asarray(a, np.float64) for a in data["validation"]]
    np.testing.assert_allclose(validation_loss, student_loss(params, *validation), rtol=1e-4)


def test_graph_regression_never_trains_on_its_validation_graphs():
    problem = SMALL["graph_regression"].build()
    data, *_ = drawer("graph_regression")(KEY)
    keys = jax.random.split(jax.random.PRNGKey(7), 40)
    batches = jax.jit(jax.vmap(problem.train_batch, in_axes=(0, None)))(keys, data)
    trained = {graph.tobytes() for graph in np.asarray(batches[0]).reshape(-1, 16, 4)}
    assert len(trained) == 40 * 8  # fresh graphs every step
    validation = {graph.tobytes() for graph in np.asarray(data["validation"][0])}
    assert len(validation) == heldout.N_VALIDATION_GRAPHS and not trained & validation


def teacher_targets(teacher, x, propagate):
    """The teacher GCN's clean targets, in numpy."""
    x, propagate = np.asarray(x, np.float64), np.asarray(propagate, np.float64)
    hidden = np.tanh(propagate @ x @ np.asarray(teacher["hidden"]))
    return (propagate @ hidden @ np.asarray(teacher["out"]))[..., 0]


def test_graph_regression_targets_are_the_teachers_output_plus_traced_noise():
    task = SMALL["graph_regression"]

    @jax.jit
    def draw(noise, edge_prob):
        problem = task.build({"noise": noise, "edge_prob": edge_prob})
        data = problem.data(KEY)
        keys = jax.random.split(jax.random.PRNGKey(5), 16)
        return data, jax.vmap(problem.train_batch, in_axes=(0, None))(keys, data)

    clean = draw(jnp.float32(0.0), jnp.float32(0.15))
    noisy = draw(jnp.float32(0.5), jnp.float32(0.15))
    teacher = clean[0]["teacher"]
    assert teacher["hidden"].shape == (4, heldout.TEACHER_WIDTH)
    assert teacher["out"].shape == (heldout.TEACHER_WIDTH, 1)
    assert leaves_equal(teacher, noisy[0]["teacher"])  # the noise changes only the targets
    for clean_graphs, noisy_graphs in ((clean[0]["validation"], noisy[0]["validation"]),
                                       (clean[1], noisy[1])):  # 16 training batches
        assert leaves_equal(clean_graphs[:2], noisy_graphs[:2])  # the same graphs
        np.testing.assert_allclose(clean_graphs[2], teacher_targets(teacher, *clean_graphs[:2]),
                                   atol=1e-4)
        assert 0.45 < np.asarray(noisy_graphs[2] - clean_graphs[2]).std() < 0.55
    assert 0.95 < np.asarray(clean[0]["validation"][2]).var() < 1.05  # scaled to variance 1
    assert 0.3 < np.asarray(clean[1][2]).var() < 3.0
    off_diagonal = ~np.eye(16, dtype=bool)
    for edge_prob in (0.15, 0.4):  # edge_prob is traced too
        propagate = np.asarray(draw(jnp.float32(0.0), jnp.float32(edge_prob))[0]["validation"][1])
        assert abs((propagate[:, off_diagonal] > 0).mean() - edge_prob) < 0.03


@pytest.mark.parametrize("name, lr, factor", [("conv_autoencoder", 3e-3, 0.5),
                                              ("code_lm", 1e-2, 0.75),
                                              ("matrix_completion", 1e-2, 0.5),
                                              ("graph_regression", 1e-2, 0.1)])
@pytest.mark.slow  # trains a network of each family to a lower loss
def test_adam_lowers_the_validation_loss(name, lr, factor):
    task = SMALL[name]
    result = jax.jit(make_optax_train(task, optax.adam))(jnp.float32(lr), KEY)
    initial = drawer(name)(KEY)[-1]  # the same data and initial parameters
    np.testing.assert_allclose(result.curve[0], initial, rtol=1e-5)  # the curve starts there
    assert not result.diverged
    assert float(result.final_loss) < factor * float(initial), (result.curve[0], result.final_loss)
    if name == "code_lm":  # better than guessing characters uniformly, by a clear margin
        assert float(result.final_loss) < np.log(len(datasets.VOCABULARY)) - 1.0


@pytest.mark.parametrize("name", sorted(SMALL))
def test_ranges_allow_the_transfer_levels_of_the_defaults(name):
    defaults = FAMILIES.get(name).defaults
    horizon, batch_size, width = defaults["horizon"], defaults["batch_size"], defaults[WIDTH[name]]
    for change in ({"horizon": horizon // 4}, {"horizon": horizon * 4},
                   {"batch_size": batch_size // 4}, {"batch_size": batch_size * 4},
                   {WIDTH[name]: width // 2}, {WIDTH[name]: width * 2}):
        assert Task.make(name, **change).get(next(iter(change))) == next(iter(change.values()))
    if name == "matrix_completion":
        assert horizon >= 2000  # the long-horizon family
