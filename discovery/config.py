"""Search configs: TOML text -> a validated, frozen `Config`.

Every problem names the key and what it expects, so a bad config is one clear line.
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from disco_rules.discovery.inner import schedules
from disco_rules.discovery.inner.schedules import Schedule
from disco_rules.discovery.scheduler_kinds import scheduler_kind
from disco_rules.discovery.search.kinds import population_kind
from disco_rules.dsl import library
from disco_rules.dsl.mutate import DEFAULT_OPS
from disco_rules.dsl.ops import OP_NAMES

if TYPE_CHECKING:
    from disco_rules.discovery.scheduler import SchedulerConfig


class ConfigError(ValueError):
    """A config value that is missing, unknown or of the wrong kind; names the key."""


@dataclass(frozen=True)
class PopulationConfig:
    kind: str = "programs"  # a registered population kind (discovery/search/kinds.py)
    size: int = 32  # programs: members kept; networks: the strategy's population size
    tournament: int = 4
    children: int = 16  # candidates asked for per generation (programs)
    warm_start: tuple[str, ...] = ("sgd",)  # example program names or program files
    max_statements: int = 20
    # programs: the ops mutations draw from; the default is every op but copy and the matrix
    # ops (orth), which a search opts into by listing them
    ops: tuple[str, ...] = DEFAULT_OPS
    all_inputs: bool = False  # programs: warm starts also read the slot inputs they do not
    # declare (an optimizer's step and progress), so mutations can build schedules
    # optimizer programs: a child whose updates over a short run of a fixed quadratic
    # (dsl.identity.rollout) are within this fraction of a step of a working candidate's is
    # a cached copy of it, not a new candidate (0: only exact and functional duplicates)
    near_duplicate: float = 0.0
    # programs: the fittest working members that never age out while they lead (0: pure
    # regularized evolution, every member leaves with its age)
    elite: int = 0
    hidden: int = 32  # networks: width of the hidden layer


@dataclass(frozen=True)
class ESConfig:
    """The evosax strategy that meta-trains network populations, by its evosax name."""

    strategy: str = "Open_ES"
    sigma: float = 0.05  # the search distribution's (initial) standard deviation
    learning_rate: float = 0.05  # Adam's step on the distribution's mean, where it has one


@dataclass(frozen=True)
class PPOConfig:
    """PPO's hyperparameters for RL tasks; the defaults train CartPole-v1 in seconds."""

    num_envs: int = 8
    num_steps: int = 64
    total_timesteps: int = 100_000  # a task's `total_timesteps` overrides it
    update_epochs: int = 4
    num_minibatches: int = 4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip_eps: float = 0.2  # clips the value loss; the policy's clip, if any, is the drift's
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    lr: float = 2.5e-3
    anneal_lr: bool = True
    hidden: int = 64

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


FITNESS_CAP = 5.0  # the most any task's score can be (scoring.py), and tasks.fitness_cap's bound


@dataclass(frozen=True)
class TasksConfig:
    train: tuple[dict, ...] = ({"family": "mlp_regression"},)
    heldout: tuple[dict, ...] = ({"family": "classification"},)
    seeds: int = 2
    lr_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1)  # programs' and baselines' lr grid
    # the AdamW baseline's weight decays, tuned with lr_grid (0.0: Adam), and its seeds
    # (None: `seeds`; more than a candidate gets makes the baseline less noisy)
    wd_grid: tuple[float, ...] = (1e-4,)
    baseline_seeds: int | None = None
    # the learning-rate schedule every candidate trains under (the `lr` a program reads is
    # the scheduled value; discovery/inner/schedules.py), or a list of them that every
    # candidate is tuned over with lr_grid, as the baseline is; their warm-up (warmup_cosine:
    # a fraction of the horizon) and final lr (cosine, warmup_cosine: a fraction of the
    # peak); the baseline is tuned over baseline_schedules and these
    schedule: str | tuple[str, ...] = "constant"
    warmup: float = 0.05
    final_lr: float = 0.0
    baseline_schedules: tuple[str, ...] = ("constant", "cosine")
    # the most one training task's score adds to a candidate's fitness (scores are capped at
    # 5 in any case): lower, a rule cannot win by driving a few easy tasks' loss to near zero
    # while it loses elsewhere; fitness then rewards being ahead on many tasks
    fitness_cap: float = FITNESS_CAP

    @property
    def seeds_of_baseline(self) -> int:
        """How many seeds each task's baseline is tuned on."""
        return self.seeds if self.baseline_seeds is None else self.baseline_seeds

    @property
    def schedule_names(self) -> tuple[str, ...]:
        """The names of the schedules every candidate is tuned over (one: it trains under it)."""
        return (self.schedule,) if isinstance(self.schedule, str) else self.schedule

    @property
    def candidate_schedules(self) -> tuple[Schedule, ...]:
        """The schedules every candidate is tuned over with lr_grid."""
        return tuple(schedules.named(name, self.warmup, self.final_lr)
                     for name in self.schedule_names)

    @property
    def baseline_schedule_grid(self) -> tuple[Schedule, ...]:
        """The schedules the baseline is tuned over: baseline_schedules and the candidates'
        (so the baseline is never scheduled worse than they are), without repeats."""
        names = dict.fromkeys((*self.baseline_schedules, *self.schedule_names))
        return tuple(schedules.named(name, self.warmup, self.final_lr) for name in names)


