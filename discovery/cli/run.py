"""Commands that run a search or report on one: launch, resume, submit, status. The search
itself is `disco_rules.api`'s; this module adds the terminal's progress, metrics and summary."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from disco_rules.discovery.cli.errors import CliError
from disco_rules.discovery.cli.refs import newest_checkpoint, open_run
from disco_rules.discovery.cli.summary import print_summary
from disco_rules.discovery.cli.tables import format_fitness, json_float
from disco_rules.discovery.config import Config, ConfigError, load_config, parse_config
from disco_rules.discovery.pareto import unfinished
from disco_rules.discovery.store import RunStore

SUBMIT_ATTEMPTS = 60  # 2 s apart: a fresh head on a busy machine can take a minute to take jobs


def launch(args: argparse.Namespace) -> None:
    """`disco launch`: a new run of a config, to its last generation, then its summary."""
    from disco_rules import api

    source = api.read_config(args.config)  # a config error answers before JAX is imported
    config, text = _overridden(source.config, source.text, args)
    warm_start = api.check(config, source.base)  # a bad config fails before a run dir exists
    api.compilation_cache(config)  # before JAX loads, so that it caches all it compiles
    with _phase("loading JAX to estimate memory"):
        from disco_rules.discovery import footprint  # imports JAX

        footprint.check_memory(config, args.address)
    from disco_rules.discovery.progress import Progress

    progress = Progress()
    # the run appears once its cluster is connected, and stays once a generation is done
    with api.stage_run(args.run_dir, source.name, text, warm_start) as place, \
            _started_pool(config, args.address, progress) as pool, \
            api.launched(place()) as store:
        print(f"run directory: {store.run_dir}", flush=True)
        _drive(store, config, args, pool, progress)


def resume(args: argparse.Namespace) -> None:
    """`disco resume`: a run continued from its newest checkpoint, then its summary."""
    from disco_rules import api

    with open_run(args.run, write=True) as store:
        config = parse_config(store.config_text)
        if args.generations is not None:
            config, text = _overridden(config, store.config_text, args)
            store.set_config_text(text)
        checkpoint = newest_checkpoint(store)
        done = -1 if checkpoint is None else checkpoint[0]
        finished = done + 1 >= config.generations
        if finished and not unfinished(store):  # before Ray and JAX start
            raise CliError(f"{store.run_dir} is finished ({done + 1} of {config.generations} "
                           f"generations); run more with `disco resume {store.run_dir} "
                           f"--generations {done + 11}`")
        print(f"choosing and confirming the winner of {store.run_dir} on fresh seeds"
              if finished
              else f"resuming {store.run_dir} after generation {done}", flush=True)
        api.compilation_cache(config)  # before JAX loads, so that it caches all it compiles
        with _phase("loading JAX to estimate memory"):
            from disco_rules.discovery import footprint  # imports JAX
            from disco_rules.discovery.progress import Progress

            api.find_task_modules(store)
            footprint.check_memory(config, args.address)
        progress = Progress()
        with _started_pool(config, args.address, progress) as pool:
            _drive(store, config, args, pool, progress)


def _overridden(config: Config, text: str, args: argparse.Namespace) -> tuple[Config, str]:
    """The config and its text with the command line's --generations and --seed."""
    from disco_rules import api

    try:
        return api.with_overrides(config, text, generations=args.generations,
                                  seed=getattr(args, "seed", None))
    except ConfigError as error:
        raise CliError(f"--{error}") from None


def _phase(label: str) -> Any:
    """A phase of work known to take seconds, shown on stderr from its start
    (see discovery/progress.py)."""
    from disco_rules.discovery.progress import Progress

    return Progress().phase(label, at_once=True)


def _started_pool(config: Config, address: str | None, progress: Any
                  ) -> contextlib.AbstractContextManager[Any]:
    """The run's Ray evaluator actors, shown as a phase while Ray starts; shut down after."""
    from disco_rules import api

    def make() -> Any:
        from disco_rules.discovery.search import engine  # noqa: F401 - slow imports, shown

        return api.make_pool(config, address)

    return api.started_pool(make, progress, "starting Ray and the search")


