"""Proxy tasks that look like what people train: real images, real tables, sequence models
and a one-block transformer language model, each scored on held-out examples.

Data comes from `datasets` (offline, loaded once per process as numpy arrays) and is closed
over as constants of the compiled loop. A seed's `data(key)` draws its train/validation split
(a permutation of the examples) or its held-out sequences, so the validation loss is always
measured on examples the optimizer never trained on. Int and string parameters fix shapes.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.discovery.tasks import datasets
from disco_rules.discovery.tasks.family import (BATCH_SIZE, HORIZON, Choice, Family, Problem,
                                                Range, Task, register)
from disco_rules.discovery.tasks.supervised import cross_entropy, mean_squared_error
from disco_rules.populations.layers import dense, lecun_dense_init, lecun_mlp_init, mlp

VALIDATION_FRACTION = 0.2  # of a dataset's examples held out from training
N_VALIDATION_SEQUENCES = 256  # held-out sequences (copy task) or text windows (char_lm)


# -- datasets split by seed ------------------------------------------------------------------


def _split_problem(dataset: datasets.Dataset, init: Any, predict: Any, batch_size: int,
                   horizon: int) -> Problem:
    """A Problem over a fixed dataset: each seed permutes the examples and holds out
    VALIDATION_FRACTION of them; minibatches are drawn from the rest."""
    n = len(dataset.y)
    n_validation = max(1, round(VALIDATION_FRACTION * n))
    n_train = n - n_validation

    def objective(prediction: jax.Array, target: jax.Array) -> jax.Array:
        return cross_entropy(prediction, target) if dataset.n_classes \
            else mean_squared_error(prediction, target)

    def data(key: jax.Array) -> dict[str, Any]:
        order = jax.random.permutation(key, n)
        x, y = jnp.asarray(dataset.x)[order], jnp.asarray(dataset.y)[order]
        return {"train": (x[:n_train], y[:n_train]),
                "validation": (x[n_train:], y[n_train:])}

    def train_batch(key: jax.Array, d: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
        index = jax.random.randint(key, (batch_size,), 0, n_train)
        x, y = d["train"]
        return x[index], y[index]

    def loss(params: Any, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        return objective(predict(params, x), y)

    return Problem(init=init, data=data, train_batch=train_batch, loss=loss,
                   validation_loss=lambda params, d: loss(params, d["validation"]),
                   horizon=horizon)


def _digits_mlp(task: Task) -> Problem:
    """scikit-learn's 8x8 digits classified by a ReLU MLP (64 -> width x depth -> 10)."""
    sizes = [64] + [task.get("width")] * task.get("depth") + [10]
    return _split_problem(datasets.digits(), lambda key: lecun_mlp_init(key, sizes),
                          lambda params, x: mlp(params, x, jax.nn.relu),
                          task.get("batch_size"), task.get("horizon"))


