"""Does a winner's verdict hold on training problems this repository never trains or validates on?

Eight problems written here, none a family of discovery/tasks and none on its data: an LSTM
on the adding problem, a 1-D CNN telling noisy frequencies apart, a 2-D CNN on drawn shapes,
a one-layer transformer counting tokens, a deep narrow tanh MLP regressing a random teacher, a
softmax regression, a VAE on random bars, a wide MLP on spirals at batch size 8. Each
optimizer -- a run's candidate or a DSL program file exported as optax (the module `disco
export --format optax` writes), an optax module of the user's (`optax:FILE`, e.g.
`muon_optax.py`), Adam, AdamW with weight decay 1e-2 -- trains every problem at
each learning rate of a grid on 3 seeds; its rate is tuned per problem on a validation split
(lowest mean loss over the seeds) and scored by its test loss there, as a user would tune it.
A rule's score on a problem is the mean over seeds of log(baseline test loss / its test loss),
seeds paired (same initialisation and batches); the baseline is Adam, AdamW, or per problem
the better of the two, and the verdict is the project's (`verdict.judge`, each problem one
result). A run that turns non-finite counts as the loss at initialisation.

    python docs/experiments/outside_check.py runs/flagship10:64 \
        docs/experiments/programs/cautious_adamw.py [--schedule cosine] [--out report.md]

What it does not establish: eight small problems at one horizon and batch size each; a rule
that wins here can still lose on larger models or longer training.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from disco_rules.discovery.selection import standard_error
from disco_rules.discovery.transfer_report import provenance
from disco_rules.discovery.verdict import judge, with_error

LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1)
SEEDS = (0, 1, 2)
DATA_SEED = 12345
BASELINES = ("adam", "adamw")
Data = tuple[tuple[Any, Any], ...]  # train, validation, test as (x, y) arrays


@dataclass(frozen=True)
class Problem:
    """A training problem: its data (train, validation, test), a parameter initialiser, a loss
    of (params, x, y, key), and the batch size and number of steps it trains for."""

    name: str
    what: str
    data: Callable[[np.random.Generator], Data]
    init: Callable[[jax.Array], Any]
    loss: Callable[[Any, jax.Array, jax.Array, jax.Array], jax.Array]
    batch: int
    steps: int
    # False for convolutions: vmapped over runs, each kernel becomes a grouped convolution,
    # which XLA on CPU runs far slower than the runs one after another
    vmapped: bool = True


def _dense(key: jax.Array, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    return {"w": jax.random.normal(key, (fan_in, fan_out)) / math.sqrt(fan_in),
            "b": jnp.zeros(fan_out)}


def _apply(layer: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ layer["w"] + layer["b"]


def _split(x: np.ndarray, y: np.ndarray, n_val: int = 1024, n_test: int = 1024) -> Data:
    n = len(x) - n_val - n_test
    return ((x[:n], y[:n]), (x[n:n + n_val], y[n:n + n_val]), (x[n + n_val:], y[n + n_val:]))


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


# -- an LSTM on the adding problem (Hochreiter & Schmidhuber 1997) -------------------------

def _adding_data(rng: np.random.Generator, n: int = 6144, length: int = 20) -> Data:
    values = rng.uniform(size=(n, length))
    marks = np.zeros((n, length))
    marks[np.arange(n), rng.integers(0, length // 2, n)] = 1.0
    marks[np.arange(n), rng.integers(length // 2, length, n)] = 1.0
    x = np.stack([values, marks], axis=-1).astype(np.float32)
    return _split(x, (values * marks).sum(axis=1).astype(np.float32))


def _lstm_init(key: jax.Array, hidden: int = 32) -> Any:
    k1, k2, k3 = jax.random.split(key, 3)
    cell = _dense(k1, 2 + hidden, 4 * hidden)
    cell["b"] = cell["b"].at[hidden:2 * hidden].set(1.0)  # forget gate open
    return {"cell": cell, "out": _dense(k3, hidden, 1)}


def _lstm_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    hidden = params["out"]["w"].shape[0]

    def step(carry: tuple[jax.Array, jax.Array], xt: jax.Array) -> tuple[Any, None]:
        h, c = carry
        i, f, g, o = jnp.split(_apply(params["cell"], jnp.concatenate([xt, h], -1)), 4, -1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return (jax.nn.sigmoid(o) * jnp.tanh(c), c), None

    zeros = jnp.zeros((x.shape[0], hidden))
    (h, _), _ = jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))
    return jnp.mean((_apply(params["out"], h)[:, 0] - y) ** 2)


# -- a 1-D CNN telling which of four frequencies a noisy signal carries ---------------------

def _frequency_data(rng: np.random.Generator, n: int = 6144, length: int = 64) -> Data:
    labels = rng.integers(0, 4, n)
    cycles = np.array([2.0, 3.0, 5.0, 7.0])[labels]
    t = np.arange(length) / length
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    x = np.sin(2 * np.pi * cycles[:, None] * t + phase) + 1.5 * rng.normal(size=(n, length))
    return _split(x[..., None].astype(np.float32), labels.astype(np.int32))


def _conv1d_init(key: jax.Array) -> Any:
    k1, k2, k3 = jax.random.split(key, 3)
    return {"c1": jax.random.normal(k1, (7, 1, 8)) / math.sqrt(7),
            "c2": jax.random.normal(k2, (5, 8, 16)) / math.sqrt(40),
            "out": _dense(k3, 16, 4)}


def _conv1d_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    dims = ("NWC", "WIO", "NWC")
    h = jax.nn.relu(jax.lax.conv_general_dilated(x, params["c1"], (1,), "SAME",
                                                 dimension_numbers=dims))
    h = jax.nn.relu(jax.lax.conv_general_dilated(h, params["c2"], (2,), "SAME",
                                                 dimension_numbers=dims))
    return _cross_entropy(_apply(params["out"], h.mean(axis=1)), y)


# -- a 2-D CNN on drawn shapes -------------------------------------------------------------

def _shape_data(rng: np.random.Generator, n: int = 6144, size: int = 12) -> Data:
    images = np.zeros((n, size, size), np.float32)
    labels = rng.integers(0, 4, n)
    yy, xx = np.mgrid[:size, :size]
    for k in range(n):
        r, c, s = rng.integers(2, size - 6), rng.integers(2, size - 6), rng.integers(3, 5)
        if labels[k] == 0:  # hollow square
            images[k, r:r + s, c:c + s] = 1.0
            images[k, r + 1:r + s - 1, c + 1:c + s - 1] = 0.0
        elif labels[k] == 1:  # plus sign
            images[k, r + s // 2, c:c + s] = 1.0
            images[k, r:r + s, c + s // 2] = 1.0
        elif labels[k] == 2:  # diagonal
            images[k, r + np.arange(s), c + np.arange(s)] = 1.0
        else:  # disc
            images[k] = ((yy - r - s / 2) ** 2 + (xx - c - s / 2) ** 2 <= (s / 2) ** 2)
    images += 0.4 * rng.normal(size=images.shape).astype(np.float32)
    return _split(images[..., None], labels.astype(np.int32))


def _conv2d_init(key: jax.Array) -> Any:
    k1, k2, k3 = jax.random.split(key, 3)
    return {"c1": jax.random.normal(k1, (3, 3, 1, 8)) / 3.0,
            "c2": jax.random.normal(k2, (3, 3, 8, 16)) / math.sqrt(72),
            "out": _dense(k3, 16 * 36, 4)}


def _conv2d_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    dims = ("NHWC", "HWIO", "NHWC")
    h = jax.nn.relu(jax.lax.conv_general_dilated(x, params["c1"], (1, 1), "SAME",
                                                 dimension_numbers=dims))
    h = jax.nn.relu(jax.lax.conv_general_dilated(h, params["c2"], (2, 2), "SAME",
                                                 dimension_numbers=dims))
    return _cross_entropy(_apply(params["out"], h.reshape(h.shape[0], -1)), y)


# -- a one-layer transformer counting each token's occurrences -----------------------------

def _count_data(rng: np.random.Generator, n: int = 6144, length: int = 10,
                vocab: int = 6) -> Data:
    tokens = rng.integers(0, vocab, (n, length))
    counts = (tokens[:, :, None] == tokens[:, None, :]).sum(-1) - 1  # 0 .. length - 1
    return _split(tokens.astype(np.int32), counts.astype(np.int32))


def _transformer_init(key: jax.Array, vocab: int = 6, d: int = 24, length: int = 10) -> Any:
    keys = jax.random.split(key, 8)
    return {"embed": jax.random.normal(keys[0], (vocab, d)) * 0.5,
            "pos": jax.random.normal(keys[1], (length, d)) * 0.1,
            "q": _dense(keys[2], d, d), "k": _dense(keys[3], d, d), "v": _dense(keys[4], d, d),
            "mlp1": _dense(keys[5], d, 2 * d), "mlp2": _dense(keys[6], 2 * d, d),
            "out": _dense(keys[7], d, length)}


def _norm(x: jax.Array) -> jax.Array:
    return (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-5)


def _transformer_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    h = params["embed"][x] + params["pos"]
    a = _norm(h)
    q, k, v = (_apply(params[n], a) for n in ("q", "k", "v"))
    weights = jax.nn.softmax(q @ jnp.swapaxes(k, -1, -2) / math.sqrt(q.shape[-1]), axis=-1)
    h = h + weights @ v
    h = h + _apply(params["mlp2"], jax.nn.gelu(_apply(params["mlp1"], _norm(h))))
    return _cross_entropy(_apply(params["out"], _norm(h)), y)


# -- a deep narrow tanh MLP regressing a random teacher ------------------------------------

def _teacher_data(rng: np.random.Generator, n: int = 10240, dim: int = 8) -> Data:
    x = rng.normal(size=(n, dim)).astype(np.float32)
    w1, w2 = rng.normal(size=(dim, 64)) / math.sqrt(dim), rng.normal(size=(64, 64)) / 8.0
    y = np.tanh(np.tanh(x @ w1) @ w2) @ rng.normal(size=64) / 4.0
    return _split(x, (y + 0.05 * rng.normal(size=n)).astype(np.float32))


def _deep_init(key: jax.Array, depth: int = 6, width: int = 32) -> Any:
    keys = jax.random.split(key, depth + 1)
    sizes = [8] + [width] * depth
    return {"layers": [_dense(keys[i], sizes[i], sizes[i + 1]) for i in range(depth)],
            "out": _dense(keys[depth], width, 1)}


def _deep_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    for layer in params["layers"]:
        x = jnp.tanh(_apply(layer, x))
    return jnp.mean((_apply(params["out"], x)[:, 0] - y) ** 2)


# -- softmax regression on a Gaussian mixture (convex) -------------------------------------

def _mixture_data(rng: np.random.Generator, n: int = 10240, dim: int = 50,
                  classes: int = 10) -> Data:
    means = 0.4 * rng.normal(size=(classes, dim))
    labels = rng.integers(0, classes, n)
    x = means[labels] + rng.normal(size=(n, dim))
    return _split(x.astype(np.float32), labels.astype(np.int32))


def _linear_init(key: jax.Array) -> Any:
    return {"out": _dense(key, 50, 10)}


def _linear_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    return _cross_entropy(_apply(params["out"], x), y)


# -- a VAE on random bars (Bernoulli likelihood, 4 latents) --------------------------------

def _bars_data(rng: np.random.Generator, n: int = 6144, size: int = 8) -> Data:
    rows, cols = rng.uniform(size=(n, size)) < 0.15, rng.uniform(size=(n, size)) < 0.15
    images = rows[:, :, None] | cols[:, None, :]
    images ^= rng.uniform(size=images.shape) < 0.02
    x = images.reshape(n, -1).astype(np.float32)
    return _split(x, x)


def _vae_init(key: jax.Array, latent: int = 4, hidden: int = 64) -> Any:
    keys = jax.random.split(key, 4)
    return {"enc": _dense(keys[0], 64, hidden), "stats": _dense(keys[1], hidden, 2 * latent),
            "dec": _dense(keys[2], latent, hidden), "logits": _dense(keys[3], hidden, 64)}


def _vae_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    mean, log_var = jnp.split(_apply(params["stats"], jax.nn.relu(_apply(params["enc"], x))),
                              2, -1)
    z = mean + jnp.exp(0.5 * log_var) * jax.random.normal(key, mean.shape)
    logits = _apply(params["logits"], jax.nn.relu(_apply(params["dec"], z)))
    reconstruction = optax.sigmoid_binary_cross_entropy(logits, y).sum(-1)
    kl = 0.5 * (jnp.exp(log_var) + mean ** 2 - 1.0 - log_var).sum(-1)
    return jnp.mean(reconstruction + kl)


# -- a wide MLP on three spirals at batch size 8 -------------------------------------------

def _spiral_data(rng: np.random.Generator, n: int = 6144) -> Data:
    labels = rng.integers(0, 3, n)
    radius = rng.uniform(0.05, 1.0, n)
    angle = 3.0 * radius + labels * 2 * np.pi / 3
    x = np.stack([radius * np.cos(angle), radius * np.sin(angle)], -1)
    x += 0.05 * rng.normal(size=x.shape)
    return _split(x.astype(np.float32), labels.astype(np.int32))


def _wide_init(key: jax.Array, width: int = 256) -> Any:
    keys = jax.random.split(key, 3)
    return {"h1": _dense(keys[0], 2, width), "h2": _dense(keys[1], width, width),
            "out": _dense(keys[2], width, 3)}


def _wide_loss(params: Any, x: jax.Array, y: jax.Array, key: jax.Array) -> jax.Array:
    h = jax.nn.relu(_apply(params["h2"], jax.nn.relu(_apply(params["h1"], x))))
    return _cross_entropy(_apply(params["out"], h), y)


PROBLEMS = (
    Problem("lstm_adding", "LSTM (32) on the adding problem, 20 steps, MSE",
            _adding_data, _lstm_init, _lstm_loss, 32, 1500),
    Problem("conv1d_frequency", "1-D CNN telling 4 frequencies in noise apart",
            _frequency_data, _conv1d_init, _conv1d_loss, 64, 800, vmapped=False),
    Problem("conv2d_shapes", "2-D CNN on noisy drawn shapes, 4 classes",
            _shape_data, _conv2d_init, _conv2d_loss, 32, 600, vmapped=False),
    Problem("transformer_count", "1-layer transformer counting tokens, 10 classes per position",
            _count_data, _transformer_init, _transformer_loss, 32, 1500),
    Problem("deep_regression", "6-layer width-32 tanh MLP regressing a random teacher",
            _teacher_data, _deep_init, _deep_loss, 128, 3000),
    Problem("softmax_regression", "softmax regression, 10-class Gaussian mixture in 50-d",
            _mixture_data, _linear_init, _linear_loss, 256, 400),
    Problem("vae_bars", "VAE (4 latents) on random 8x8 bars, negative ELBO",
            _bars_data, _vae_init, _vae_loss, 64, 1000),
    Problem("wide_mlp_spirals", "2x256 ReLU MLP on three spirals",
            _spiral_data, _wide_init, _wide_loss, 8, 800),
)

Optimizer = Callable[[Any, int], optax.GradientTransformation]  # (lr or schedule, steps)


def problem_data(problem: Problem) -> Data:
    """The problem's train, validation and test sets, the same for every optimizer."""
    return tuple(tuple(jnp.asarray(a) for a in pair)
                 for pair in problem.data(np.random.default_rng(DATA_SEED)))