@dataclass(frozen=True)
class ScreenConfig:
    task: dict | None = None  # None: no funnel, every candidate goes to the full set
    min_fitness: float = -1.0
    # successive halving: of the new children that pass min_fitness, only the best
    # ceil(keep * new children) by screen fitness train on the training tasks (programs;
    # warm starts always do); 1.0: all of them
    keep: float = 1.0


@dataclass(frozen=True)
class ValidationConfig:
    every: int = 5  # generations between meta-validations (and at the end)
    top: int = 4  # how many of the best candidates are re-scored on the held-out tasks
    # seeds of a meta-validation (None: as many as the baseline's, tasks.baseline_seeds, so
    # each candidate is tuned on the seeds tuned AdamW was, seed for seed); more seeds
    # separate winners whose held-out scores are close
    seeds: int | None = None
    # fresh seeds per held-out task on which the chosen winner and the baseline are trained
    # again at their tuned points after the last generation (discovery/confirmation.py), as
    # many as `disco transfer` scores on by default: one unlucky seed of two can halve a score
    confirmation_seeds: int = 8
    # the validated programs most surely ahead (highest validation mean - 2 SE) that are
    # trained again at their tuned points on `confirmation_seeds` other fresh seeds after the
    # last generation; the winner is the surest there (discovery/confirmation.py), so no
    # candidate wins by the luck of the seeds that validated it. 1: the surest validated wins
    shortlist: int = 3


@dataclass(frozen=True)
class ClusterConfig:
    num_actors: int | None = None  # None: one per num_cpus_per_actor CPUs of the cluster
    num_cpus_per_actor: int = 1
    num_gpus_per_actor: int = 0
    batch_size: int = 16  # candidates per work item sent to an actor
    max_retries: int = 3
    # JAX's persistent compilation cache: true, the per-user folder (compile_cache.py);
    # false, none; a string, that folder
    compilation_cache: bool | str = True
    # seconds one work item (a candidate's or a baseline's training on one task, including
    # building and compiling the task) may run before it is abandoned, its actor replaced
    # and its candidates recorded as `timeout` (a baseline's timeout ends the run); also
    # bounds the check of a plug-in family's default task. None: measured
    # (cluster/deadlines.py): 10 x the slowest finished item like it, at least 60 s, and at
    # least 600 s for an actor's first item of a kind, which compiles
    deadline_s: float | None = None


