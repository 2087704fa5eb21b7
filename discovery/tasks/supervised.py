"""Supervised task families: small networks trained on data, and classic test functions."""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp

from disco_rules.discovery.tasks.family import (BATCH_SIZE, Choice, Family, Problem, Range,
                                                Task, register)
from disco_rules.populations.layers import dense, lecun_dense_init, lecun_mlp_init, mlp

N_VALIDATION = 256  # held-out examples of every dataset-based family
N_TRAIN = 256  # fixed training set of the classification family


# -- losses ---------------------------------------------------------------------------------


def mean_squared_error(prediction: jax.Array, target: jax.Array) -> jax.Array:
    """Mean squared error."""
    return jnp.mean((prediction - target) ** 2)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of integer `labels`."""
    log_probs = jax.nn.log_softmax(logits)
    return -jnp.mean(jnp.take_along_axis(log_probs, labels[:, None], axis=1))


# -- families -------------------------------------------------------------------------------


def _mlp_regression(task: Task) -> Problem:
    """Teacher-student regression: a tanh MLP student fits a random teacher of the same
    shape on fresh Gaussian inputs with noisy targets (online, so no overfitting)."""
    in_dim, width, depth = task.get("in_dim"), task.get("width"), task.get("depth")
    noise, batch_size = task.get("noise"), task.get("batch_size")
    sizes = [in_dim] + [width] * depth + [1]

    def examples(key: jax.Array, teacher: Any, n: int) -> tuple[jax.Array, jax.Array]:
        k_x, k_noise = jax.random.split(key)
        x = jax.random.normal(k_x, (n, in_dim))
        y = mlp(teacher, x) + noise * jax.random.normal(k_noise, (n, 1))
        return x, y

    def data(key: jax.Array) -> dict[str, Any]:
        k_teacher, k_val = jax.random.split(key)
        teacher = lecun_mlp_init(k_teacher, sizes)
        return {"teacher": teacher, "validation": examples(k_val, teacher, N_VALIDATION)}

    def loss(params: Any, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        return mean_squared_error(mlp(params, x), y)

    return Problem(
        init=lambda key: lecun_mlp_init(key, sizes),
        data=data,
        train_batch=lambda key, d: examples(key, d["teacher"], batch_size),
        loss=loss,
        validation_loss=lambda params, d: loss(params, d["validation"]),
        horizon=task.get("horizon"))


def _spirals(key: jax.Array, labels: jax.Array, n_classes: int) -> jax.Array:
    """Clean points on `n_classes` interleaved one-turn spiral arms of radius up to 1."""
    radius = jax.random.uniform(key, labels.shape, minval=0.05, maxval=1.0)
    angle = 2 * jnp.pi * (radius + labels / n_classes)
    return radius[:, None] * jnp.stack([jnp.cos(angle), jnp.sin(angle)], axis=1)


def _gaussians(key: jax.Array, labels: jax.Array, means: jax.Array) -> jax.Array:
    """Clean points from per-class Gaussians of std 0.5 around `means`."""
    return means[labels] + 0.5 * jax.random.normal(key, labels.shape + (2,))


def _classification(task: Task) -> Problem:
    """Cross-entropy classification of 2-D points (spirals or a Gaussian mixture) with a ReLU
    MLP, trained on minibatches of a fixed training set; `noise` is input noise std."""
    dataset, n_classes = task.get("dataset"), task.get("n_classes")
    width, depth = task.get("width"), task.get("depth")
    noise, batch_size = task.get("noise"), task.get("batch_size")
    sizes = [2] + [width] * depth + [n_classes]

    def split(key: jax.Array, means: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        k_points, k_noise = jax.random.split(key)
        labels = jnp.arange(n) % n_classes
        clean = _spirals(k_points, labels, n_classes) if dataset == "spirals" \
            else _gaussians(k_points, labels, means)
        return clean + noise * jax.random.normal(k_noise, clean.shape), labels

    def data(key: jax.Array) -> dict[str, Any]:
        k_means, k_train, k_val = jax.random.split(key, 3)
        means = jax.random.normal(k_means, (n_classes, 2))
        return {"train": split(k_train, means, N_TRAIN),
                "validation": split(k_val, means, N_VALIDATION)}

    def train_batch(key: jax.Array, d: dict[str, Any]) -> tuple[jax.Array, jax.Array]:
        index = jax.random.randint(key, (batch_size,), 0, N_TRAIN)
        x, y = d["train"]
        return x[index], y[index]

    def loss(params: Any, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        return cross_entropy(mlp(params, x, jax.nn.relu), y)

    return Problem(
        init=lambda key: lecun_mlp_init(key, sizes),
        data=data,
        train_batch=train_batch,
        loss=loss,
        validation_loss=lambda params, d: loss(params, d["validation"]),
        horizon=task.get("horizon"))


def _rnn(task: Task) -> Problem:
    """The adding problem with an Elman RNN: each step reads (value, marker); the target is
    the sum of the two marked values, one in each half of the sequence."""
    seq_len, width, batch_size = task.get("seq_len"), task.get("width"), task.get("batch_size")

    def sequences(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        k_values, k_first, k_second = jax.random.split(key, 3)
        values = jax.random.uniform(k_values, (n, seq_len))
        first = jax.random.randint(k_first, (n,), 0, seq_len // 2)
        second = jax.random.randint(k_second, (n,), seq_len // 2, seq_len)
        markers = jax.nn.one_hot(first, seq_len) + jax.nn.one_hot(second, seq_len)
        inputs = jnp.stack([values, markers], axis=-1)  # [n, seq_len, 2]
        return inputs, jnp.sum(values * markers, axis=1, keepdims=True)

    def init(key: jax.Array) -> dict[str, Any]:
        k_in, k_rec, k_out = jax.random.split(key, 3)
        return {"input": lecun_dense_init(k_in, 2, width),
                "recurrent": jax.random.normal(k_rec, (width, width)) / math.sqrt(width),
                "output": lecun_dense_init(k_out, width, 1)}

    def predict(params: dict[str, Any], inputs: jax.Array) -> jax.Array:
        def cell(hidden: jax.Array, x: jax.Array) -> tuple[jax.Array, None]:
            return jnp.tanh(dense(params["input"], x) + hidden @ params["recurrent"]), None

        hidden0 = jnp.zeros((inputs.shape[0], width))
        hidden, _ = jax.lax.scan(cell, hidden0, jnp.swapaxes(inputs, 0, 1))
        return dense(params["output"], hidden)

    def loss(params: dict[str, Any], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        inputs, targets = batch
        return mean_squared_error(predict(params, inputs), targets)

    return Problem(
        init=init,
        data=lambda key: sequences(key, N_VALIDATION),
        train_batch=lambda key, d: sequences(key, batch_size),
        loss=loss,
        validation_loss=loss,
        horizon=task.get("horizon"))


def _rosenbrock(task: Task) -> Problem:
    """The Rosenbrock function (mean of its dim-1 terms) from the classic start
    (-1.2, 1, -1.2, ...) jittered per seed; the parameters are the point, gradients exact."""
    dim = task.get("dim")

    def value(params: dict[str, jax.Array], _: Any = None) -> jax.Array:
        x = params["x"]
        return jnp.mean(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    def init(key: jax.Array) -> dict[str, jax.Array]:
        start = jnp.where(jnp.arange(dim) % 2 == 0, -1.2, 1.0)
        return {"x": start + 0.1 * jax.random.normal(key, (dim,))}

    return Problem(init=init, data=lambda key: (), train_batch=lambda key, d: (),
                   loss=value, validation_loss=value, horizon=task.get("horizon"))


def _random_rotation(key: jax.Array, dim: int) -> jax.Array:
    """An orthogonal matrix: the product of `dim` Householder reflections about Gaussian
    vectors. Not jnp.linalg.qr: jaxlib's CPU QR can deadlock when two run at once."""

    def reflect(basis: jax.Array, v: jax.Array) -> tuple[jax.Array, None]:
        v = v / jnp.linalg.norm(v)
        return basis - 2.0 * jnp.outer(basis @ v, v), None

    vectors = jax.random.normal(key, (dim, dim))
    return jax.lax.scan(reflect, jnp.eye(dim), vectors)[0]


