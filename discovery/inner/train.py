"""Inner training loops: train a task's network with an optimizer program or an optax
optimizer, a population of programs in one compiled call, the tuned AdamW baseline, and
the fitness of a candidate against it.

Every training run is a pure function of (optimizer, lr, key), as in PureJaxRL's
`make_train`: the key draws the task's data, the initial parameters and every minibatch,
so a program and the baseline given the same key see the same data.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Mapping, NamedTuple, Sequence, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from disco_rules.discovery.inner.schedules import CONSTANT, Point, Schedule, grid, schedule_of
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.tasks import Problem, Task
from disco_rules.dsl.interpreter import (EncodedProgram, Encoding, apply_optimizer_tree, flat_size,
                                         uses_matrix_ops)
from disco_rules.dsl.slots import OPTIMIZER

CURVE_POINTS = 20  # validation losses recorded per run, evenly spaced, first at step 0
DIVERGENCE_FACTOR = 1e3  # a validation loss this many times the initial one is a divergence
LOSS_FLOOR = 1e-12  # losses below this count as solved: all equally good, and log stays finite


class TrainResult(NamedTuple):
    """What one training run (or, with leading axes, many) reports.

    `diverged` is true when a recorded validation loss is NaN or Inf, or exceeds
    DIVERGENCE_FACTOR times the initial one: such a run has no usable score.
    """

    final_loss: Any  # [...]: validation loss after the last step
    curve: Any  # [..., CURVE_POINTS]: validation loss at steps checkpoints(horizon)
    diverged: Any  # [...] bool


class _Optimizer(NamedTuple):
    """How the loop updates parameters: state from params, then one step at a time."""

    init: Callable[[Any], Any]
    step: Callable[[Any, Any, Any, jax.Array, jax.Array], tuple[Any, Any]]
    # (params, grads, state, step number from 1, progress) -> (new params, new state)


def checkpoints(horizon: int) -> np.ndarray:
    """The CURVE_POINTS steps at which the validation loss is recorded: 0 to horizon."""
    return np.round(np.linspace(0, horizon, CURVE_POINTS)).astype(np.int32)


def _train(problem: Problem, optimizer: _Optimizer, key: jax.Array) -> TrainResult:
    """`problem.horizon` minibatch gradient steps, recording the validation curve."""
    k_data, k_init, k_batch = jax.random.split(key, 3)
    data = problem.data(k_data)
    params = problem.init(k_init)
    gradient = jax.grad(problem.loss)

    def step(t: jax.Array, carry: tuple[Any, Any]) -> tuple[Any, Any]:
        params, state = carry
        grads = gradient(params, problem.train_batch(jax.random.fold_in(k_batch, t), data))
        number = (t + 1).astype(jnp.float32)
        return optimizer.step(params, grads, state, number, number / problem.horizon)

    def segment(carry: tuple[Any, Any], bounds: jax.Array) -> tuple[tuple[Any, Any], jax.Array]:
        carry = jax.lax.fori_loop(bounds[0], bounds[1], step, carry)
        return carry, problem.validation_loss(carry[0], data)

    marks = checkpoints(problem.horizon)  # segment i trains from marks[i - 1] to marks[i]
    bounds = np.stack([np.concatenate([marks[:1], marks[:-1]]), marks], axis=1)
    _, curve = jax.lax.scan(segment, (params, optimizer.init(params)), bounds)
    diverged = ~jnp.all(jnp.isfinite(curve)) | jnp.any(curve > DIVERGENCE_FACTOR * curve[0])
    return TrainResult(curve[-1], curve, diverged)


def _program_optimizer(encoded: EncodedProgram, lr_at: Callable[[jax.Array], jax.Array],
                       encoding: Encoding) -> _Optimizer:
    """The program in the optimizer slot on every parameter leaf (one interpreter call for the
    whole tree, reductions per leaf): params -= update; the `lr` it reads at update n is
    `lr_at(n - 1)`, the scheduled value."""

    def init(params: Any) -> jax.Array:
        return jnp.zeros((encoding.slot.max_state, flat_size(params)))

    def step(params: Any, grads: Any, state: jax.Array, number: jax.Array,
             progress: jax.Array) -> tuple[Any, jax.Array]:
        updates, state = apply_optimizer_tree(encoded, params, grads, state, lr_at(number - 1),
                                              number, progress, encoding.matrix_ops)
        return jax.tree.map(lambda w, update: w - update, params, updates), state

    return _Optimizer(init, step)


def _optax_optimizer(transform: optax.GradientTransformation) -> _Optimizer:
    """An optax transformation in the loop: params += its updates."""

    def step(params: Any, grads: Any, state: Any, number: jax.Array,
             progress: jax.Array) -> tuple[Any, Any]:
        updates, state = transform.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return _Optimizer(transform.init, step)


def _point(lr: ArrayLike | Point) -> Point:
    """A grid point: `lr` itself, or a bare peak lr under the constant schedule."""
    return lr if isinstance(lr, Point) else Point(lr, CONSTANT.warmup, CONSTANT.final)


def make_program_train(task: Task, encoding: Encoding, floats: Mapping[str, Any] | None = None
                       ) -> Callable[[EncodedProgram, ArrayLike | Point, jax.Array], TrainResult]:
    """`train(encoded, lr, key) -> TrainResult`: one pure (jit-able, vmap-able) training run
    of `task` with an encoded optimizer-slot program; `lr` is a peak lr (constant schedule)
    or a `Point` (lr and schedule); `floats` replaces the task's float parameters (see
    `Task.build`)."""
    if encoding.slot != OPTIMIZER:
        raise ValueError(f"training needs programs of the optimizer slot, "
                         f"not {encoding.slot.name!r}")
    problem = task.build(floats)

    def train(encoded: EncodedProgram, lr: ArrayLike | Point, key: jax.Array) -> TrainResult:
        point = _point(lr)
        point = point._replace(lr=jnp.asarray(point.lr, jnp.float32))
        optimizer = _program_optimizer(encoded, point.lr_at(problem.horizon), encoding)
        return _train(problem, optimizer, key)

    return train


def make_optax_train(task: Task, make_optimizer: Callable[[Any], optax.GradientTransformation],
                     floats: Mapping[str, Any] | None = None
                     ) -> Callable[[ArrayLike | Point, jax.Array], TrainResult]:
    """`train(lr, key) -> TrainResult`: the same loop with the optax optimizer
    `make_optimizer(lr)`, for hand-designed baselines; given a `Point` instead of an lr,
    `make_optimizer` gets the point's schedule (an optax schedule: count -> lr)."""
    problem = task.build(floats)

    def train(lr: ArrayLike | Point, key: jax.Array) -> TrainResult:
        rate = lr.lr_at(problem.horizon) if isinstance(lr, Point) else lr
        return _train(problem, _optax_optimizer(make_optimizer(rate)), key)

    return train