@dataclass(frozen=True)
class SchedulerSettings:
    """The [scheduler] section: "none" trains on tasks.train only; "regret" or "uniform" adds
    `levels` levels per generation drawn from `families` (family -> fixed parameters, e.g.
    shapes, so compiled functions are reused); the rest are the PLR buffer's knobs."""

    kind: str = "none"  # a registered scheduler (discovery/scheduler_kinds.py)
    levels: int = 4  # levels sampled per generation
    capacity: int = 32
    temperature: float = 0.3
    staleness_coef: float = 0.3
    replay_prob: float = 0.5
    regret_of: str = "best"  # "best" or "mean" of the population
    families: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class LPGTrainConfig:
    """The agent's hyperparameters, shared by LPG and A2C. Sized for the gridworlds: A2C at
    step size 3e-3 learns the small layout in 100 updates of 8 envs x 20 steps.

    return_scale is per environment: TA-LPG's return input is the mean return of the
    episodes completed in the latest update that had any (0 before the first) divided by
    it, so pick about a good agent's return, e.g. 500 for CartPole-v1 (its maximum) and
    20 for the small gridworld (A2C's return there is 12-18).
    """

    num_envs: int = 16
    num_steps: int = 20  # rollout length T: LPG reads T steps backwards
    total_timesteps: int = 64_000
    gamma: float = 0.99
    lr: float = 5e-3  # the LPG agent's Adam step size (A2C's is train's argument)
    max_grad_norm: float = 0.5
    hidden: int = 32  # width of the agent's two tanh MLPs (two hidden layers each)
    prediction_size: int = 30  # m, the size of the prediction vector y(s)
    prediction_coef: float = 0.5  # alpha_y: weight of KL(y_hat || y(s)) in the agent's loss
    policy_entropy_coef: float = 0.01  # beta_0: entropy bonus of pi (A2C's too)
    prediction_entropy_coef: float = 0.001  # beta_1: entropy bonus of y
    pi_hat_l2: float = 0.001  # beta_2: weight of mean pi_hat^2 in the fitness penalty
    y_hat_l2: float = 0.001  # beta_3: weight of mean |y_hat|^2 in the penalty
    gae_lambda: float = 0.95  # A2C only
    vf_coef: float = 0.5  # A2C only
    return_scale: float = 1.0  # TA-LPG only; see above

    @property
    def num_updates(self) -> int:
        return self.total_timesteps // (self.num_envs * self.num_steps)


@dataclass(frozen=True)
class Config:
    seed: int = 0
    generations: int = 10
    population: PopulationConfig = field(default_factory=PopulationConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)
    es: ESConfig = field(default_factory=ESConfig)
    ppo: PPOConfig = field(default_factory=PPOConfig)
    lpg: LPGTrainConfig = field(default_factory=LPGTrainConfig)
    scheduler: SchedulerSettings = field(default_factory=SchedulerSettings)

    @property
    def validation_seeds(self) -> int:
        """How many seeds each meta-validated candidate is tuned and scored on."""
        return self.validation.seeds or self.tasks.seeds_of_baseline


_SECTIONS = {"population": PopulationConfig, "tasks": TasksConfig, "screen": ScreenConfig,
             "validation": ValidationConfig, "cluster": ClusterConfig, "es": ESConfig,
             "ppo": PPOConfig, "lpg": LPGTrainConfig, "scheduler": SchedulerSettings}
_POSITIVE = {"generations", "size", "tournament", "children", "max_statements", "seeds",
             "every", "top", "num_actors", "num_cpus_per_actor", "batch_size", "hidden",
             "num_envs", "num_steps", "total_timesteps", "update_epochs", "num_minibatches",
             "levels", "baseline_seeds", "confirmation_seeds", "shortlist"}

# Upper bounds, far above any sensible run, so that a typo fails when the config is read
# rather than as an allocation (or an overflow) once the run is under way. Any other integer
# is at most _MAX_INT: JAX computes in 32 bits.
_MAX_INT = 2 ** 31 - 1
_MAXIMA = {
    "seed": 2 ** 32 - 1,  # JAX's PRNGKey keeps 32 bits: seed and seed + 2**32 would be one run
    "generations": 1_000_000,
    "population.size": 100_000,
    "population.children": 100_000,
    "population.max_statements": 1_000,
    "population.hidden": 4_096,
    "tasks.seeds": 1_000,
    "validation.seeds": 1_000,
    "validation.confirmation_seeds": 1_000,
    "validation.top": 100_000,
    "validation.shortlist": 1_000,
    "cluster.num_actors": 10_000,
    "cluster.num_cpus_per_actor": 1_024,
    "cluster.batch_size": 100_000,
    "cluster.max_retries": 100,
    "scheduler.levels": 1_000,
    "scheduler.capacity": 1_000_000,
    "ppo.num_envs": 65_536,
    "ppo.num_steps": 100_000,
    "ppo.update_epochs": 1_000,
    "ppo.hidden": 4_096,
    "lpg.num_envs": 65_536,
    "lpg.num_steps": 100_000,
    "lpg.hidden": 4_096,
    "lpg.prediction_size": 4_096,
}
_MAX_LENGTHS = {"tasks.lr_grid": 64, "tasks.train": 1_000, "tasks.heldout": 1_000,
                "population.warm_start": 1_000}