def train(problem: Problem, data: Data, make: Optimizer,
          schedule: str) -> tuple[np.ndarray, np.ndarray]:
    """(validation, test) final losses, shape [len(LRS), len(SEEDS)]; non-finite ones are
    the loss at initialisation."""
    (x, y), held_out = data[0], data[1:]
    eval_key = jax.random.PRNGKey(DATA_SEED)

    def evaluate(params: Any) -> jax.Array:
        return jnp.stack([problem.loss(params, a, b, eval_key) for a, b in held_out])

    def one(lr: jax.Array, seed: jax.Array) -> jax.Array:
        init_key, batch_key = jax.random.split(jax.random.PRNGKey(seed))
        params = problem.init(init_key)
        rate = lr if schedule == "constant" else optax.cosine_decay_schedule(lr, problem.steps)
        opt = make(rate, problem.steps)

        def step(carry: Any, key: jax.Array) -> tuple[Any, None]:
            params, state = carry
            pick, noise = jax.random.split(key)
            index = jax.random.randint(pick, (problem.batch,), 0, x.shape[0])
            grads = jax.grad(problem.loss)(params, x[index], y[index], noise)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        start = evaluate(params)
        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)),
                                      jax.random.split(batch_key, problem.steps))
        end = evaluate(params)
        return jnp.where(jnp.isfinite(end), end, start)

    lrs, seeds = jnp.asarray(LRS), jnp.asarray(SEEDS)
    if problem.vmapped:
        losses = jax.jit(jax.vmap(jax.vmap(one, (None, 0)), (0, None)))(lrs, seeds)
    else:  # one run after another, each compiled once
        pairs = [a.ravel() for a in jnp.meshgrid(lrs, seeds, indexing="ij")]
        losses = jax.jit(lambda a: jax.lax.map(lambda pair: one(*pair), a))(pairs)
    losses = np.asarray(losses).reshape(len(LRS), len(SEEDS), 2)  # [lr, seed, 2]
    return losses[..., 0], losses[..., 1]


