"""Task families: the small training problems optimizer programs are scored on, and the
gymnax environments whose agents score learned objectives.

Like gymnax environments, a task is explicit parameters (`Task`, a level of a `Family`) and a
`Problem` of pure functions of PRNG keys (or, for RL families, an `Environment`: a gymnax id,
its `EnvParams` and the training horizon). Parameters that fix array shapes (widths, depth,
sizes, horizon) are Python ints or strings: constants of the compiled training loop. The float
ones (noise, condition number) can be traced values instead (`Task.build(floats)`), so the
levels of one shape (`Task.shape`) share one compiled loop.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

N_VALIDATION = 256  # held-out examples of every dataset-based family
N_TRAIN = 256  # fixed training set of the classification family


class Problem(NamedTuple):
    """One task as pure functions: the inner training loop needs nothing else."""

    init: Callable[[jax.Array], Any]  # key -> initial parameter pytree
    data: Callable[[jax.Array], Any]  # key -> the fixed dataset / teacher of one seed
    train_batch: Callable[[jax.Array, Any], Any]  # (key, data) -> minibatch
    loss: Callable[[Any, Any], jax.Array]  # (params, batch) -> scalar training loss
    validation_loss: Callable[[Any, Any], jax.Array]  # (params, data) -> held-out loss
    horizon: int  # training steps


class Environment(NamedTuple):
    """One RL task: a gymnax environment, its parameters (a level) and the agent's horizon."""

    name: str  # gymnax id, e.g. "CartPole-v1"
    params: Any  # the environment's EnvParams; traced by the training loop, not compiled in
    total_timesteps: int


@dataclass(frozen=True)
class Range:
    """Values `low..high` (inclusive) of an int or float parameter; `log`: sampled
    log-uniformly, for scale parameters."""

    low: float
    high: float
    integer: bool = False
    log: bool = False

    def check(self, name: str, value: object) -> int | float:
        """`value` as an int or float; ValueError if it has the wrong type or is out of range."""
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ValueError(f"{name} must be {'an int' if self.integer else 'a number'}, "
                             f"got {value!r}")
        number = int(value) if self.integer else float(value)
        if not self.low <= number <= self.high:  # also rejects NaN
            raise ValueError(f"{name}={number!r} is outside its range "
                             f"[{self.low!r}, {self.high!r}]")
        return number

    def sample(self, rng: np.random.Generator) -> int | float:
        """A random value in the range; floats are rounded to 3 significant digits so that
        sampled task keys stay readable."""
        if self.integer and not self.log:
            return int(rng.integers(self.low, self.high + 1))
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        value = round(value) if self.integer else float(f"{value:.3g}")
        return type(value)(min(max(value, self.low), self.high))


@dataclass(frozen=True)
class Choice:
    """A categorical parameter: one of `options`."""

    options: tuple[str, ...]

    def check(self, name: str, value: object) -> str:
        if value not in self.options:
            raise ValueError(f"{name}={value!r} is not one of {', '.join(self.options)}")
        return str(value)

    def sample(self, rng: np.random.Generator) -> str:
        return self.options[int(rng.integers(len(self.options)))]