_INFINITE_OK = {"screen.min_fitness"}  # -inf: screen nothing out


def check_count(key: str, value: Any) -> int:
    """`value` checked as the integer config key `key` takes it (its sign and upper bound),
    e.g. for a command-line override; ConfigError names the key and the limit."""
    return _expect(key, value, "int")


def _expect(key: str, value: Any, kind: str) -> Any:
    """`value` checked against `kind` (as written in the field's annotation)."""
    optional = kind.endswith(" | None")
    kind = kind.removesuffix(" | None")
    if value is None and optional:
        return None
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if key.rsplit(".", 1)[-1] in _POSITIVE and value < 1:
            raise ConfigError(f"{key}: expected a positive integer, got {value}")
        if value < 0:
            raise ConfigError(f"{key}: expected a non-negative integer, got {value}")
        if value > _MAXIMA.get(key, _MAX_INT):
            raise ConfigError(f"{key}: at most {_MAXIMA.get(key, _MAX_INT)}, got {value}")
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        if math.isnan(value) or (math.isinf(value) and key not in _INFINITE_OK):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if kind == "bool | str":
        if not isinstance(value, (bool, str)):
            raise ConfigError(f"{key}: expected true, false or a path, got {value!r}")
        return value
    if kind == "str | tuple[str, ...]":
        if isinstance(value, str):
            return value
        if not isinstance(value, list) or not value or \
                not all(isinstance(item, str) for item in value):
            raise ConfigError(f"{key}: expected a name or a non-empty list of names, "
                              f"got {value!r}")
        return tuple(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if kind == "dict":
        if not isinstance(value, dict) or not isinstance(value.get("family"), str):
            raise ConfigError(f"{key}: expected a task table like "
                              f'{{ family = "mlp_regression", horizon = 100 }}, got {value!r}')
        return dict(value)
    if kind == "dict[str, dict]":
        if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
            raise ConfigError(f"{key}: expected a table of tables like "
                              f"{{ quadratic = {{ dim = 8, horizon = 100 }} }}, got {value!r}")
        return {name: dict(table) for name, table in value.items()}
    if kind.startswith("tuple["):
        inner = kind[len("tuple["):-len(", ...]")]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key}: expected a non-empty list, got {value!r}")
        if len(value) > _MAX_LENGTHS.get(key, _MAX_INT):
            raise ConfigError(f"{key}: at most {_MAX_LENGTHS[key]} entries, got {len(value)}")
        return tuple(_expect(f"{key}[{i}]", item, inner) for i, item in enumerate(value))
    raise AssertionError(f"no check for {kind}")


def _build(cls: type, table: Mapping[str, Any], prefix: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        where = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key in {where}; "
                          f"expected one of {', '.join(sorted(known))}")
    values = {}
    for name, value in table.items():
        key = prefix + name
        if name in _SECTIONS and not prefix:
            if not isinstance(value, dict):
                raise ConfigError(f"{key}: expected a [{name}] table")
            values[name] = _build(_SECTIONS[name], value, f"{name}.")
        else:
            values[name] = _expect(key, value, str(known[name].type))
    return cls(**values)


def parse_config(text: str) -> Config:
    """A validated Config from TOML text; ConfigError names the offending key."""
    config = _build(Config, _toml_table(text), "")
    _check_meaning(config)
    return config


def _toml_table(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}") from None