@dataclass(frozen=True)
class Tuned:
    """An optimizer on a problem at its tuned learning rate: the rate and each seed's test
    loss."""

    lr: float
    test: np.ndarray


def tuned(problem: Problem, data: Data, make: Optimizer, schedule: str) -> Tuned:
    """The optimizer at the rate of its lowest mean validation loss over the seeds."""
    validation, test = train(problem, data, make, schedule)
    best = int(np.argmin(validation.mean(axis=1)))
    return Tuned(LRS[best], test[best])


def load_rule(spec: str) -> tuple[str, Optimizer]:
    """A rule named by RUN:ID, a DSL program file, or optax:FILE (a Python module defining
    `optimizer(rate, steps)`, for optimizers the DSL cannot write), as (label, optax
    factory)."""
    from disco_rules.export import export

    if spec.startswith("optax:"):
        path = Path(spec.removeprefix("optax:"))
        source, label = path.read_text(), path.stem
    elif ":" in spec and not spec.endswith(".py"):
        from disco_rules.api import open_run

        run_dir, cid = spec.rsplit(":", 1)
        source, label = open_run(run_dir).candidate(int(cid)).export("optax"), spec
    else:
        from disco_rules.dsl.parser import parse

        source = export(parse(Path(spec).read_text()), "optax", name=Path(spec).stem)
        label = Path(spec).stem
    namespace: dict[str, Any] = {}
    exec(compile(source, f"<optax export of {spec}>", "exec"), namespace)
    return label, namespace["optimizer"]