@dataclass(frozen=True)
class Family:
    """A task family: parameter ranges, their defaults and how to build a task's Problem."""

    name: str
    ranges: Mapping[str, Range | Choice]
    defaults: Mapping[str, object]
    build: Callable[["Task"], Problem | Environment]
    kind: str = "optimizer"  # "optimizer": build gives a Problem; "rl": an Environment

    def complete(self, params: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
        """All parameters, sorted by name: `params` over the defaults, each checked."""
        unknown = sorted(set(params) - set(self.ranges))
        if unknown:
            raise ValueError(f"task family {self.name!r} has no parameter {unknown[0]!r}; "
                             f"valid parameters: {', '.join(sorted(self.ranges))}")
        merged = {**self.defaults, **params}
        return tuple((name, self.ranges[name].check(name, merged[name]))
                     for name in sorted(merged))

    def sample(self, rng: np.random.Generator, **fixed: object) -> Task:
        """A random level: every parameter not in `fixed` drawn from its range."""
        drawn = {name: self.ranges[name].sample(rng) for name in sorted(self.ranges)}
        return Task.make(self.name, **{**drawn, **fixed})


@dataclass(frozen=True)
class Task:
    """A family and a full, checked, sorted set of its parameters; hashable, picklable."""

    family: str
    params: tuple[tuple[str, object], ...]

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown task family {self.family!r}; "
                             f"valid families: {', '.join(sorted(FAMILIES))}")
        object.__setattr__(self, "params", FAMILIES[self.family].complete(dict(self.params)))

    @classmethod
    def make(cls, family: str, **params: object) -> Task:
        """The task of `family` with `params` over its defaults; ValueError names a bad one."""
        return cls(family, tuple(params.items()))

    def get(self, name: str) -> Any:
        """The value of parameter `name`."""
        return dict(self.params)[name]

    @property
    def key(self) -> str:
        """A stable readable identity, e.g. `quadratic(condition_number=100.0,dim=16,...)`."""
        return f"{self.family}({','.join(f'{n}={v}' for n, v in self.params)})"

    @property
    def kind(self) -> str:
        """"optimizer" (build gives a Problem) or "rl" (build gives an Environment)."""
        return FAMILIES[self.family].kind

    @property
    def floats(self) -> dict[str, float]:
        """The float parameters (noise, condition number, ...): they fix no array shape."""
        ranges = FAMILIES[self.family].ranges
        return {name: value for name, value in self.params
                if isinstance(ranges[name], Range) and not ranges[name].integer}

    @property
    def shape(self) -> tuple[str, tuple[tuple[str, object], ...]]:
        """The family and the parameters that are not floats: tasks of one shape differ only
        in values a compiled training loop can take as arguments."""
        floats = self.floats
        return self.family, tuple((n, v) for n, v in self.params if n not in floats)

    def build(self, floats: Mapping[str, Any] | None = None) -> Problem | Environment:
        """This task's pure functions (or environment), from its family; `floats` (e.g. traced
        arrays) replaces the values of the float parameters."""
        return FAMILIES[self.family].build(self if floats is None else _Values(self, floats))


@dataclass(frozen=True)
class _Values:
    """A task seen by its family's builder with some parameter values replaced (traced)."""

    task: Task
    values: Mapping[str, Any]

    def get(self, name: str) -> Any:
        return self.values[name] if name in self.values else self.task.get(name)


# -- networks -------------------------------------------------------------------------------


def _dense_init(key: jax.Array, fan_in: int, fan_out: int) -> dict[str, jax.Array]:
    """LeCun-normal weights, zero bias."""
    return {"w": jax.random.normal(key, (fan_in, fan_out)) / math.sqrt(fan_in),
            "b": jnp.zeros(fan_out)}


def _mlp_init(key: jax.Array, sizes: list[int]) -> list[dict[str, jax.Array]]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [_dense_init(k, a, b) for k, a, b in zip(keys, sizes[:-1], sizes[1:])]


def _mlp_apply(layers: list[dict[str, jax.Array]], x: jax.Array,
               activation: Callable[[jax.Array], jax.Array]) -> jax.Array:
    for layer in layers[:-1]:
        x = activation(x @ layer["w"] + layer["b"])
    return x @ layers[-1]["w"] + layers[-1]["b"]


def _mean_squared_error(prediction: jax.Array, target: jax.Array) -> jax.Array:
    return jnp.mean((prediction - target) ** 2)