def _check_meaning(config: Config) -> None:
    try:
        kind = population_kind(config.population.kind)
    except ValueError as error:
        raise ConfigError(f"population.kind: {error}") from None
    if kind.networks:
        _check_network_config(config)
    if not 0 <= config.population.elite < config.population.size:
        raise ConfigError(f"population.elite: members kept past their age, from 0 to "
                          f"population.size - 1, got {config.population.elite}")
    if kind.networks and config.population.elite:
        raise ConfigError("population.elite: program populations only (an evosax strategy "
                          "keeps no members); remove it")
    if config.population.tournament > config.population.size:
        raise ConfigError("population.tournament: must not exceed population.size "
                          f"({config.population.tournament} > {config.population.size})")
    if any(lr <= 0 for lr in config.tasks.lr_grid):
        raise ConfigError("tasks.lr_grid: learning rates must be positive")
    if any(wd < 0 for wd in config.tasks.wd_grid):
        raise ConfigError("tasks.wd_grid: weight decays must be zero (Adam) or positive")
    named = config.tasks.schedule_names
    if len(set(named)) < len(named):
        raise ConfigError(f"tasks.schedule: each schedule at most once, got {list(named)}")
    for key, name in [*(("tasks.schedule" if isinstance(config.tasks.schedule, str)
                         else f"tasks.schedule[{i}]", n) for i, n in enumerate(named)),
                      *((f"tasks.baseline_schedules[{i}]", n)
                        for i, n in enumerate(config.tasks.baseline_schedules))]:
        if name not in schedules.NAMES:
            raise ConfigError(f"{key}: expected one of {', '.join(schedules.NAMES)}, "
                              f"got {name!r}")
    if not 0.0 <= config.tasks.warmup < 1.0:
        raise ConfigError(f"tasks.warmup: a fraction of the horizon in [0, 1), "
                          f"got {config.tasks.warmup}")
    _check_ops(config.population.ops)
    if not 0.0 <= config.population.near_duplicate < 1.0:
        raise ConfigError(f"population.near_duplicate: a fraction of a step in [0, 1), got "
                          f"{config.population.near_duplicate}")
    if not 0.0 < config.tasks.fitness_cap <= FITNESS_CAP:
        raise ConfigError(f"tasks.fitness_cap: a score in (0, {FITNESS_CAP:g}], "
                          f"got {config.tasks.fitness_cap}")
    if not 0.0 <= config.tasks.final_lr <= 1.0:
        raise ConfigError(f"tasks.final_lr: a fraction of the peak lr in [0, 1], "
                          f"got {config.tasks.final_lr}")
    if not 0.0 < config.screen.keep <= 1.0:
        raise ConfigError(f"screen.keep: a fraction of the new children in (0, 1], "
                          f"got {config.screen.keep}")
    if config.screen.keep < 1.0 and config.screen.task is None:
        raise ConfigError("screen.keep: ranks children by their screen fitness, so it needs "
                          "a screen.task")
    if config.tasks.seeds_of_baseline < config.tasks.seeds:
        raise ConfigError(f"tasks.baseline_seeds: must be at least tasks.seeds "
                          f"({config.tasks.baseline_seeds} < {config.tasks.seeds})")
    if config.cluster.num_gpus_per_actor not in (0, 1):
        raise ConfigError("cluster.num_gpus_per_actor: expected 0 or 1")
    if config.cluster.deadline_s is not None and config.cluster.deadline_s <= 0:
        raise ConfigError(f"cluster.deadline_s: expected a positive number of seconds, "
                          f"got {config.cluster.deadline_s:g}")
    try:
        scheduler = scheduler_kind(config.scheduler.kind)
    except ValueError as error:
        raise ConfigError(f"scheduler.kind: {error}") from None
    if scheduler.draws_levels:
        scheduler_config(config.scheduler)


def _check_ops(ops: tuple[str, ...]) -> None:
    """`population.ops`: op names of the table (copy, which simplify removes, is none a
    mutation needs), each at most once."""
    valid = [name for name in OP_NAMES if name != "copy"]
    unknown = next((op for op in ops if op not in valid), None)
    if unknown is not None:
        raise ConfigError(f"population.ops: unknown op {unknown!r}; valid ops: "
                          f"{', '.join(valid)}")
    if len(set(ops)) < len(ops):
        raise ConfigError(f"population.ops: each op at most once, got {list(ops)}")