def references() -> dict[str, Optimizer]:
    """Adam and AdamW (weight decay 1e-2) as optax has them."""
    return {"adam": lambda rate, steps: optax.adam(rate),
            "adamw": lambda rate, steps: optax.adamw(rate, weight_decay=1e-2)}


def report(problems: Sequence[Problem], results: dict[str, dict[str, Tuned]],
           rules: Sequence[str], schedule: str) -> str:
    """The markdown report: the problems, per problem each optimizer's tuned lr and mean test
    loss, each rule's score against Adam, AdamW and the better of them, and a verdict per
    rule."""
    names = [*BASELINES, *rules]
    lines = [f"schedule: {schedule}; learning rates {', '.join(f'{lr:g}' for lr in LRS)}; "
             f"seeds {len(SEEDS)}; score = mean over seeds of log(baseline loss / rule loss)", "",
             *(f"- {p.name}: {p.what}, batch size {p.batch}, {p.steps} steps" for p in problems),
             "", "| problem | " + " | ".join(f"{n} (lr, loss)" for n in names) + " |",
             "|---|" + "---|" * len(names)]
    for p in problems:
        cells = [f"{results[p.name][n].lr:g}, {results[p.name][n].test.mean():.4g}"
                 for n in names]
        lines.append(f"| {p.name} | " + " | ".join(cells) + " |")
    for rule in rules:
        lines += ["", f"**{rule}**", "",
                  "| problem (± SE over seeds) | vs Adam | vs AdamW | vs the better |",
                  "|---|---|---|---|"]
        scores = {b: [] for b in (*BASELINES, "best")}
        for p in problems:
            r = results[p.name]
            best = min(BASELINES, key=lambda b: r[b].test.mean())
            paired = {b: np.log(r[b].test / r[rule].test) for b in BASELINES}
            paired["best"] = paired[best]
            for b, values in paired.items():
                scores[b].append(float(values.mean()))
            cells = [_mean_se(paired[b]) for b in (*BASELINES, "best")]
            lines.append(f"| {p.name} | {cells[0]} | {cells[1]} | {cells[2]} ({best}) |")
        lines.append("| **mean ± SE** | " + " | ".join(
            _mean_se(scores[b]) for b in (*BASELINES, "best")) + " |")
        verdict = judge({p.name: [v] for p, v in zip(problems, scores["best"])})
        lines += ["", f"verdict against the better of Adam and AdamW per problem: {rule} "
                  f"{verdict.kind} ({_mean_se(scores['best'])}; ahead on "
                  f"{verdict.families_ahead} of {len(problems)} problems, worst "
                  f"{min(scores['best']):+.3f})"]
    return "\n".join(lines) + "\n"


