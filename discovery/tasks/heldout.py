"""Held-out task families for meta-validation: problems that share neither architecture nor
data with any training family, so a rule that scores well on them has not just learned the
training tasks' networks or datasets.

- `conv_autoencoder`: a convolutional autoencoder (stride-2 convolutions down to a 4x4x4
  bottleneck, sub-pixel convolutions back up) reconstructing 16x16 grey images of random discs,
  rectangles and strokes drawn in JAX from the seed; nothing is downloaded and no training
  family sees images like these or an encoder-decoder.
- `code_lm`: a two-block causal transformer (RMSNorm, fixed sinusoidal positions, an untied
  readout; `char_lm` has one LayerNorm block, learned positions and tied embeddings) over the
  characters of Python standard-library source code (`datasets.python_source`: the text
  follows the running Python version), a text no other family reads. The last
  VALIDATION_FRACTION of the text is held out, as in `char_lm`.
- `matrix_completion`: a long-horizon regression, a factorisation U V^T (of rank `rank`,
  over-parameterised by default) fit to the observed entries of a noisy random low-rank matrix,
  scored on held-out entries; it is bilinear, not a network, and its data is drawn per seed.
  At the defaults (64 x 48, rank 8) a fit has about as many parameters as observed entries and
  fits their noise, so a final loss ranks overfitting; held out, give it four or more entries
  per parameter (the flagship: 128 x 96, rank 4). The defaults stay: a run stores its config,
  not the defaults it relied on, so a new default would change archived runs' tasks.
- `graph_regression`: a graph convolutional network (message passing over the symmetric
  normalised adjacency, Kipf & Welling, 2017) regressing a node value on random Erdős–Rényi
  graphs drawn in JAX from the seed, the targets a seed's fixed random teacher GCN plus noise;
  no training family passes messages along a graph or sees graph-structured data.

Int parameters fix shapes; `noise` and `edge_prob` are floats and may be traced
(`Task.build(floats)`).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from disco_rules.discovery.tasks import datasets
from disco_rules.discovery.tasks.family import (BATCH_SIZE, HORIZON, Family, Problem, Range,
                                                Task, register)
from disco_rules.discovery.tasks.real import language_model
from disco_rules.populations.layers import dense, lecun_dense_init

IMAGE_SIZE = 16  # pixels on a side of the autoencoder's canvases
LATENT_CHANNELS = 4  # the bottleneck: 4x4 positions x 4 channels = 64 numbers per 256 pixels
N_VALIDATION_IMAGES = 256  # a seed's fixed held-out images
OBSERVED_FRACTION = 0.3  # of a matrix's entries, seen in training
N_VALIDATION_ENTRIES = 1024  # held-out entries of a matrix (fewer if it has not that many)
N_VALIDATION_GRAPHS = 64  # a seed's fixed held-out graphs
TEACHER_WIDTH = 16  # hidden features of the random teacher GCN that makes the targets


# -- conv_autoencoder ------------------------------------------------------------------------


def _canvases(key: jax.Array, n: int, shapes: int) -> jax.Array:
    """`n` grey images [n, 16, 16, 1] in [0, 1]: `shapes` random discs, rectangles or strokes,
    each of a random intensity, painted in order over a black canvas with soft (one-pixel)
    edges."""
    k_kind, k_centre, k_size, k_end, k_level = jax.random.split(key, 5)
    size = float(IMAGE_SIZE)
    kind = jax.random.randint(k_kind, (n, shapes, 1, 1), 0, 3)  # disc, rectangle, stroke
    centre = jax.random.uniform(k_centre, (n, shapes, 2, 1, 1), minval=2.0, maxval=size - 2.0)
    extent = jax.random.uniform(k_size, (n, shapes, 2, 1, 1), minval=1.5, maxval=size / 4)
    end = jax.random.uniform(k_end, (n, shapes, 2, 1, 1), minval=0.0, maxval=size)
    level = jax.random.uniform(k_level, (n, shapes, 1, 1), minval=0.2, maxval=1.0)
    y, x = jnp.meshgrid(jnp.arange(size) + 0.5, jnp.arange(size) + 0.5, indexing="ij")
    dy, dx = y - centre[:, :, 0], x - centre[:, :, 1]  # [n, shapes, 16, 16]
    disc = jnp.sqrt(dy ** 2 + dx ** 2) - extent[:, :, 0]
    rectangle = jnp.maximum(jnp.abs(dy) - extent[:, :, 0], jnp.abs(dx) - extent[:, :, 1])
    # a stroke: the segment from the centre to `end`, a third of the first extent thick on
    # each side
    ey, ex = end[:, :, 0] - centre[:, :, 0], end[:, :, 1] - centre[:, :, 1]
    along = jnp.clip((dy * ey + dx * ex) / (ey ** 2 + ex ** 2 + 1e-6), 0.0, 1.0)
    stroke = jnp.sqrt((dy - along * ey) ** 2 + (dx - along * ex) ** 2) - extent[:, :, 0] / 3
    distance = jnp.where(kind == 0, disc, jnp.where(kind == 1, rectangle, stroke))
    cover = jnp.clip(0.5 - distance, 0.0, 1.0)  # [n, shapes, 16, 16]

    def paint(canvas: jax.Array, layer: tuple[jax.Array, jax.Array]) -> tuple[jax.Array, None]:
        cover, level = layer
        return canvas * (1.0 - cover) + level * cover, None

    layers = (jnp.swapaxes(cover, 0, 1), jnp.swapaxes(level, 0, 1))
    canvas, _ = jax.lax.scan(paint, jnp.zeros((n, IMAGE_SIZE, IMAGE_SIZE)), layers)
    return canvas[..., None]


def _conv_init(key: jax.Array, size: int, n_in: int, n_out: int) -> dict[str, jax.Array]:
    """A size x size convolution: LeCun-normal kernel (HWIO), zero bias."""
    return {"w": jax.random.normal(key, (size, size, n_in, n_out)) / math.sqrt(size * size * n_in),
            "b": jnp.zeros(n_out)}


def _conv(layer: dict[str, jax.Array], x: jax.Array, stride: int = 1) -> jax.Array:
    out = jax.lax.conv_general_dilated(x, layer["w"], (stride, stride), "SAME",
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return out + layer["b"]


def _depth_to_space(x: jax.Array) -> jax.Array:
    """NHWC images [n, h, w, 4c] -> [n, 2h, 2w, c]: each pixel's channels become a 2x2 block
    (the pixel shuffle of a sub-pixel convolution, Shi et al., 2016)."""
    n, h, w, c = x.shape
    x = x.reshape(n, h, w, 2, 2, c // 4).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, 2 * h, 2 * w, c // 4)


def _conv_autoencoder(task: Task) -> Problem:
    """Encoder: 3x3 conv stride 2 (channels, 8x8) -> 3x3 conv stride 2 (2 x channels, 4x4) ->
    1x1 conv to LATENT_CHANNELS; decoder: two sub-pixel convolutions (learned stride-2
    upsampling, as a transposed convolution but three times cheaper than upsample-and-convolve
    on CPU): 3x3 conv (4 x channels, 4x4) -> pixel shuffle (channels, 8x8) -> 3x3 conv (4) ->
    pixel shuffle (1, 16x16); ReLUs between, a linear output. Mean squared reconstruction error.
    Training images are fresh every step; validation is a seed's fixed N_VALIDATION_IMAGES."""
    channels, shapes = task.get("channels"), task.get("shapes")
    batch_size = task.get("batch_size")
    layers = (("encode1", 3, 1, channels), ("encode2", 3, channels, 2 * channels),
              ("latent", 1, 2 * channels, LATENT_CHANNELS),
              ("decode1", 3, LATENT_CHANNELS, 4 * channels), ("decode2", 3, channels, 4))

    def init(key: jax.Array) -> dict[str, Any]:
        keys = jax.random.split(key, len(layers))
        return {name: _conv_init(k, size, n_in, n_out)
                for k, (name, size, n_in, n_out) in zip(keys, layers)}

    def reconstruct(params: dict[str, Any], images: jax.Array) -> jax.Array:
        h = jax.nn.relu(_conv(params["encode1"], images, 2))  # [n, 8, 8, c]
        h = jax.nn.relu(_conv(params["encode2"], h, 2))  # [n, 4, 4, 2c]
        code = _conv(params["latent"], h)  # [n, 4, 4, LATENT_CHANNELS]
        h = jax.nn.relu(_depth_to_space(_conv(params["decode1"], code)))  # [n, 8, 8, c]
        return _depth_to_space(_conv(params["decode2"], h))  # [n, 16, 16, 1]

    def loss(params: dict[str, Any], images: jax.Array) -> jax.Array:
        return jnp.mean((reconstruct(params, images) - images) ** 2)

    return Problem(
        init=init,
        data=lambda key: _canvases(key, N_VALIDATION_IMAGES, shapes),
        train_batch=lambda key, d: _canvases(key, batch_size, shapes),
        loss=loss,
        validation_loss=loss,
        horizon=task.get("horizon"))