def scheduler_config(settings: SchedulerSettings) -> SchedulerConfig:
    """The scheduler's own config from the [scheduler] section, checked by it; its ValueError
    becomes a ConfigError naming `scheduler.<key>`."""
    from disco_rules.discovery.scheduler import SchedulerConfig  # loads the task families (and jax)

    try:
        return SchedulerConfig(
            families=settings.families, kind=settings.kind, capacity=settings.capacity,
            temperature=settings.temperature, staleness_coef=settings.staleness_coef,
            replay_prob=settings.replay_prob, regret_of=settings.regret_of)
    except ValueError as error:
        message = str(error)
        named = re.match(r"([\w.]+): (.*)", message)  # "families.quadratic: ..."
        if named:
            raise ConfigError(f"scheduler.{named[1]}: {named[2]}") from None
        field_name = re.match(r"\w+", message)[0]  # "capacity must be ...", "kind='x' ..."
        raise ConfigError(f"scheduler.{field_name}: {message}") from None


def _check_network_config(config: Config) -> None:
    """Meaning checks of a network population: strategy name, sizes, PPO's batch shape."""
    from evosax.algorithms import algorithms  # light: evosax's registry of strategy classes

    if config.es.strategy not in algorithms:
        raise ConfigError(f"es.strategy: {config.es.strategy!r} is not an evosax strategy; "
                          f"e.g. Open_ES, SNES, CMA_ES, Sep_CMA_ES, PGPE")
    if config.es.sigma <= 0 or config.es.learning_rate <= 0:
        raise ConfigError("es.sigma and es.learning_rate must be positive")
    if config.es.strategy == "Open_ES" and config.population.size % 2:
        raise ConfigError(f"population.size: Open_ES samples antithetic pairs, so the size "
                          f"must be even (got {config.population.size})")
    ppo = config.ppo
    if (ppo.num_envs * ppo.num_steps) % ppo.num_minibatches:
        raise ConfigError(f"ppo.num_minibatches: must divide num_envs * num_steps "
                          f"({ppo.num_envs} * {ppo.num_steps})")


def load_config(path: str | Path) -> tuple[Config, str]:
    """The Config in the file at `path`, and its text (stored with the run); ConfigError if
    the file is missing, not text, empty or invalid."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise ConfigError(f"{path}: not a TOML text file") from None
    if not _toml_table(text):  # not all defaults: a search the user never described
        raise ConfigError(f"{path}: the file is empty (or only comments); start from "
                          "examples/quickstart.toml")
    return parse_config(text), text


def warm_start_paths(config: Config, base: Path) -> list[Path]:
    """Files of the warm-start programs: example names, or paths relative to `base`."""
    paths = []
    for entry in config.population.warm_start:
        example = library.PROGRAMS / f"{entry}.py"
        path = example if entry in library.names() else base / entry
        if not path.is_file():
            raise ConfigError(f"population.warm_start: {entry!r} is neither a shipped program "
                              f"({', '.join(library.names())}) nor a program file")
        paths.append(path)
    return paths


def set_top_level(text: str, key: str, value: int) -> str:
    """Config text with its top-level `key` (generations, seed) set, as a command-line override
    (a run stores its effective config, so that resume keeps the override); ConfigError if the
    result is not a valid config."""
    lines = text.splitlines()
    first_table = next((i for i, line in enumerate(lines) if line.lstrip().startswith("[")),
                       len(lines))
    kept = [line for i, line in enumerate(lines)
            if i >= first_table or line.split("=")[0].strip() != key]
    result = "\n".join([f"{key} = {value}  # set by --{key}"] + kept) + "\n"
    parse_config(result)  # still the same config but for `key`
    return result


def _toml_value(value: Any) -> str:
    """A TOML literal of a config value (numbers, strings, booleans, lists, tables)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if math.isfinite(value) else ("nan" if value != value else
                                                         ("inf" if value > 0 else "-inf"))
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{json.dumps(str(k))} = {_toml_value(v)}"
                                for k, v in value.items()) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def config_text(config: Config) -> str:
    """TOML text that `parse_config` reads back to `config` (unset optional keys omitted)."""
    lines = []
    for f in fields(Config):
        value = getattr(config, f.name)
        if f.name in _SECTIONS:
            section = [f"{g.name} = {_toml_value(getattr(value, g.name))}"
                       for g in fields(value) if getattr(value, g.name) is not None]
            lines += ["", f"[{f.name}]", *section]
        else:
            lines.append(f"{f.name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