def _over_lrs_and_seeds(train: Callable[..., TrainResult]) -> Callable[..., TrainResult]:
    """`train(*args, lr, key)` mapped over lrs (or grid points) [K] and keys [S]: results
    [K, S, ...]."""
    over_seeds = jax.vmap(train, in_axes=(None, None, 0))
    return jax.vmap(over_seeds, in_axes=(None, 0, None))


_COMPILED: dict[tuple, Callable[..., TrainResult]] = {}  # compiled once per process

# XLA's CPU backend at LLVM optimization level 1 instead of its default: on the tasks
# bench/compile_level.py measures, the trainers compile in about 0.6x the time and run as
# fast, with results equal to the default level's bit for bit or to float rounding (a small
# run's cost is mostly compilation)
CPU_COMPILER_OPTIONS = {"xla_backend_optimization_level": 1}


def compiled(fn: Callable[..., TrainResult]) -> Callable[..., TrainResult]:
    """`jax.jit(fn)`, with CPU_COMPILER_OPTIONS where JAX's default backend is the CPU."""
    options = CPU_COMPILER_OPTIONS if jax.default_backend() == "cpu" else None
    return jax.jit(fn, compiler_options=options)


def _floats(task: Task) -> dict[str, jax.Array]:
    """The task's float parameters as float32 arguments of a compiled trainer."""
    return {name: jnp.asarray(value, jnp.float32) for name, value in task.floats.items()}