# -- code_lm ---------------------------------------------------------------------------------


def _rms_norm(x: jax.Array, gain: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.mean(x ** 2, axis=-1, keepdims=True) + 1e-6) * gain


def _sinusoids(context: int, width: int) -> np.ndarray:
    """Fixed sinusoidal position codes [context, width] (Vaswani et al., 2017)."""
    position = np.arange(context)[:, None]
    frequency = np.exp(-math.log(10_000.0) * np.arange(0, width, 2) / width)
    codes = np.zeros((context, width), np.float32)
    codes[:, 0::2] = np.sin(position * frequency)
    codes[:, 1::2] = np.cos(position * frequency[:width // 2])
    return codes


def _code_lm(task: Task) -> Problem:
    """Two pre-RMSNorm transformer blocks (causal self-attention, a 4x-wide GELU MLP) over
    embeddings plus sinusoidal positions, a final RMSNorm and an untied dense readout,
    predicting the next character of standard-library source code. Training windows come from
    the first 1 - VALIDATION_FRACTION of the text; a seed's validation set is
    N_VALIDATION_SEQUENCES windows from the rest."""
    heads, head_dim = task.get("heads"), task.get("head_dim")
    context = task.get("context")
    width, vocab, blocks = heads * head_dim, len(datasets.VOCABULARY), 2
    mask = np.tril(np.ones((context, context), bool))
    positions = _sinusoids(context, width)

    def init(key: jax.Array) -> dict[str, Any]:
        k_embed, k_out, *k_blocks = jax.random.split(key, 2 + blocks)

        def block(key: jax.Array) -> dict[str, Any]:
            keys = jax.random.split(key, 4)
            return {"norm1": jnp.ones(width), "norm2": jnp.ones(width),
                    "qkv": lecun_dense_init(keys[0], width, 3 * width),
                    "attention_out": lecun_dense_init(keys[1], width, width),
                    "mlp_in": lecun_dense_init(keys[2], width, 4 * width),
                    "mlp_out": lecun_dense_init(keys[3], 4 * width, width)}

        return {"embed": jax.random.normal(k_embed, (vocab, width)) / math.sqrt(width),
                "blocks": [block(k) for k in k_blocks], "norm": jnp.ones(width),
                "readout": lecun_dense_init(k_out, width, vocab)}

    def apply_block(params: dict[str, Any], x: jax.Array) -> jax.Array:
        q, k, v = jnp.split(dense(params["qkv"], _rms_norm(x, params["norm1"])), 3, axis=-1)
        q, k, v = (a.reshape(a.shape[0], context, heads, head_dim) for a in (q, k, v))
        scores = jnp.einsum("nqhd,nkhd->nhqk", q, k) / math.sqrt(head_dim)
        weights = jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1)
        attended = jnp.einsum("nhqk,nkhd->nqhd", weights, v).reshape(x.shape)
        x = x + dense(params["attention_out"], attended)
        hidden = jax.nn.gelu(dense(params["mlp_in"], _rms_norm(x, params["norm2"])))
        return x + dense(params["mlp_out"], hidden)

    def logits(params: dict[str, Any], tokens: jax.Array) -> jax.Array:
        x = params["embed"][tokens] + positions  # [n, context, width]
        for block in params["blocks"]:
            x = apply_block(block, x)
        return dense(params["readout"], _rms_norm(x, params["norm"]))

    return language_model(datasets.python_source(), init, logits, task)


# -- matrix_completion -----------------------------------------------------------------------


def observed_entries(rows: int, cols: int) -> int:
    """How many of a rows x cols matrix's entries a matrix completion task trains on."""
    return max(1, round(OBSERVED_FRACTION * rows * cols))


def _matrix_completion(task: Task) -> Problem:
    """A rows x cols matrix A B^T / sqrt(true_rank) (A, B standard normal: entries of variance
    1), observed with Gaussian noise of standard deviation `noise` on a seed's random
    OBSERVED_FRACTION of its entries, fit by U V^T of rank `rank` (small random init) on
    minibatches of observed entries; the validation loss is the mean squared error on up to
    N_VALIDATION_ENTRIES other entries, noisy like the observed ones."""
    rows, cols, rank = task.get("rows"), task.get("cols"), task.get("rank")
    true_rank, noise, batch_size = task.get("true_rank"), task.get("noise"), task.get("batch_size")
    n_observed = observed_entries(rows, cols)
    n_validation = min(N_VALIDATION_ENTRIES, rows * cols - n_observed)

    def data(key: jax.Array) -> dict[str, Any]:
        k_a, k_b, k_order, k_noise = jax.random.split(key, 4)
        matrix = (jax.random.normal(k_a, (rows, true_rank))
                  @ jax.random.normal(k_b, (cols, true_rank)).T / math.sqrt(true_rank))
        order = jax.random.permutation(k_order, rows * cols)[:n_observed + n_validation]
        noisy = matrix.reshape(-1)[order] + noise * jax.random.normal(k_noise, order.shape)
        entries = (order // cols, order % cols, noisy)  # row, column, value
        return {"observed": tuple(a[:n_observed] for a in entries),
                "validation": tuple(a[n_observed:] for a in entries)}

    def init(key: jax.Array) -> dict[str, jax.Array]:
        k_u, k_v = jax.random.split(key)
        scale = 0.1  # small: the fit grows from near zero, as in implicit low-rank studies
        return {"u": scale * jax.random.normal(k_u, (rows, rank)),
                "v": scale * jax.random.normal(k_v, (cols, rank))}

    def train_batch(key: jax.Array, d: dict[str, Any]) -> tuple[jax.Array, ...]:
        index = jax.random.randint(key, (batch_size,), 0, n_observed)
        return tuple(a[index] for a in d["observed"])

    def loss(params: dict[str, jax.Array], entries: tuple[jax.Array, ...]) -> jax.Array:
        row, col, value = entries
        predicted = jnp.sum(params["u"][row] * params["v"][col], axis=-1)
        return jnp.mean((predicted - value) ** 2)

    return Problem(init=init, data=data, train_batch=train_batch, loss=loss,
                   validation_loss=lambda params, d: loss(params, d["validation"]),
                   horizon=task.get("horizon"))


# -- graph_regression ------------------------------------------------------------------------


def _random_graphs(key: jax.Array, n: int, nodes: int, features: int,
                   edge_prob: Any) -> tuple[jax.Array, jax.Array]:
    """`n` Erdős–Rényi graphs: node features [n, nodes, features], standard normal, and a
    symmetric 0/1 adjacency [n, nodes, nodes] without self-loops, each pair of nodes joined
    with probability `edge_prob` (which may be traced)."""
    k_features, k_edges = jax.random.split(key)
    x = jax.random.normal(k_features, (n, nodes, features))
    upper = jnp.triu(jax.random.uniform(k_edges, (n, nodes, nodes)) < edge_prob, k=1)
    return x, (upper | jnp.swapaxes(upper, 1, 2)).astype(jnp.float32)


def _normalised_adjacency(adjacency: jax.Array) -> jax.Array:
    """D^-1/2 (A + I) D^-1/2, D the degrees of A + I: a graph convolution's propagation
    (Kipf & Welling, 2017), over the last two axes."""
    with_loops = adjacency + jnp.eye(adjacency.shape[-1])
    scale = jax.lax.rsqrt(jnp.sum(with_loops, axis=-1))
    return with_loops * scale[..., :, None] * scale[..., None, :]


def _teacher(teacher: dict[str, jax.Array], x: jax.Array, propagate: jax.Array) -> jax.Array:
    """The teacher's clean targets [n, nodes]: two bias-free graph convolutions, tanh between."""
    hidden = jnp.tanh(propagate @ x @ teacher["hidden"])
    return (propagate @ hidden @ teacher["out"])[..., 0]


def _graph_regression(task: Task) -> Problem:
    """Two graph convolutions (H' = tanh(Â H W + b), Â the normalised adjacency with
    self-loops) of `width` features and a per-node linear readout, fit by mean squared error
    over all nodes to the targets of a seed's random teacher GCN (features -> TEACHER_WIDTH ->
    1, scaled so its pre-activations and clean targets have unit variance on the validation
    graphs) plus Gaussian noise of standard deviation `noise`. Training graphs are fresh every
    step; validation is a seed's fixed N_VALIDATION_GRAPHS, with noisy targets."""
    nodes, features, width = task.get("nodes"), task.get("features"), task.get("width")
    edge_prob, noise, batch_size = task.get("edge_prob"), task.get("noise"), task.get("batch_size")

    def drawn(key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
        x, adjacency = _random_graphs(key, n, nodes, features, edge_prob)
        return x, _normalised_adjacency(adjacency)

    def labelled(key: jax.Array, teacher: dict[str, jax.Array], x: jax.Array,
                 propagate: jax.Array) -> tuple[jax.Array, ...]:
        targets = _teacher(teacher, x, propagate) + noise * jax.random.normal(key, x.shape[:2])
        return x, propagate, targets

    def data(key: jax.Array) -> dict[str, Any]:
        k_hidden, k_out, k_graphs, k_noise = jax.random.split(key, 4)
        x, propagate = drawn(k_graphs, N_VALIDATION_GRAPHS)
        hidden = jax.random.normal(k_hidden, (features, TEACHER_WIDTH))
        hidden = hidden / jnp.std(propagate @ x @ hidden)  # tanh bends, not saturated
        out = jax.random.normal(k_out, (TEACHER_WIDTH, 1))
        out = out / jnp.std(_teacher({"hidden": hidden, "out": out}, x, propagate))
        teacher = {"hidden": hidden, "out": out}
        return {"teacher": teacher, "validation": labelled(k_noise, teacher, x, propagate)}

    def train_batch(key: jax.Array, d: dict[str, Any]) -> tuple[jax.Array, ...]:
        k_graphs, k_noise = jax.random.split(key)
        return labelled(k_noise, d["teacher"], *drawn(k_graphs, batch_size))

    def init(key: jax.Array) -> dict[str, Any]:
        k_1, k_2, k_readout = jax.random.split(key, 3)
        return {"conv1": lecun_dense_init(k_1, features, width),
                "conv2": lecun_dense_init(k_2, width, width),
                "readout": lecun_dense_init(k_readout, width, 1)}

    def loss(params: dict[str, Any], batch: tuple[jax.Array, ...]) -> jax.Array:
        x, propagate, targets = batch
        h = x
        for layer in (params["conv1"], params["conv2"]):
            h = jnp.tanh(propagate @ (h @ layer["w"]) + layer["b"])
        predicted = dense(params["readout"], h)[..., 0]
        return jnp.mean((predicted - targets) ** 2)

    return Problem(init=init, data=data, train_batch=train_batch, loss=loss,
                   validation_loss=lambda params, d: loss(params, d["validation"]),
                   horizon=task.get("horizon"))


for _family in (
    Family("conv_autoencoder",
           ranges={"channels": Range(2, 32, integer=True, log=True),
                   "shapes": Range(1, 6, integer=True), "batch_size": BATCH_SIZE,
                   "horizon": HORIZON},
           defaults={"channels": 8, "shapes": 3, "batch_size": 32, "horizon": 600},
           build=_conv_autoencoder),
    Family("code_lm",
           ranges={"heads": Range(1, 8, integer=True), "head_dim": Range(4, 64, integer=True),
                   "context": Range(4, 128, integer=True, log=True),
                   "batch_size": BATCH_SIZE, "horizon": HORIZON},
           defaults={"heads": 2, "head_dim": 16, "context": 32, "batch_size": 16,
                     "horizon": 600},
           build=_code_lm),
    Family("matrix_completion",
           ranges={"rows": Range(8, 512, integer=True, log=True),
                   "cols": Range(8, 512, integer=True, log=True),
                   "rank": Range(1, 64, integer=True, log=True),
                   "true_rank": Range(1, 16, integer=True),
                   "noise": Range(0.0, 1.0),
                   "batch_size": Range(8, 1024, integer=True, log=True),
                   "horizon": Range(50, 20000, integer=True, log=True)},
           defaults={"rows": 64, "cols": 48, "rank": 8, "true_rank": 3, "noise": 0.1,
                     "batch_size": 64, "horizon": 3000},
           build=_matrix_completion),
    Family("graph_regression",
           ranges={"nodes": Range(8, 128, integer=True, log=True),
                   "features": Range(2, 32, integer=True),
                   "width": Range(4, 128, integer=True, log=True),
                   "edge_prob": Range(0.02, 0.5), "noise": Range(0.0, 1.0),
                   "batch_size": BATCH_SIZE, "horizon": HORIZON},
           defaults={"nodes": 32, "features": 8, "width": 32, "edge_prob": 0.15, "noise": 0.1,
                     "batch_size": 16, "horizon": 1000},
           build=_graph_regression),
):
    register(_family)
