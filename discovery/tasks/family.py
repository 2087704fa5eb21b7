"""What a task is: a family's parameter ranges, a level (`Task`), the pure functions it builds
(`Problem`, or an `Environment` for RL), and the registry that maps family names to families.

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
import numpy as np

from disco_rules.discovery.registry import Registry


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


# the ranges most supervised families share: training steps and examples per batch
HORIZON = Range(10, 10000, integer=True, log=True)
BATCH_SIZE = Range(4, 256, integer=True, log=True)


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
    kind: str = "optimizer"  # a registered task kind (tasks/kinds.py): "optimizer", "rl", ...

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
        object.__setattr__(self, "params", family(self.family).complete(dict(self.params)))

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
        """The name of its family's task kind (`kinds.task_kind` looks it up)."""
        return family(self.family).kind

    @property
    def floats(self) -> dict[str, float]:
        """The float parameters (noise, condition number, ...): they fix no array shape."""
        ranges = family(self.family).ranges
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
        return family(self.family).build(self if floats is None else _Values(self, floats))


@dataclass(frozen=True)
class _Values:
    """A task seen by its family's builder with some parameter values replaced (traced)."""

    task: Task
    values: Mapping[str, Any]

    def get(self, name: str) -> Any:
        return self.values[name] if name in self.values else self.task.get(name)



FAMILIES: Registry[Family] = Registry("task family", "task families")
"""The registry: family name -> Family. Add a family with `register`."""


def register(new: Family) -> Family:
    """Add `new` to the registry (one entry per family); ValueError if the name is taken."""
    return FAMILIES.register(new)


def family(name: str, check_within: float | None = None) -> Family:
    """The registered family `name`, or the user's `module:name` (loaded, checked and
    registered the first time; the check abandoned after `check_within` seconds if given);
    ValueError lists the valid names, or says what is wrong with the user's family."""
    if name in FAMILIES:
        return FAMILIES.get(name)
    from disco_rules.cluster.deadlines import DeadlineExceeded, call_within
    from disco_rules.discovery.tasks import plugins

    if plugins.is_plugin(name):
        loaded = FAMILIES.register(plugins.load(name))  # before the check, which builds a task
        try:
            if check_within is None:
                plugins.check(loaded)
            else:
                call_within(check_within, plugins.check, loaded,
                            what="building and tracing its default task")
        except DeadlineExceeded as error:
            FAMILIES.remove(name)
            raise ValueError(f"task family {name!r}: {error}") from None
        except ValueError:
            FAMILIES.remove(name)
            raise
        return loaded
    raise ValueError(f"{FAMILIES.unknown(name)}, or a module:name of your own")
