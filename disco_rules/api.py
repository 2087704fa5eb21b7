"""disco's Python API: launch or resume a search, open a run, and use what it found.

    run = disco_rules.launch("examples/quickstart.toml", run_dir="runs/mine")
    best = run.top(1)[0]
    tx = best.optax(learning_rate=1e-3)     # a live optax.GradientTransformation
    print(best.export("torch"))             # a self-contained module, as text

The command line is argument parsing and printing over these functions.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from disco_rules.discovery.config import (Config, ConfigError, config_text, load_config,
                                          parse_config, set_top_level, warm_start_paths)
from disco_rules.discovery.progress import (Progress, ProgressPool, follow_generations, for_api,
                                            long_phase, task_roles)
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import (TASK_MODULES_NAME, WARM_START_DIR, CandidateRecord,
                                         RunLock, RunStore, StorageError)
from disco_rules.dsl.parser import parse
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.program import Program

if TYPE_CHECKING:
    from optax import GradientTransformation

    from disco_rules.discovery.search.engine import Engine, GenerationReport
    from disco_rules.discovery.transfer import Transfer

# -- configs and runs -----------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigSource:
    """A config with its TOML text (stored with the run), the folder its warm-start files are
    relative to, and a name for its run directories."""

    config: Config
    text: str
    base: Path
    name: str


def read_config(config: str | os.PathLike[str] | Config) -> ConfigSource:
    """A config given as a file path, TOML text or a Config; ConfigError names what is
    wrong."""
    if isinstance(config, Config):
        return ConfigSource(config, config_text(config), Path.cwd(), "run")
    if isinstance(config, str) and ("\n" in config or "=" in config):
        return ConfigSource(parse_config(config), config, Path.cwd(), "run")
    path = Path(config)
    loaded, text = load_config(path)  # a config error answers before JAX is imported
    from disco_rules.discovery.tasks import plugins  # imports JAX

    plugins.add_search_path(path.resolve().parent)  # the user's task modules sit beside it
    return ConfigSource(loaded, text, path.resolve().parent, path.stem)


def check(config: Config, base: Path) -> list[Program]:
    """Everything about a config that can fail before a run directory exists: its tasks,
    the kind they suit, and the warm starts (shipped names, or files relative to `base`).
    Returns the warm-start programs."""
    from disco_rules.discovery.plan import TaskPlan, load_warm_start, program_encoding
    from disco_rules.discovery.search.kinds import population_kind
    from disco_rules.discovery.tasks.kinds import task_kind

    plan = TaskPlan.from_config(config)
    kind = population_kind(config.population.kind)
    if kind.networks:
        for task in plan.all():
            if not task_kind(task.kind).trains_agents:
                raise ConfigError(f"tasks: {task.family} is an {task.kind} task family; a "
                                  f"{kind.name!r} population needs RL tasks")
        return []
    return load_warm_start(warm_start_paths(config, base),
                           program_encoding(plan.kind(), config),
                           all_inputs=config.population.all_inputs)


def create_run(run_dir: str | os.PathLike[str] | None, name: str, text: str,
               warm_start: Sequence[Program] = ()) -> RunStore:
    """A new run directory (default `runs/NAME-TIMESTAMP`) with the config text and the
    warm-start programs, open for writing (holding the run's lock)."""
    with stage_run(run_dir, name, text, warm_start) as place:
        return place()


def stage_run(run_dir: str | os.PathLike[str] | None, name: str, text: str,
              warm_start: Sequence[Program] = ()
              ) -> contextlib.AbstractContextManager[Callable[[], RunStore]]:
    """`create_run`'s run, built hidden until the block calls what this yields to put it in
    place and open it; a block that fails before leaves nothing (`RunStore.staged`). With
    it go the warm starts, which resume reads, and the folders of the run's own task
    modules, so that resume finds them from any folder."""
    from disco_rules.discovery.tasks import plugins

    run_dir = Path(run_dir) if run_dir else \
        Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    files = {f"{WARM_START_DIR}/{i:02d}-{program.name}.py": to_text(program)
             for i, program in enumerate(warm_start)}
    folders = plugins.found_in(text)
    if folders:
        files[TASK_MODULES_NAME] = json.dumps(folders, indent=2) + "\n"
    return RunStore.staged(run_dir, text, files)


@contextlib.contextmanager
def launched(store: RunStore) -> Iterator[RunStore]:
    """A new run's `store`, closed at the end of the block. A launch that fails before its
    first generation is checkpointed removes the run (nothing half-made is left behind),
    unless Ctrl-C, SIGTERM or its storage (a full disk) stopped it: `disco resume` continues
    those."""
    from disco_rules.cluster.stop import Terminated

    try:
        yield store
    except BaseException as error:
        if not isinstance(error, (KeyboardInterrupt, Terminated, StorageError)) \
                and not store.checkpointed:
            store.discard()
        raise
    finally:
        store.close()


def find_task_modules(store: RunStore) -> None:
    """Look for the run's own task modules first where its launch found them, so that the
    run resumes (and is scored) from any folder."""
    from disco_rules.discovery.tasks import plugins

    for folder in store.task_module_folders().values():
        plugins.add_search_path(folder)


def compilation_cache(config: Config) -> str | None:
    """The folder of JAX's persistent compilation cache for `config`'s run, created and
    enabled in this process too (the driver compiles as well), or None."""
    from disco_rules.discovery import compile_cache

    folder = compile_cache.resolve(config.cluster.compilation_cache)
    return folder if compile_cache.enable(folder) else None


def make_pool(config: Config, address: str | None) -> Any:
    """Ray evaluator actors for `config` (Ray in-process when `address` is None), sharing
    JAX's persistent compilation cache with this process."""
    import functools

    from disco_rules.cluster.deadlines import DeadlineRule
    from disco_rules.cluster.pool import EvaluatorPool
    from disco_rules.discovery.evaluator import Evaluator, item_kind

    folder = _start_ray(config, address)
    return EvaluatorPool(functools.partial(Evaluator, config.population.max_statements, folder),
                         _pool_config(config, DeadlineRule(fixed_s=config.cluster.deadline_s)),
                         item_kind=item_kind)


def make_transfer_pool(config: Config, address: str | None) -> Any:
    """Ray actors that each run whole tasks of `disco transfer` (`transfer.TaskEvaluator`),
    placed as `config`'s evaluators are; a task has no deadline (a variant may train for an
    hour where its held-out task took a minute)."""
    import functools

    from disco_rules.cluster.deadlines import DeadlineRule
    from disco_rules.cluster.pool import EvaluatorPool
    from disco_rules.discovery.transfer import TaskEvaluator

    folder = _start_ray(config, address)
    return EvaluatorPool(functools.partial(TaskEvaluator, folder),
                         _pool_config(config, DeadlineRule(fixed_s=math.inf)))


def _pool_config(config: Config, deadline: Any) -> Any:
    """The actors `config`'s `[cluster]` asks for, with `deadline` on each item."""
    from disco_rules.cluster.pool import PoolConfig

    cluster = config.cluster
    return PoolConfig(num_actors=cluster.num_actors, num_cpus_per_actor=cluster.num_cpus_per_actor,
                      num_gpus_per_actor=cluster.num_gpus_per_actor,
                      max_retries=cluster.max_retries, deadline=deadline)


def _start_ray(config: Config, address: str | None) -> str | None:
    """Ray in-process (`address` None) or joined at `address`, with the user's task modules
    shipped to its workers and a cluster's memory checked; the compilation cache folder."""
    from disco_rules.cluster.pool import start_ray
    from disco_rules.discovery.plan import TaskPlan
    from disco_rules.discovery.tasks import plugins

    folder = compilation_cache(config)  # before Ray starts: its local workers inherit it
    TaskPlan.from_config(config)  # loads the user's task modules, shipped to the workers:
    if address is None:
        start_ray(address, py_modules=plugins.module_files())
    else:
        _join_cluster(address, plugins.module_files())
    if address is not None:  # the cluster's nodes, now that they can be seen
        import ray

        from disco_rules.discovery.footprint import check_cluster_memory

        check_cluster_memory(config, [node["Resources"].get("memory", 0.0)
                                      for node in ray.nodes() if node["Alive"]])
    return folder


def _join_cluster(address: str, py_modules: Sequence[str]) -> None:
    """Connect to the Ray cluster at `address`; ClusterUnreachableError (one line naming
    it) if it does not answer, in seconds where Ray's own client would retry for a minute."""
    from disco_rules.cluster.address import (ClusterUnreachableError, check_reachable,
                                             quick_client)
    from disco_rules.cluster.pool import start_ray

    check_reachable(address)
    try:
        with quick_client():
            start_ray(address, py_modules=py_modules)
    except ConnectionError as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ClusterUnreachableError(f"cannot connect to the Ray cluster at {address} "
                                      f"({reason}): check that a Ray cluster answers there "
                                      "(`ray status` on its head node)") from None


def drive(store: RunStore, config: Config, pool: Any,
          on_generation: Callable[["GenerationReport"], None] | None = None,
          progress: Progress | None = None) -> "Engine":
    """Continue the run in `store` from its newest checkpoint up to `config.generations`, then
    choose and confirm its winner on fresh seeds (`Engine.confirm`); with `progress`, each
    generation's work and lines are shown there."""
    from disco_rules.discovery.plan import TaskPlan
    from disco_rules.discovery.search.engine import make_engine

    if progress is not None:
        pool = ProgressPool(pool, progress, roles=task_roles(TaskPlan.from_config(config)))
        on_generation = follow_generations(pool, on_generation)
    engine = make_engine(config, store, pool, on_generation)
    engine.restore()
    if progress is not None:
        pool.context = f"generation {engine.generation}"
    engine.run(config.generations)
    if progress is not None:
        pool.context = "choosing and confirming the winner on fresh seeds"
    engine.confirm()
    return engine


def _check_memory(config: Config, address: str | None, pool: Any) -> None:
    """ConfigError with the estimate when a local run would not fit this machine's memory
    (discovery/footprint.py); nothing for a pool of the caller's or a cluster."""
    if pool is None:
        from disco_rules.discovery.footprint import check_memory  # imports JAX

        check_memory(config, address)


@contextlib.contextmanager
def started_pool(make: Callable[[], Any], progress: Progress | None, label: str
                 ) -> Iterator[Any]:
    """The pool `make` returns (its start shown as the phase `label` in `progress`), shut
    down when the block ends, however it ends."""
    with long_phase(progress, label):
        pool = make()
    try:
        yield pool
    finally:
        pool.shutdown()


def _evaluating_on(config: Config, address: str | None, pool: Any,
                   progress: Progress | None = None) -> contextlib.AbstractContextManager[Any]:
    """The caller's `pool`, or Ray actors for `config` made here and shut down after."""
    if pool is not None:
        return contextlib.nullcontext(pool)
    return started_pool(lambda: make_pool(config, address), progress, "starting Ray")


def launch(config: str | os.PathLike[str] | Config, run_dir: str | os.PathLike[str] | None = None,
           generations: int | None = None, address: str | None = None, *,
           seed: int | None = None,
           on_generation: Callable[["GenerationReport"], None] | None = None,
           pool: Any = None, progress: bool | None = None) -> Run:
    """Run a search to the end and return its run. `config`: a TOML file, TOML text or a
    Config; `generations`, `seed`: override the config's; `address`: a Ray cluster ("auto",
    "ray://host:port"), or None for Ray in this process; `pool`: evaluate on this pool
    instead (anything with `map(items)`); `progress`: show each phase and generation on
    stdout (None: where a line can be redrawn, a terminal or a notebook)."""
    shown = for_api(progress)
    source = read_config(config)
    config, text = with_overrides(source.config, source.text, generations=generations,
                                  seed=seed)
    with long_phase(shown, "loading JAX and checking the config"):
        warm_start = check(config, source.base)
        _check_memory(config, address, pool)
    # the run appears once its cluster is connected, and stays once a generation is done
    with stage_run(run_dir, source.name, text, warm_start) as place, \
            _evaluating_on(config, address, pool, shown) as evaluators, \
            launched(place()) as store:
        drive(store, config, evaluators, on_generation, shown)
    return Run(store.run_dir)


def resume(run_dir: str | os.PathLike[str], generations: int | None = None,
           address: str | None = None, *,
           on_generation: Callable[["GenerationReport"], None] | None = None,
           pool: Any = None, progress: bool | None = None) -> Run:
    """Continue a run after a crash or a stop (up to `generations`, stored as its new target)
    and return it; it ends with the archive an uninterrupted run would have. `progress` as
    in `launch`."""
    shown = for_api(progress)
    with RunStore.open(run_dir, write=True) as store:
        config = parse_config(store.config_text)
        if generations is not None:
            config, text = with_overrides(config, store.config_text, generations=generations)
            store.set_config_text(text)
        find_task_modules(store)
        with long_phase(shown, "loading JAX and checking the config"):
            _check_memory(config, address, pool)
        with _evaluating_on(config, address, pool, shown) as evaluators:
            drive(store, config, evaluators, on_generation, shown)
    return Run(run_dir)


def with_overrides(config: Config, text: str, *, generations: int | None = None,
                   seed: int | None = None) -> tuple[Config, str]:
    """The config and its text with these top-level values (None: as configured), as the
    command line overrides them; ConfigError naming the key if a value is invalid."""
    for key, value in (("generations", generations), ("seed", seed)):
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
            text = set_top_level(text, key, value)  # validates the range
            config = dataclasses.replace(config, **{key: value})
    return config, text


def open_run(run_dir: str | os.PathLike[str]) -> Run:
    """A run directory, to read: its status, best candidates and any candidate."""
    return Run(run_dir)


# -- transfer -------------------------------------------------------------------------------


def transfer(source: str | os.PathLike[str] | Config | Run, programs: Mapping[str, Program],
             *, seeds: int = 8, tasks: int | None = None, run_seed: int | None = None,
             test_seed: int | None = None, cache: str | os.PathLike[str] | None = None,
             address: str | None = None, progress: bool | None = None) -> Transfer:
    """`programs` (name -> optimizer program) and the references (adam, lion, momentum)
    against AdamW tuned per task on the held-out tasks of `source` (a config as `launch`
    takes it, or a run: its config) and their variants (discovery/transfer.py): each tuned on
    `seeds` seeds (keys of `run_seed`, default the config's seed + 1) and scored on as many
    others (`test_seed`, default run_seed + 1). `tasks`: the suite's first N; `cache`: a JSON
    file of finished tunings, read first and written after each tuning; `address`: train the
    tasks at once on that Ray cluster's actors. TransferError or ConfigError say what is
    wrong; TaskFailed names the tasks a cluster could not finish (the others are cached)."""
    config = _config_of(source)
    compilation_cache(config)  # the runs' own JAX compilation cache, before JAX compiles
    stored = _TransferCache(cache)
    from disco_rules.discovery import transfer as protocol
    from disco_rules.discovery.plan import TaskPlan
    from disco_rules.discovery.tasks.kinds import task_kind
    from disco_rules.dsl import library

    protocol.check_programs(programs)
    for name, count in (("seeds", seeds), ("tasks", tasks)):
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise protocol.TransferError(f"{name}: expected a positive integer, got {count!r}")
    plan = TaskPlan.from_config(config)
    for task in plan.heldout:
        if task_kind(task.kind).trains_agents:
            raise protocol.TransferError(f"{task.key} is an RL task; transfer compares "
                                         "optimizers with tuned AdamW on optimizer tasks")
    run_seed = config.seed + 1 if run_seed is None else run_seed
    test_seed = run_seed + 1 if test_seed is None else test_seed
    named = {**programs, **{name: library.program(name) for name in protocol.REFERENCES}}
    size = len(protocol.suite(plan))
    shown = for_api(progress)
    starting = (started_pool(lambda: make_transfer_pool(config, address), shown, "starting Ray")
                if address is not None else contextlib.nullcontext())
    counting = (contextlib.nullcontext() if shown is None else
                shown.phase("transfer: tasks trained", size if tasks is None else min(tasks, size)))
    with starting as pool, counting as phase:
        sizes = [len(stored.entries)]

        def on_task(row: Any) -> None:  # a task that added no tuning was all in the cache
            sizes.append(len(stored.entries))
            if phase is not None:
                phase.advance(cached=sizes[-1] == sizes[-2])

        def on_start(row: Any) -> None:
            if phase is not None:
                phase.working_on(f"{row.task.key} ({row.label})")

        return protocol.transfer(plan, named, seeds=seeds, run_seed=run_seed,
                                 test_seed=test_seed, grid=protocol.GRID, tasks=tasks,
                                 cache=stored.entries, pool=pool,
                                 on_store=lambda entries: stored.save(),
                                 on_task=on_task, on_start=on_start)


class _TransferCache:
    """A transfer's finished tunings (`entries`), read from a JSON file if there is one and
    written back whole, atomically, on `save`."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        from disco_rules.discovery.transfer import TransferError

        self.path = None if path is None else Path(path)
        self.entries: dict[str, Any] = {}
        if self.path is not None and self.path.exists():
            try:
                self.entries = json.loads(self.path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError) as error:
                raise TransferError(f"{self.path}: not a cache of disco transfer ({error})"
                                    ) from None
            if not isinstance(self.entries, dict):
                raise TransferError(f"{self.path}: not a cache of disco transfer (not a JSON "
                                    "object)")

    def save(self) -> None:
        """Write the entries to the file, if there is one."""
        if self.path is not None:
            temporary = self.path.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.entries))
            temporary.replace(self.path)


def _config_of(source: str | os.PathLike[str] | Config | Run) -> Config:
    """The config of a run (a `Run` or a run directory, its task modules found) or of a
    config as `read_config` takes it."""
    if isinstance(source, Run):
        run_dir = source.run_dir
    elif isinstance(source, (str, os.PathLike)) and "\n" not in str(source) \
            and Path(source).is_dir():
        run_dir = Path(source)
    else:
        return read_config(source).config
    with RunStore.open(run_dir, write=False) as store:
        find_task_modules(store)
        return parse_config(store.config_text)


# -- reading a run --------------------------------------------------------------------------


@dataclass(frozen=True)
class Status:
    """Where a run stands, from its archive."""

    run_dir: Path
    generations: int  # generations done
    target_generations: int
    candidates: int
    evaluated: int
    cache_hits: int
    screened: int
    failed: int
    best_fitness: float | None  # the population's, in the last generation
    median_fitness: float | None
    best_validated: tuple[int, float] | None  # (id, mean validation score)
    writer: str | None = None  # "pid N on HOST" of the process writing the run, if one is

    @property
    def done(self) -> bool:
        """All generations run (a process still writing the run is choosing the winner)."""
        return self.generations >= self.target_generations

    @property
    def finished(self) -> bool:
        """All generations done and no process writing it."""
        return self.done and self.writer is None


class Run:
    """A run directory, read through its archive (safe while the run is live)."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        with RunStore.open(self.run_dir, write=False) as store:
            self.config = parse_config(store.config_text)

    def __repr__(self) -> str:
        return f"Run({str(self.run_dir)!r})"

    def _store(self) -> RunStore:
        return RunStore.open(self.run_dir, write=False)

    def status(self) -> Status:
        """Generations done, candidates and their outcomes, best fitness and validation."""
        with self._store() as store:
            done = store.last_generation()
            per_generation: dict[int, dict[str, float]] = {}
            for event in store.events():
                per_generation.setdefault(event.generation, {})[event.name] = event.value
            totals = {name: int(sum(e.get(name, 0.0) for e in per_generation.values()))
                      for name in ("candidates", "evaluated", "cache_hits", "screened",
                                   "failed")}
            last = per_generation.get(done, {}) if done is not None else {}
            winners = store.top(1, by="validation")
        return Status(run_dir=self.run_dir, generations=0 if done is None else done + 1,
                      writer=RunLock.holder(self.run_dir),
                      target_generations=self.config.generations, **totals,
                      best_fitness=last.get("best"), median_fitness=last.get("median"),
                      best_validated=(winners[0][0].id, winners[0][1]) if winners else None)

    def top(self, n: int = 5, by: str = "validation") -> list[Candidate]:
        """The best `n` distinct candidates by mean meta-validation score on the held-out
        tasks (`by="validation"`, as the winners are chosen) or by training fitness."""
        with self._store() as store:
            return [self._candidate(store, record) for record, _ in store.top(n, by=by)]

    def candidate(self, cid: int) -> Candidate:
        """Candidate `cid`; KeyError if the run has none."""
        with self._store() as store:
            return self._candidate(store, store.candidate(cid))

    def _candidate(self, store: RunStore, record: CandidateRecord) -> Candidate:
        validation = {row.task: row.score for row in store.validation_of(record.id)}
        return Candidate(
            run_dir=self.run_dir, record=record,
            scores={row.task: row.score for row in store.scores_of(record.id)
                    if row.task not in validation},
            validation=validation, lineage=tuple(r.id for r in store.lineage(record.id)))


@dataclass(frozen=True)
class Candidate:
    """One archived candidate: its rule (a program or network weights), scores and lineage."""

    run_dir: Path
    record: CandidateRecord
    scores: dict[str, float]  # training task (and level) key -> score
    validation: dict[str, float]  # held-out task key -> meta-validation score
    lineage: tuple[int, ...]  # its id, its parent's, ... back to a warm start or the first

    @property
    def id(self) -> int:
        return self.record.id

    @property
    def kind(self) -> str:
        """The population kind that made it: "programs", or a network kind (lpo, ta-lpo, lpg,
        ta-lpg)."""
        return self.record.kind

    @property
    def fitness(self) -> float:
        return self.record.fitness

    @property
    def status(self) -> CandidateStatus:
        return self.record.status

    @property
    def validation_score(self) -> float | None:
        """The mean meta-validation score, None if it was never validated."""
        if not self.validation:
            return None
        return sum(self.validation.values()) / len(self.validation)

    @property
    def program(self) -> Program | None:
        """The candidate's program as archived; None for a network."""
        return None if self.record.weights is not None else parse(self.record.text)

    @property
    def network(self) -> Any:
        """The rule network's shape (weights in `weights`); None for a program."""
        if self.record.weights is None:
            return None
        from disco_rules.discovery.search.kinds import network_from_text

        return network_from_text(self.record.text)

    @property
    def weights(self) -> Any:
        return self.record.weights

    @property
    def name(self) -> str:
        """A Python name for exports: the run's folder and the candidate id."""
        from disco_rules.export import export_name

        return export_name(self.run_dir, self.id)

    def simplify(self) -> Program:
        """The simplified program (dead code gone, constants folded, canonical names)."""
        from disco_rules.dsl.simplify import simplify

        if self.program is None:
            raise ValueError(f"candidate {self.id} is a {self.kind} network, not a program")
        return simplify(self.program)

    def export(self, format: str = "optax", name: str | None = None) -> str:
        """A self-contained Python module of the rule (it does not import disco), as text."""
        from disco_rules.export import export

        rule = self.program if self.record.weights is None else (self.network, self.weights)
        return export(rule, format, name=name or self.name,
                      origin=f" from {self.run_dir}:{self.id}")

    def optax(self, learning_rate: Any = 1e-3, total_steps: int | None = None
              ) -> "GradientTransformation":
        """An optimizer program as a live optax transformation (the `optax` export, loaded
        without writing a file); `learning_rate`: a float or an optax schedule."""
        namespace: dict[str, Any] = {}
        source = self.export("optax")
        exec(compile(source, f"<disco export of {self.run_dir}:{self.id}>", "exec"), namespace)
        return namespace["optimizer"](learning_rate, total_steps)

    def to_dict(self) -> dict[str, Any]:
        """The candidate as plain data (JSON-able but for non-finite floats)."""
        record = self.record
        return {"id": record.id, "kind": record.kind, "generation": record.generation,
                "parent_id": record.parent_id, "fitness": record.fitness,
                "status": record.status, "reason": record.reason, "text": record.text,
                "scores": self.scores, "validation": self.validation,
                "lineage": list(self.lineage)}

    def __repr__(self) -> str:
        return (f"Candidate(run={str(self.run_dir)!r}, id={self.id}, kind={self.kind!r}, "
                f"fitness={self.fitness:.4g}, validation={self.validation_score})")


__all__ = ["Candidate", "ConfigSource", "Run", "Status", "check", "compilation_cache", "create_run",
           "drive", "find_task_modules",
           "launch", "launched", "make_pool", "open_run", "read_config", "resume", "stage_run",
           "with_overrides"]