def _population_fn(task: Task, encoding: Encoding, shape: tuple[int, int, int]
                   ) -> Callable[..., TrainResult]:
    """The compiled population trainer of this task's shape (`Task.shape`: its float
    parameters are the last argument) and population shape, traced on first use."""
    key = ("programs", task.shape, encoding, shape)
    if key not in _COMPILED:
        def run(population: EncodedProgram, points: Point, keys: jax.Array,
                floats: dict[str, jax.Array]) -> TrainResult:
            train = _over_lrs_and_seeds(make_program_train(task, encoding, floats))
            return jax.lax.map(lambda encoded: train(encoded, points, keys), population)

        _COMPILED[key] = compiled(run)
    return _COMPILED[key]


def evaluate_population(task: Task, encoding: Encoding, population: EncodedProgram,
                        lrs: ArrayLike, keys: jax.Array,
                        schedules: tuple[Schedule, ...] = (CONSTANT,)) -> TrainResult:
    """Train every program of `population` (leading axis P) at every point of
    `grid(lrs, schedules)` [K] (with one schedule, point k is lr k) and seed key [S] in one
    compiled call: results [P, K, S, ...].

    Programs run one after another (`lax.map`: on CPU each runs only its own ops, where a
    vmap would evaluate every op for every program); grid points and seeds are vectorized.
    A population that uses no matrix op runs under an encoding without them, which compiles
    faster (a trainer for each, where populations of both kinds come).
    """
    if encoding.matrix_ops and not uses_matrix_ops(population):
        encoding = replace(encoding, matrix_ops=False)
    points = Point(*(jnp.asarray(x) for x in grid(np.atleast_1d(lrs), schedules)))
    shape = (int(population.ops.shape[0]), int(points.lr.shape[0]), int(keys.shape[0]))
    return _population_fn(task, encoding, shape)(population, points, keys, _floats(task))


def adamw(lr: float) -> optax.GradientTransformation:
    """The hand-designed baseline: AdamW with optax's defaults and weight decay 1e-4."""
    return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=1e-4)


def _baseline_fn(task: Task, make_optimizer: Callable[[float], optax.GradientTransformation],
                 shape: tuple[int, int]) -> Callable[..., TrainResult]:
    """The compiled baseline trainer [K, S] of this task's shape and optimizer (float
    parameters as the first argument), traced on first use."""
    key = ("optax", task.shape, make_optimizer, shape)
    if key not in _COMPILED:
        def run(floats: dict[str, jax.Array], lr: jax.Array, k: jax.Array) -> TrainResult:
            return make_optax_train(task, make_optimizer, floats)(lr, k)

        _COMPILED[key] = compiled(_over_lrs_and_seeds(run))
    return _COMPILED[key]


def lr_scores(result: TrainResult) -> np.ndarray:
    """Score [K] of each lr of a [K, S] result: mean over seeds of log final validation loss
    (floored at LOSS_FLOOR); +inf where any seed diverged or produced NaN/Inf."""
    final = np.asarray(result.final_loss, np.float64)
    curve = np.asarray(result.curve, np.float64)
    usable = (~np.asarray(result.diverged, bool) & np.isfinite(final)
              & np.all(np.isfinite(curve), axis=-1))
    with np.errstate(all="ignore"):
        logs = np.log(np.maximum(final, LOSS_FLOOR))
    return np.where(np.all(usable, axis=-1), np.mean(logs, axis=-1), np.inf)


def baseline(task: Task, lrs: ArrayLike, keys: jax.Array,
             make_optimizer: Callable[[float], optax.GradientTransformation] = adamw
             ) -> tuple[float, float, np.ndarray]:
    """(best lr, its loss, its curve) of a hand-designed optimizer tuned over `lrs`: the loss
    is exp(score) (see `lr_scores`), the curve the mean over seeds. NaNs if no lr worked."""
    lrs = np.asarray(lrs, np.float32)
    fn = _baseline_fn(task, make_optimizer, (len(lrs), int(keys.shape[0])))
    result = TrainResult(*(np.asarray(x) for x in fn(_floats(task), jnp.asarray(lrs), keys)))
    scores = lr_scores(result)
    if not np.isfinite(scores).any():
        return math.nan, math.nan, np.full(CURVE_POINTS, np.nan)
    best = int(np.argmin(scores))
    return float(lrs[best]), float(np.exp(scores[best])), np.mean(result.curve[best], axis=0)