def _quadratic(task: Task) -> Problem:
    """An ill-conditioned quadratic 0.5 (x - x*)^T A (x - x*): A has eigenvalues log-spaced
    from 1 down to 1/condition_number in a random basis; gradients carry N(0, noise^2) noise."""
    dim, noise = task.get("dim"), task.get("noise")
    condition_number = jnp.asarray(task.get("condition_number"), jnp.float32)
    eigenvalues = condition_number ** -jnp.linspace(0.0, 1.0, dim, dtype=jnp.float32)

    def data(key: jax.Array) -> dict[str, jax.Array]:
        k_basis, k_optimum = jax.random.split(key)
        basis = _random_rotation(k_basis, dim)
        return {"hessian": (basis * eigenvalues) @ basis.T,
                "optimum": jax.random.normal(k_optimum, (dim,))}

    def validation_loss(params: dict[str, jax.Array], d: dict[str, jax.Array]) -> jax.Array:
        delta = params["x"] - d["optimum"]
        return 0.5 * delta @ d["hessian"] @ delta

    def train_batch(key: jax.Array, d: dict[str, jax.Array]) -> dict[str, jax.Array]:
        return {**d, "noise": noise * jax.random.normal(key, (dim,))}

    def loss(params: dict[str, jax.Array], batch: dict[str, jax.Array]) -> jax.Array:
        return validation_loss(params, batch) + batch["noise"] @ params["x"]

    return Problem(
        init=lambda key: {"x": jax.random.normal(key, (dim,))},
        data=data,
        train_batch=train_batch,
        loss=loss,
        validation_loss=validation_loss,
        horizon=task.get("horizon"))