def _cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
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
        y = _mlp_apply(teacher, x, jnp.tanh) + noise * jax.random.normal(k_noise, (n, 1))
        return x, y

    def data(key: jax.Array) -> dict[str, Any]:
        k_teacher, k_val = jax.random.split(key)
        teacher = _mlp_init(k_teacher, sizes)
        return {"teacher": teacher, "validation": examples(k_val, teacher, N_VALIDATION)}

    def loss(params: Any, batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        x, y = batch
        return _mean_squared_error(_mlp_apply(params, x, jnp.tanh), y)

    return Problem(
        init=lambda key: _mlp_init(key, sizes),
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
        return _cross_entropy(_mlp_apply(params, x, jax.nn.relu), y)

    return Problem(
        init=lambda key: _mlp_init(key, sizes),
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
        return {"input": _dense_init(k_in, 2, width),
                "recurrent": jax.random.normal(k_rec, (width, width)) / math.sqrt(width),
                "output": _dense_init(k_out, width, 1)}

    def predict(params: dict[str, Any], inputs: jax.Array) -> jax.Array:
        def cell(hidden: jax.Array, x: jax.Array) -> tuple[jax.Array, None]:
            pre = x @ params["input"]["w"] + params["input"]["b"]
            return jnp.tanh(pre + hidden @ params["recurrent"]), None

        hidden0 = jnp.zeros((inputs.shape[0], width))
        hidden, _ = jax.lax.scan(cell, hidden0, jnp.swapaxes(inputs, 0, 1))
        return hidden @ params["output"]["w"] + params["output"]["b"]

    def loss(params: dict[str, Any], batch: tuple[jax.Array, jax.Array]) -> jax.Array:
        inputs, targets = batch
        return _mean_squared_error(predict(params, inputs), targets)

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


# -- RL environments (gymnax) ----------------------------------------------------------------


def _gymnax(env_id: str, derived: Callable[[dict], dict] = lambda p: {}
            ) -> Callable[[Task], Environment]:
    """A builder of `env_id` whose EnvParams take the task's parameters (all but the horizon),
    plus any fields `derived` computes from them."""

    def build(task: Task) -> Environment:
        import gymnax  # only RL tasks pay for it

        params = dict(task.params)
        total_timesteps = params.pop("total_timesteps")
        env_params = gymnax.make(env_id)[1]
        env_params = env_params.replace(**params, **derived(params))
        return Environment(env_id, env_params, total_timesteps)

    return build


def make_env(name: str) -> Any:
    """The gymnax environment object of an `Environment.name`: a gymnax id, or "Gridworld"
    (LPG's gridworlds, whose layouts are their EnvParams)."""
    if name == "Gridworld":
        from discovery.gridworld import Gridworld

        return Gridworld()
    import gymnax

    return gymnax.make(name)[0]


def _gridworld(task: Task) -> Environment:
    """One of LPG's named layouts."""
    from discovery.gridworld import LAYOUTS

    return Environment("Gridworld", LAYOUTS[task.get("layout")](), task.get("total_timesteps"))


def _random_gridworld(task: Task) -> Environment:
    """A random layout drawn from `layout_seed`: walls, object cells, rewards and the
    objects' termination and respawn probabilities (LPG's randomised gridworlds)."""
    import jax

    from discovery.gridworld import sample_layout

    params = sample_layout(jax.random.PRNGKey(task.get("layout_seed")), task.get("size"),
                           task.get("objects"), task.get("wall_density"), task.get("max_steps"))
    return Environment("Gridworld", params, task.get("total_timesteps"))


def _cartpole_derived(p: dict) -> dict:
    """CartPole keeps total mass and pole mass x length as fields of its EnvParams."""
    return {"total_mass": p["masscart"] + p["masspole"],
            "polemass_length": p["masspole"] * p["length"]}


_TIMESTEPS = Range(1_000, 100_000_000, integer=True, log=True)
_RL = [  # name, gymnax id, {parameter: (range, default)}, derived fields, default horizon
    ("cartpole", "CartPole-v1", {"gravity": (Range(4.9, 19.6), 9.8),
                                 "masscart": (Range(0.5, 2.0), 1.0),
                                 "masspole": (Range(0.05, 0.5), 0.1),
                                 "length": (Range(0.25, 1.0), 0.5),
                                 "force_mag": (Range(5.0, 20.0), 10.0)},
     _cartpole_derived, 100_000),
    ("acrobot", "Acrobot-v1", {"link_length_1": (Range(0.5, 1.5), 1.0),
                               "link_mass_1": (Range(0.5, 1.5), 1.0),
                               "link_mass_2": (Range(0.5, 1.5), 1.0),
                               "torque_noise_max": (Range(0.0, 0.2), 0.0)},
     lambda p: {}, 200_000),
    ("mountaincar", "MountainCar-v0", {"force": (Range(0.0008, 0.0015), 0.001),
                                       "gravity": (Range(0.0015, 0.0035), 0.0025)},
     lambda p: {}, 200_000),
    ("breakout", "Breakout-MinAtar", {}, lambda p: {}, 1_000_000),
    ("space_invaders", "SpaceInvaders-MinAtar",
     {"enemy_move_interval": (Range(6, 20, integer=True), 12),
      "enemy_shot_interval": (Range(5, 20, integer=True), 10)}, lambda p: {}, 1_000_000),
    ("freeway", "Freeway-MinAtar", {"player_speed": (Range(1, 5, integer=True), 3)},
     lambda p: {}, 1_000_000),
    ("asterix", "Asterix-MinAtar", {}, lambda p: {}, 1_000_000),
]

_HORIZON = Range(10, 2000, integer=True, log=True)
_BATCH_SIZE = Range(4, 256, integer=True, log=True)
_WIDTH = Range(2, 128, integer=True, log=True)

FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("mlp_regression",
           ranges={"in_dim": Range(1, 64, integer=True, log=True), "width": _WIDTH,
                   "depth": Range(1, 4, integer=True), "noise": Range(0.0, 1.0),
                   "batch_size": _BATCH_SIZE, "horizon": _HORIZON},
           defaults={"in_dim": 8, "width": 16, "depth": 1, "noise": 0.1, "batch_size": 32,
                     "horizon": 200},
           build=_mlp_regression),
    Family("classification",
           ranges={"dataset": Choice(("spirals", "gaussians")),
                   "n_classes": Range(2, 8, integer=True), "width": _WIDTH,
                   "depth": Range(1, 4, integer=True), "noise": Range(0.0, 0.5),
                   "batch_size": _BATCH_SIZE, "horizon": _HORIZON},
           defaults={"dataset": "spirals", "n_classes": 3, "width": 32, "depth": 2,
                     "noise": 0.05, "batch_size": 32, "horizon": 200},
           build=_classification),
    Family("rnn",
           ranges={"seq_len": Range(2, 50, integer=True), "width": _WIDTH,
                   "batch_size": _BATCH_SIZE, "horizon": _HORIZON},
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
) + tuple(
    Family(name, ranges={**{k: r for k, (r, _) in params.items()}, "total_timesteps": _TIMESTEPS},
           defaults={**{k: d for k, (_, d) in params.items()}, "total_timesteps": horizon},
           build=_gymnax(env_id, derived), kind="rl")
    for name, env_id, params, derived, horizon in _RL
) + (
    Family("gridworld",
           ranges={"layout": Choice(("dense", "sparse", "long_horizon", "small")),
                   "total_timesteps": _TIMESTEPS},
           defaults={"layout": "small", "total_timesteps": 32_000},
           build=_gridworld, kind="rl"),
    Family("random_gridworld",
           ranges={"size": Range(3, 16, integer=True), "objects": Range(1, 8, integer=True),
                   "wall_density": Range(0.0, 0.4), "layout_seed": Range(0, 2 ** 31 - 1,
                                                                          integer=True),
                   "max_steps": Range(10, 1000, integer=True, log=True),
                   "total_timesteps": _TIMESTEPS},
           defaults={"size": 6, "objects": 3, "wall_density": 0.15, "layout_seed": 0,
                     "max_steps": 100, "total_timesteps": 32_000},
           build=_random_gridworld, kind="rl"),
)}