def adamw_decay(lr: ArrayLike, weight_decay: ArrayLike) -> optax.GradientTransformation:
    """AdamW with optax's defaults at a learning rate and decoupled weight decay that may be
    traced (so one compiled loop serves a whole grid); weight decay 0 is Adam."""
    return optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=weight_decay)


class TunedBaseline(NamedTuple):
    """The best point of an AdamW (lr x schedule x weight decay) grid on a task."""

    optimizer: str  # "adam" (weight decay 0) or "adamw"
    lr: float  # the peak lr
    weight_decay: float
    loss: float  # exp(mean over the scored seeds of log final validation loss)
    curve: np.ndarray  # [CURVE_POINTS]: mean validation curve over the scored seeds
    schedule: str = CONSTANT.name


def _grid_fn(task: Task, shape: tuple[int, int]) -> Callable[..., TrainResult]:
    """The compiled AdamW trainer over G (grid point, weight decay) pairs x S seeds of this
    task's shape: every hyperparameter is traced, so the whole grid compiles once."""
    key = ("adamw grid", task.shape, shape)
    if key not in _COMPILED:
        def run(floats: dict[str, jax.Array], point: Point, weight_decay: jax.Array,
                k: jax.Array) -> TrainResult:
            problem = task.build(floats)
            return _train(problem, _optax_optimizer(
                adamw_decay(point.lr_at(problem.horizon), weight_decay)), k)

        over_seeds = jax.vmap(run, in_axes=(None, None, None, 0))
        _COMPILED[key] = compiled(jax.vmap(over_seeds, in_axes=(None, 0, 0, None)))
    return _COMPILED[key]


def adamw_grid(task: Task, lrs: ArrayLike, weight_decays: ArrayLike, keys: jax.Array,
               schedules: tuple[Schedule, ...] = (CONSTANT,)
               ) -> tuple[TrainResult, Point, np.ndarray, np.ndarray]:
    """AdamW trained at every (lr, schedule, weight decay) of the three grids (decay 0: Adam)
    on every seed key, in one compiled call: the results [G, S] and, per point [G], its lr and
    schedule fractions (a `Point`), its weight decay and its index into `grid(lrs,
    schedules)`; lr-major, then schedule, then weight decay."""
    points = grid(lrs, schedules)
    decays = np.asarray(weight_decays, np.float32)
    index, grid_decay = (a.ravel() for a in np.meshgrid(np.arange(len(points.lr)), decays,
                                                         indexing="ij"))
    grid_points = Point(*(np.asarray(x)[index] for x in points))
    fn = _grid_fn(task, (len(index), int(keys.shape[0])))
    result = fn(_floats(task), Point(*(jnp.asarray(x) for x in grid_points)),
                jnp.asarray(grid_decay), keys)
    return TrainResult(*(np.asarray(x) for x in result)), grid_points, grid_decay, index


# Grid steps a tuning may go past an edge of its lrs that the best point sits on: a baseline
# whose best lr is the grid's largest is cut short by the grid, not tuned (AdamW on matrix
# completion at lr 0.1, SGD with momentum nearly everywhere).
PAST_EDGE = 2


def step_past_edge(lrs: Sequence[float], lr: float) -> float | None:
    """The lr one step of the geometric grid `lrs` past the edge that `lr` sits on; None when
    it sits inside (or is NaN), or the grid has fewer than two lrs."""
    lrs = sorted(float(x) for x in lrs)
    if len(lrs) < 2 or not math.isfinite(lr):
        return None
    if math.isclose(lr, lrs[-1], rel_tol=1e-5):
        return lrs[-1] * lrs[-1] / lrs[-2]
    if math.isclose(lr, lrs[0], rel_tol=1e-5):
        return lrs[0] * lrs[0] / lrs[1]
    return None


Tuning = TypeVar("Tuning")