_HORIZON = Range(10, 2000, integer=True, log=True)
_WIDTH = Range(2, 128, integer=True, log=True)

for _family in (
    Family("mlp_regression",
           ranges={"in_dim": Range(1, 64, integer=True, log=True), "width": _WIDTH,
                   "depth": Range(1, 4, integer=True), "noise": Range(0.0, 1.0),
                   "batch_size": BATCH_SIZE, "horizon": _HORIZON},
           defaults={"in_dim": 8, "width": 16, "depth": 1, "noise": 0.1, "batch_size": 32,
                     "horizon": 200},
           build=_mlp_regression),
    Family("classification",
           ranges={"dataset": Choice(("spirals", "gaussians")),
                   "n_classes": Range(2, 8, integer=True), "width": _WIDTH,
                   "depth": Range(1, 4, integer=True), "noise": Range(0.0, 0.5),
                   "batch_size": BATCH_SIZE, "horizon": _HORIZON},
           defaults={"dataset": "spirals", "n_classes": 3, "width": 32, "depth": 2,
                     "noise": 0.05, "batch_size": 32, "horizon": 200},
           build=_classification),
    Family("rnn",
           ranges={"seq_len": Range(2, 50, integer=True), "width": _WIDTH,
                   "batch_size": BATCH_SIZE, "horizon": _HORIZON},
           defaults={"seq_len": 10, "width": 16, "batch_size": 32, "horizon": 200},
           build=_rnn),
    Family("rosenbrock",
           ranges={"dim": Range(2, 64, integer=True, log=True), "horizon": _HORIZON},
           defaults={"dim": 2, "horizon": 200},
           build=_rosenbrock),
    Family("quadratic",
           ranges={"dim": Range(2, 256, integer=True, log=True),
                   "condition_number": Range(1.0, 1e6, log=True), "noise": Range(0.0, 1.0),
                   "horizon": _HORIZON},
           defaults={"dim": 16, "condition_number": 100.0, "noise": 0.1, "horizon": 200},
           build=_quadratic),
):
    register(_family)
