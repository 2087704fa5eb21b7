"""Search configs: TOML text -> a validated, frozen `Config`.

Every problem names the key and what it expects, so a bad config is one clear line.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

EXAMPLE_PROGRAMS = Path(__file__).resolve().parent.parent / "examples" / "programs"


class ConfigError(ValueError):
    """A config value that is missing, unknown or of the wrong kind; names the key."""


@dataclass(frozen=True)
class PopulationConfig:
    kind: str = "programs"
    size: int = 32
    tournament: int = 4
    children: int = 16  # candidates asked for per generation
    warm_start: tuple[str, ...] = ("sgd",)  # example program names or program files
    max_statements: int = 20


@dataclass(frozen=True)
class TasksConfig:
    train: tuple[dict, ...] = ({"family": "mlp_regression"},)
    heldout: tuple[dict, ...] = ({"family": "classification"},)
    seeds: int = 2
    lr_grid: tuple[float, ...] = (1e-3, 1e-2, 1e-1)


@dataclass(frozen=True)
class ScreenConfig:
    task: dict | None = None  # None: no funnel, every candidate goes to the full set
    min_fitness: float = -1.0


@dataclass(frozen=True)
class ValidationConfig:
    every: int = 5  # generations between meta-validations (and at the end)
    top: int = 4  # how many of the best candidates are re-scored on the held-out tasks


@dataclass(frozen=True)
class ClusterConfig:
    num_actors: int | None = None  # None: one per num_cpus_per_actor CPUs of the cluster
    num_cpus_per_actor: int = 1
    num_gpus_per_actor: int = 0
    batch_size: int = 16  # candidates per work item sent to an actor
    max_retries: int = 3


@dataclass(frozen=True)
class Config:
    seed: int = 0
    generations: int = 10
    population: PopulationConfig = field(default_factory=PopulationConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)
    screen: ScreenConfig = field(default_factory=ScreenConfig)
    validation: ValidationConfig = field(default_factory=ValidationConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)


_SECTIONS = {"population": PopulationConfig, "tasks": TasksConfig, "screen": ScreenConfig,
             "validation": ValidationConfig, "cluster": ClusterConfig}
_POSITIVE = {"generations", "size", "tournament", "children", "max_statements", "seeds",
             "every", "top", "num_actors", "num_cpus_per_actor", "batch_size"}


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
        return value
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if kind == "str":
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if kind == "dict":
        if not isinstance(value, dict) or not isinstance(value.get("family"), str):
            raise ConfigError(f"{key}: expected a task table like "
                              f'{{ family = "mlp_regression", horizon = 100 }}, got {value!r}')
        return dict(value)
    if kind.startswith("tuple["):
        inner = kind[len("tuple["):-len(", ...]")]
        if not isinstance(value, list) or not value:
            raise ConfigError(f"{key}: expected a non-empty list, got {value!r}")
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
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"not valid TOML: {error}") from None
    config = _build(Config, table, "")
    _check_meaning(config)
    return config


def _check_meaning(config: Config) -> None:
    if config.population.kind != "programs":
        raise ConfigError(f"population.kind: expected \"programs\", got "
                          f"{config.population.kind!r}")
    if config.population.tournament > config.population.size:
        raise ConfigError("population.tournament: must not exceed population.size "
                          f"({config.population.tournament} > {config.population.size})")
    if any(lr <= 0 for lr in config.tasks.lr_grid):
        raise ConfigError("tasks.lr_grid: learning rates must be positive")
    if config.cluster.num_gpus_per_actor not in (0, 1):
        raise ConfigError("cluster.num_gpus_per_actor: expected 0 or 1")


def load_config(path: str | Path) -> tuple[Config, str]:
    """The Config in the file at `path`, and its text (stored with the run)."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except (IsADirectoryError, UnicodeDecodeError):
        raise ConfigError(f"{path}: not a TOML text file") from None
    return parse_config(text), text


def warm_start_paths(config: Config, base: Path) -> list[Path]:
    """Files of the warm-start programs: example names, or paths relative to `base`."""
    paths = []
    for entry in config.population.warm_start:
        example = EXAMPLE_PROGRAMS / f"{entry}.py"
        path = example if example.is_file() else base / entry
        if not path.is_file():
            names = ", ".join(sorted(p.stem for p in EXAMPLE_PROGRAMS.glob("*.py")))
            raise ConfigError(f"population.warm_start: {entry!r} is neither an example program "
                              f"({names}) nor a program file")
        paths.append(path)
    return paths