def tune_past_edges(tune: Callable[[tuple[float, ...]], Tuning], lrs: Sequence[float],
                    steps: int, lr_of: Callable[[Tuning], float],
                    score_of: Callable[[Tuning], float]) -> Tuning:
    """`tune(lrs)`, then, while its chosen lr (`lr_of`; NaN: none worked) sits on an edge of
    the lrs tried, `tune((one step past it,))`, up to `steps` steps, stopping at the first
    whose `score_of` (lower is better) is not better."""
    tried = [float(lr) for lr in lrs]
    chosen = tune(tuple(tried))
    for _ in range(steps):
        beyond = step_past_edge(tried, lr_of(chosen))
        if beyond is None:
            break
        tried.append(beyond)
        further = tune((beyond,))
        if not score_of(further) < score_of(chosen):
            break
        chosen = further
    return chosen


class _GridTuning(NamedTuple):
    """AdamW over one grid (`adamw_grid`'s outputs), its points' scores and the best one."""

    result: TrainResult
    points: Point
    decays: np.ndarray
    index: np.ndarray
    scores: np.ndarray
    best: int

    @property
    def lr(self) -> float:
        """The best point's lr; NaN if no point worked."""
        return float(self.points.lr[self.best]) if self.score < math.inf else math.nan

    @property
    def score(self) -> float:
        return float(self.scores[self.best])


def tuned_adamw(task: Task, lrs: ArrayLike, weight_decays: ArrayLike, keys: jax.Array,
                scored: int | None = None, schedules: tuple[Schedule, ...] = (CONSTANT,),
                past_edge: int = 0) -> TunedBaseline:
    """AdamW tuned on `task` over every (lr, schedule, weight decay) of the three grids
    (decay 0: Adam), each trained on every seed key, in one compiled call: the point with the
    lowest mean log final validation loss (`lr_scores`) over all the keys; while its lr sits
    on an edge of the lrs tried, up to `past_edge` times, the best point one grid step past
    it if that is better (`tune_past_edges`). Its loss and curve are over the first `scored`
    keys (default all): the seeds a candidate is trained on, so a score compares the same
    data splits and initialisations. NaNs if no point worked."""
    def over(grid_lrs: tuple[float, ...]) -> _GridTuning:
        result, points, decays, index = adamw_grid(task, grid_lrs, weight_decays, keys,
                                                   schedules)
        scores = lr_scores(result)
        return _GridTuning(result, points, decays, index, scores, int(np.argmin(scores)))

    tuning = tune_past_edges(over, np.asarray(lrs).ravel(), past_edge,
                             lambda t: t.lr, lambda t: t.score)
    if not tuning.score < math.inf:
        return TunedBaseline("adamw", math.nan, math.nan, math.nan,
                             np.full(CURVE_POINTS, np.nan))
    best = tuning.best
    decay = float(tuning.decays[best])
    paired = TrainResult(*(x[best:best + 1, :scored] for x in tuning.result))
    return TunedBaseline("adam" if decay == 0 else "adamw", tuning.lr,
                         decay, float(np.exp(lr_scores(paired)[0])),
                         np.mean(paired.curve[0], axis=0),
                         schedule_of(int(tuning.index[best]), schedules).name)


def fitness(candidate: TrainResult, baseline_loss: float) -> tuple[float, str | None]:
    """(log(baseline loss / candidate loss), None) at the candidate's best lr, scored as the
    baseline is (`lr_scores`); lrs where it diverged or gave NaN/Inf are skipped. If none is
    left: (-inf, "nan") when every lr gave NaN/Inf, else (-inf, "diverged"). Never raises."""
    try:
        scores = lr_scores(candidate)
        if not (np.isfinite(baseline_loss) and baseline_loss > 0):
            return -math.inf, f"the baseline loss {baseline_loss} is not a positive number"
        if np.isfinite(scores).any():
            return float(math.log(max(baseline_loss, LOSS_FLOOR)) - scores.min()), None
        final = np.asarray(candidate.final_loss, np.float64)
        curve = np.asarray(candidate.curve, np.float64)
        broken = ~np.isfinite(final) | ~np.all(np.isfinite(curve), axis=-1)
        return -math.inf, (CandidateStatus.NAN if np.all(np.any(broken, axis=-1))
                           else CandidateStatus.DIVERGED)
    except (ValueError, TypeError, IndexError) as error:
        return -math.inf, f"malformed result: {error}"