def _conv(x: jax.Array, kernel: jax.Array, stride: int) -> jax.Array:
    return jax.lax.conv_general_dilated(x, kernel, (stride, stride), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _digits_cnn(task: Task) -> Problem:
    """The digits classified by a tiny CNN: 3x3 conv (channels) -> ReLU -> 3x3 conv stride 2
    (2 x channels) -> ReLU -> dense to 10 classes."""
    channels = task.get("channels")

    def init(key: jax.Array) -> dict[str, Any]:
        k1, k2, k3 = jax.random.split(key, 3)
        return {"conv1": jax.random.normal(k1, (3, 3, 1, channels)) / 3.0,
                "bias1": jnp.zeros(channels),
                "conv2": jax.random.normal(k2, (3, 3, channels, 2 * channels))
                / math.sqrt(9 * channels),
                "bias2": jnp.zeros(2 * channels),
                "dense": lecun_dense_init(k3, 16 * 2 * channels, 10)}

    def predict(params: dict[str, Any], x: jax.Array) -> jax.Array:
        h = jax.nn.relu(_conv(x.reshape(-1, 8, 8, 1), params["conv1"], 1) + params["bias1"])
        h = jax.nn.relu(_conv(h, params["conv2"], 2) + params["bias2"])  # [n, 4, 4, 2c]
        return dense(params["dense"], h.reshape(h.shape[0], -1))

    return _split_problem(datasets.digits(), init, predict, task.get("batch_size"),
                          task.get("horizon"))


def _tabular(task: Task) -> Problem:
    """A tabular dataset (regression for diabetes, classification otherwise) with a ReLU MLP;
    depth 0 is a linear model (linear or logistic regression)."""
    dataset = datasets.tabular(task.get("dataset"))
    outputs = dataset.n_classes or 1
    sizes = [dataset.x.shape[1]] + [task.get("width")] * task.get("depth") + [outputs]
    return _split_problem(dataset, lambda key: lecun_mlp_init(key, sizes),
                          lambda params, x: mlp(params, x, jax.nn.relu),
                          task.get("batch_size"), task.get("horizon"))


def _mlp_autoencoder(task: Task) -> Problem:
    """An MLP autoencoder (ReLU; inputs -> width x depth -> a `code`-wide bottleneck -> width x
    depth -> inputs) reconstructing a dataset's inputs (the digits' pixels or a tabular set's
    standardised features), mean squared error on each seed's held-out examples."""
    source = datasets.digits() if task.get("dataset") == "digits" \
        else datasets.tabular(task.get("dataset"))
    n_in, hidden = source.x.shape[1], [task.get("width")] * task.get("depth")
    sizes = [n_in] + hidden + [task.get("code")] + hidden + [n_in]
    return _split_problem(datasets.Dataset(source.x, source.x, 0),
                          lambda key: lecun_mlp_init(key, sizes),
                          lambda params, x: mlp(params, x, jax.nn.relu),
                          task.get("batch_size"), task.get("horizon"))


# -- sequence models -------------------------------------------------------------------------


def _recurrent_init(key: jax.Array, cell: str, n_in: int, width: int, n_out: int
                    ) -> dict[str, Any]:
    """A GRU (3 gates) or LSTM (4 gates) cell's weights and a dense readout."""
    gates = 3 if cell == "gru" else 4
    k_in, k_rec, k_out = jax.random.split(key, 3)
    return {"input": lecun_dense_init(k_in, n_in, gates * width),
            "recurrent": jax.random.normal(k_rec, (width, gates * width)) / math.sqrt(width),
            "output": lecun_dense_init(k_out, width, n_out)}


def _recurrent_run(params: dict[str, Any], cell: str, inputs: jax.Array, width: int
                   ) -> jax.Array:
    """Hidden states [n, steps, width] of the cell run over inputs [n, steps, n_in]."""

    def gru(h: jax.Array, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        xi = dense(params["input"], x)
        hr = h @ params["recurrent"]
        reset = jax.nn.sigmoid(xi[:, :width] + hr[:, :width])
        update = jax.nn.sigmoid(xi[:, width:2 * width] + hr[:, width:2 * width])
        candidate = jnp.tanh(xi[:, 2 * width:] + reset * hr[:, 2 * width:])
        h = (1.0 - update) * h + update * candidate
        return h, h

    def lstm(carry: tuple[jax.Array, jax.Array], x: jax.Array
             ) -> tuple[tuple[jax.Array, jax.Array], jax.Array]:
        h, c = carry
        z = dense(params["input"], x) + h @ params["recurrent"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((inputs.shape[0], width))
    steps = jnp.swapaxes(inputs, 0, 1)
    if cell == "gru":
        _, hidden = jax.lax.scan(gru, zeros, steps)
    else:
        _, hidden = jax.lax.scan(lstm, (zeros, zeros), steps)
    return jnp.swapaxes(hidden, 0, 1)


def _sequence_copy(task: Task) -> Problem:
    """Copy with a GRU or LSTM: read `seq_len` symbols of `vocab`, a delimiter, then emit the
    symbols in order while reading blanks; cross-entropy over the emitted symbols. Training
    sequences are fresh every step; validation uses a seed's fixed held-out sequences."""
    cell, seq_len, vocab = task.get("cell"), task.get("seq_len"), task.get("vocab")
    width, batch_size = task.get("width"), task.get("batch_size")
    delimiter, blank = vocab, vocab + 1

    def sequences(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        symbols = jax.random.randint(key, (n, seq_len), 0, vocab)
        tokens = jnp.concatenate([symbols, jnp.full((n, 1), delimiter),
                                  jnp.full((n, seq_len), blank)], axis=1)
        return jax.nn.one_hot(tokens, vocab + 2), symbols

    def loss(params: dict[str, Any], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        inputs, symbols = batch
        hidden = _recurrent_run(params, cell, inputs, width)[:, seq_len + 1:]
        logits = dense(params["output"], hidden)
        return cross_entropy(logits.reshape(-1, vocab), symbols.reshape(-1))

    return Problem(
        init=lambda key: _recurrent_init(key, cell, vocab + 2, width, vocab),
        data=lambda key: sequences(key, N_VALIDATION_SEQUENCES),
        train_batch=lambda key, d: sequences(key, batch_size),
        loss=loss,
        validation_loss=loss,
        horizon=task.get("horizon"))


def _layer_norm(x: jax.Array, gain: jax.Array, bias: jax.Array) -> jax.Array:
    mean = jnp.mean(x, axis=-1, keepdims=True)
    variance = jnp.mean((x - mean) ** 2, axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(variance + 1e-5) * gain + bias


def _char_lm(task: Task) -> Problem:
    """A one-block pre-LayerNorm transformer (causal self-attention, a 4x-wide GELU MLP)
    predicting the next character of Python's help topics (`datasets.corpus`). The last
    VALIDATION_FRACTION of the text is held out; a seed's validation set is
    N_VALIDATION_SEQUENCES windows drawn from it."""
    heads, head_dim = task.get("heads"), task.get("head_dim")
    context = task.get("context")
    width, vocab = heads * head_dim, len(datasets.VOCABULARY)
    mask = np.tril(np.ones((context, context), bool))

    def init(key: jax.Array) -> dict[str, Any]:
        keys = jax.random.split(key, 6)
        ones, zeros = jnp.ones(width), jnp.zeros(width)
        return {"embed": 0.1 * jax.random.normal(keys[0], (vocab, width)),
                "position": 0.1 * jax.random.normal(keys[1], (context, width)),
                "norm1": (ones, zeros), "norm2": (ones, zeros), "norm3": (ones, zeros),
                "qkv": lecun_dense_init(keys[2], width, 3 * width),
                "attention_out": lecun_dense_init(keys[3], width, width),
                "mlp_in": lecun_dense_init(keys[4], width, 4 * width),
                "mlp_out": lecun_dense_init(keys[5], 4 * width, width)}

    def logits(params: dict[str, Any], tokens: jax.Array) -> jax.Array:
        x = params["embed"][tokens] + params["position"]  # [n, context, width]
        q, k, v = jnp.split(dense(params["qkv"], _layer_norm(x, *params["norm1"])), 3, axis=-1)
        q, k, v = (a.reshape(a.shape[0], context, heads, head_dim) for a in (q, k, v))
        scores = jnp.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(head_dim)
        weights = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        attended = jnp.einsum("nhqk,nkhd->nqhd", weights, v).reshape(x.shape)
        x = x + dense(params["attention_out"], attended)
        hidden = jax.nn.gelu(dense(params["mlp_in"], _layer_norm(x, *params["norm2"])))
        x = x + dense(params["mlp_out"], hidden)
        return _layer_norm(x, *params["norm3"]) @ params["embed"].T  # tied embeddings

    return language_model(datasets.corpus(), init, logits, task)


def language_model(text: np.ndarray, init: Any, logits: Any, task: Task) -> Problem:
    """Next-character prediction on `text` (indices into datasets.VOCABULARY) by
    `logits(params, tokens [n, context]) -> [n, context, vocab]`: training windows of
    `context` + 1 characters from the first 1 - VALIDATION_FRACTION of the text, a seed's
    validation set N_VALIDATION_SEQUENCES windows from the rest; cross-entropy loss."""
    context, batch_size = task.get("context"), task.get("batch_size")
    split = round((1.0 - VALIDATION_FRACTION) * len(text))
    train_text, heldout_text = text[:split], text[split:]
    vocab = len(datasets.VOCABULARY)

    def windows(key: jax.Array, source: np.ndarray, n: int) -> jax.Array:
        starts = jax.random.randint(key, (n, 1), 0, len(source) - context)
        return jnp.asarray(source)[starts + jnp.arange(context + 1)].astype(jnp.int32)

    def loss(params: dict[str, Any], batch: jax.Array) -> jax.Array:
        predicted = logits(params, batch[:, :-1]).reshape(-1, vocab)
        return cross_entropy(predicted, batch[:, 1:].reshape(-1))

    return Problem(
        init=init,
        data=lambda key: windows(key, heldout_text, N_VALIDATION_SEQUENCES),
        train_batch=lambda key, d: windows(key, train_text, batch_size),
        loss=loss,
        validation_loss=loss,
        horizon=task.get("horizon"))


for _family in (
    Family("digits_mlp",
           ranges={"width": Range(4, 256, integer=True, log=True),
                   "depth": Range(1, 3, integer=True), "batch_size": BATCH_SIZE,
                   "horizon": HORIZON},
           defaults={"width": 64, "depth": 1, "batch_size": 32, "horizon": 1000},
           build=_digits_mlp),
    Family("digits_cnn",
           ranges={"channels": Range(2, 32, integer=True, log=True),
                   "batch_size": BATCH_SIZE, "horizon": HORIZON},
           defaults={"channels": 8, "batch_size": 32, "horizon": 500},
           build=_digits_cnn),
    Family("tabular",
           ranges={"dataset": Choice(datasets.TABULAR),
                   "width": Range(4, 256, integer=True, log=True),
                   "depth": Range(0, 3, integer=True), "batch_size": BATCH_SIZE,
                   "horizon": HORIZON},
           defaults={"dataset": "diabetes", "width": 32, "depth": 1, "batch_size": 32,
                     "horizon": 500},
           build=_tabular),
    Family("mlp_autoencoder",
           ranges={"dataset": Choice(("digits",) + datasets.TABULAR),
                   "width": Range(4, 256, integer=True, log=True),
                   "depth": Range(0, 3, integer=True),
                   "code": Range(1, 64, integer=True, log=True), "batch_size": BATCH_SIZE,
                   "horizon": HORIZON},
           defaults={"dataset": "digits", "width": 32, "depth": 1, "code": 8,
                     "batch_size": 32, "horizon": 500},
           build=_mlp_autoencoder),
    Family("sequence_copy",
           ranges={"cell": Choice(("gru", "lstm")), "seq_len": Range(1, 20, integer=True),
                   "vocab": Range(2, 32, integer=True),
                   "width": Range(4, 128, integer=True, log=True),
                   "batch_size": BATCH_SIZE, "horizon": HORIZON},
           defaults={"cell": "gru", "seq_len": 5, "vocab": 8, "width": 32, "batch_size": 32,
                     "horizon": 1000},
           build=_sequence_copy),
    Family("char_lm",
           ranges={"heads": Range(1, 8, integer=True), "head_dim": Range(4, 64, integer=True),
                   "context": Range(4, 128, integer=True, log=True),
                   "batch_size": BATCH_SIZE, "horizon": HORIZON},
           defaults={"heads": 2, "head_dim": 16, "context": 32, "batch_size": 16,
                     "horizon": 1000},
           build=_char_lm),
):
    register(_family)