def _drive(store: RunStore, config: Config, args: argparse.Namespace, pool: Any,
           progress: Any) -> None:
    """The run to its last generation (`api.drive`, shown in `progress`), serving metrics
    with --metrics-port, then its summary; Ctrl-C or SIGTERM says how to continue."""
    from disco_rules import api
    from disco_rules.cluster.stop import Terminated

    server = None
    started = time.perf_counter()
    try:
        metrics, server = serve_metrics(args, pool)

        def observe(report: Any) -> None:
            if metrics is not None:
                metrics.observe(report, pool)

        api.drive(store, config, pool, observe, progress)
    except (KeyboardInterrupt, Terminated):
        print(f"interrupted; continue with: disco resume {store.run_dir}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.shutdown()
    print_summary(store, time.perf_counter() - started)


def serve_metrics(args: argparse.Namespace, pool: Any) -> tuple[Any, Any]:
    """SearchMetrics of `pool` and its running server, or (None, None) without --metrics-port."""
    if args.metrics_port is None:
        return None, None
    from disco_rules.discovery.metrics import SearchMetrics

    metrics = SearchMetrics(pool)
    try:
        server = metrics.serve(args.metrics_port, args.metrics_host)
    except OSError as error:
        raise CliError(f"--metrics-port: cannot listen on {args.metrics_host}:"
                       f"{args.metrics_port}: {error.strerror or error}") from None
    print(f"metrics: http://{args.metrics_host}:{server.port}/metrics", flush=True)
    return metrics, server


def submit(args: argparse.Namespace) -> None:
    """`disco submit`: `disco launch` of a config as a job on a Ray cluster's job server."""
    import shlex

    from disco_rules.discovery.config import warm_start_paths
    from disco_rules.dsl import library

    config_path = Path(args.config).resolve()
    config, text = load_config(config_path)  # a config error answers before JAX is imported
    config, _ = _overridden(config, text, args)
    from disco_rules.discovery.plan import TaskPlan
    TaskPlan.from_config(config)  # a bad config fails here, not on the cluster
    for path in warm_start_paths(config, config_path.parent):
        if path.parent != library.PROGRAMS and config_path.parent not in path.parents:
            raise CliError(f"warm start {path} is outside {config_path.parent}, the folder "
                           "sent to the cluster; put it next to the config")
    run_dir = args.run_dir
    entrypoint = " ".join(shlex.quote(part) for part in (
        "python", "-m", "disco_rules.discovery.cli", "launch", config_path.name, "--address", "auto",
        "--run-dir", run_dir,
        *(["--generations", str(args.generations)] if args.generations else []),
        *(["--seed", str(args.seed)] if args.seed is not None else [])))
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        client = JobSubmissionClient(args.address)
        for attempt in range(SUBMIT_ATTEMPTS):  # a cluster just started may ask to retry
            try:
                job = client.submit_job(entrypoint=entrypoint,
                                        runtime_env={"working_dir": str(config_path.parent)})
                break
            except RuntimeError as error:
                if "try again later" not in str(error) or attempt == SUBMIT_ATTEMPTS - 1:
                    raise
                time.sleep(2)
    except AuthenticationError as error:
        if "find an authentication token" in str(error):  # Ray 2.60 checks before connecting
            raise CliError(f"could not submit to {args.address}: RAY_AUTH_MODE=token is set but "
                           "no token was found: put it in ~/.ray/auth_token or RAY_AUTH_TOKEN"
                           ) from None
        raise CliError(f"{args.address} wants the cluster's auth token: set RAY_AUTH_MODE=token "
                       "and put the token in ~/.ray/auth_token or RAY_AUTH_TOKEN") from None
    except (ConnectionError, RuntimeError, ValueError) as error:
        lines = str(error).strip().splitlines()
        raise CliError(f"could not submit to {args.address}: "
                       f"{lines[0] if lines else type(error).__name__}") from None
    print(f"submitted job {job} to {args.address}: {entrypoint}")
    print(f"follow it with: ray job logs --follow {job} --address {args.address}")
    print(f"run directory on the cluster: {run_dir} (`disco status {run_dir}` there)")


def status(args: argparse.Namespace) -> None:
    """`disco status`: where a run stands, from its archive (`api.Run.status`)."""
    from disco_rules import api

    status = api.open_run(args.run).status()
    if args.json:
        print(json.dumps({
            "run": str(status.run_dir), "generations": status.generations,
            "target_generations": status.target_generations, "finished": status.finished,
            "writer": status.writer, "candidates": status.candidates,
            "evaluated": status.evaluated, "cache_hits": status.cache_hits,
            "screened": status.screened, "failed": status.failed,
            "best_fitness": status.best_fitness, "median_fitness": status.median_fitness,
            "best_validated": None if status.best_validated is None else
                dict(zip(("id", "validation"), status.best_validated)),
        }, indent=2, default=json_float))
        return
    state = "finished" if status.finished else \
        f"running ({status.writer}{', choosing its winner' if status.done else ''})" \
        if status.writer else f"stopped (continue with: disco resume {status.run_dir})"
    print(f"run {status.run_dir}: {status.generations} of {status.target_generations} "
          f"generations, {state}")
    print(f"candidates {status.candidates}, trained {status.evaluated}, cached "
          f"{status.cache_hits}, screened {status.screened}, failed {status.failed}")
    if status.best_fitness is not None:
        print(f"population: best {format_fitness(status.best_fitness)}, "
              f"median {format_fitness(status.median_fitness)}")
    if status.best_validated is not None:
        cid, value = status.best_validated
        print(f"best by meta-validation: #{cid} ({format_fitness(value)})")