def _mean_se(values: Sequence[float]) -> str:
    return with_error(float(np.mean(values)), standard_error(values), len(values))


def main(argv: Sequence[str] | None = None) -> None:
    """Tune and score every rule and reference on every problem; print (and write) the
    report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rules", nargs="+", help="RUN:ID, a DSL program file or optax:FILE")
    parser.add_argument("--schedule", choices=("constant", "cosine"), default="constant")
    parser.add_argument("--problems", nargs="*", help="only these problems (by name)")
    parser.add_argument("--out", help="also write the report to this file, and each "
                        "optimizer's tuned lr and test losses beside it (.json)")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    made = provenance(argv, ("python", "docs/experiments/outside_check.py"))  # before a long run
    problems = [p for p in PROBLEMS if not args.problems or p.name in args.problems]
    optimizers = references()
    labels = []
    for spec in args.rules:
        label, make = load_rule(spec)
        optimizers[label] = make
        labels.append(label)
    results: dict[str, dict[str, Tuned]] = {}
    for p in problems:
        start = time.perf_counter()
        data = problem_data(p)
        results[p.name] = {n: tuned(p, data, make, args.schedule)
                           for n, make in optimizers.items()}
        print(f"{p.name}: {time.perf_counter() - start:.0f} s", flush=True)
    text = made + "\n\n" + report(problems, results, labels, args.schedule)
    print(text)
    if args.out:
        Path(args.out).write_text(text)
        Path(args.out).with_suffix(".json").write_text(json.dumps(
            {p: {n: {"lr": t.lr, "test": t.test.tolist()} for n, t in r.items()}
             for p, r in results.items()}, indent=1))


if __name__ == "__main__":
    main()
