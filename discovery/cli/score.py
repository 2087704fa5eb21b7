"""Commands that score rules on a run's tasks: score (as the run scores its candidates,
through its population's `score_rules`) and transfer (against AdamW tuned per task)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from disco_rules.discovery.cli.errors import CliError
from disco_rules.discovery.cli.refs import load_program, load_rule, open_run, split_ref
from disco_rules.discovery.cli.tables import baseline_note, score_cells, score_header
from disco_rules.discovery.config import Config, ConfigError, check_count, parse_config
from disco_rules.discovery.pareto import chosen_winner
from disco_rules.dsl.program import Program


def score(args: argparse.Namespace) -> None:
    """`disco score`: files and stored rules on a run's held-out (or training) tasks."""
    try:
        seeds = None if args.seeds is None else check_count("tasks.seeds", args.seeds)
    except ConfigError as error:
        raise CliError(f"--seeds: {str(error).split(': ', 1)[1]}") from None
    from disco_rules.discovery.scoring import with_seeds  # imports JAX: after the checks

    config, tasks, baselines = run_tasks(args.run, args.tasks)
    if seeds is not None:
        config = with_seeds(config, seeds)
    rules = [load_rule(ref) for ref in args.candidates]
    population = scoring_population(config, rules, "scoring")
    _check_rules(population, args.candidates, rules)
    table = population.score_rules(rules, tasks, baselines, config.tasks.seeds)
    print(f"{args.tasks} tasks of {args.run}, {config.tasks.seeds} seeds; "
          f"score = {population.scored_as}")
    for i, task in enumerate(tasks):
        print(f"  T{i + 1}: {task.key}{baseline_note(baselines[task.key])}")
    print("each: mean ± standard error over seeds; the mean column's over the tasks' seeds")
    width = max(len("candidate"), *(len(ref) for ref in args.candidates))  # names in full
    print(f"{'candidate':<{width}}{score_header(len(tasks))}")
    for ref, row in zip(args.candidates, table):
        print(f"{ref:<{width}}{score_cells(row)}")


def run_tasks(run_dir: str | Path, which: str) -> tuple[Config, list[Any], dict[str, Any]]:
    """(config, tasks, baselines by task key) of a run's "heldout" or "train" tasks;
    CliError if a task has no archived baseline yet."""
    from disco_rules.api import find_task_modules
    from disco_rules.discovery.plan import TaskPlan

    with open_run(run_dir) as store:
        config = parse_config(store.config_text)
        find_task_modules(store)
        plan = TaskPlan.from_config(config)
        tasks = plan.heldout if which == "heldout" else plan.train
        baselines = {}
        for task in tasks:
            record = store.baseline(task.key)
            if record is None:
                raise CliError(f"{run_dir} has no baseline for {task.key} yet "
                               "(run at least one generation first)")
            baselines[task.key] = record
    return config, list(tasks), baselines


def scoring_population(config: Config, rules: Sequence[Any], context: str) -> Any:
    """The run's population (its kind's), scoring in this process with progress on stderr
    under `context`; its programs may be as long as the longest program in `rules`."""
    import dataclasses
    import functools

    from disco_rules.api import compilation_cache
    from disco_rules.cluster.local import LocalPool
    from disco_rules.discovery.evaluator import Evaluator
    from disco_rules.discovery.progress import Progress, ProgressPool
    from disco_rules.discovery.search.kinds import population_kind

    size = max([config.population.max_statements]
               + [len(rule.body) for rule in rules if isinstance(rule, Program)])
    config = dataclasses.replace(config, population=dataclasses.replace(
        config.population, max_statements=size))
    pool = LocalPool(functools.partial(Evaluator, size, compilation_cache(config)))
    return population_kind(config.population.kind).population(
        config, ProgressPool(pool, Progress(), context))


def _check_rules(population: Any, names: Sequence[str], rules: Sequence[Any]) -> None:
    """CliError naming the first rule the population cannot train, and why."""
    for name, rule in zip(names, rules):
        try:
            population.check_rule(rule)
        except ValueError as error:
            raise CliError(f"{name}: {error}") from None


def transfer(args: argparse.Namespace) -> None:
    """`disco transfer`: the run's candidate (RUN:ID, or its chosen winner) and PROGRAM files
    against AdamW tuned per task on the run's held-out tasks and their variants
    (`api.transfer`); or, given a config file, PROGRAM files on its held-out tasks."""
    if args.run.endswith(".toml"):
        config, run_dir, ids, validated, title = _config_source(args)
    else:
        config, run_dir, ids, validated, title = _run_source(args)
    loaded = [(f"#{i}", load_program(f"{run_dir}:{i}")) for i in ids]
    loaded += [(ref, load_program(ref)) for ref in args.programs]
    from disco_rules import api
    from disco_rules.discovery import transfer as protocol
    from disco_rules.discovery import transfer_report

    programs: dict[str, Program] = {}
    for name, program in loaded:  # a file is named by its stem, unless that name is taken
        stem = name if name.startswith("#") else Path(name).stem
        programs[stem if stem not in programs and stem not in protocol.REFERENCES
                 else name] = program
    provenance = transfer_report.provenance(args.argv)  # read before a long run: its code
    try:
        outcome = api.transfer(config, programs, seeds=args.seeds, tasks=args.tasks,
                               run_seed=args.run_seed, test_seed=args.test_seed,
                               cache=args.cache, address=args.address, progress=True)
    except protocol.TransferError as error:
        raise CliError(str(error)) from None
    except protocol.TaskFailed as error:
        kept = f"; those that finished are in {args.cache}" if args.cache else ""
        raise CliError(f"transfer: {error}{kept}: rerun to retry the rest") from None
    in_search = None if args.top is None else _in_search(config, run_dir, outcome, validated)
    report = transfer_report.report(outcome, list(programs), title, provenance, in_search)
    print(report, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        transfer_report.plot_curves(outcome, next(iter(programs)), out.with_suffix(".png"))
        print(f"wrote {out} and {out.with_suffix('.png')}", file=sys.stderr)


def _in_search(config: Config, run_dir: Path, outcome: Any, validated: dict[str, float]
               ) -> dict[str, float]:
    """Each optimizer of `outcome`'s in-search validation mean: the run's for its validated
    candidates, the others scored as the run's meta-validation would have scored them."""
    from disco_rules.discovery.plan import TaskPlan

    others = [name for name in outcome.names if name not in validated]
    plan = TaskPlan.from_config(config)
    with open_run(run_dir) as store:
        baselines = {task.key: store.baseline(task.key) for task in plan.heldout}
    named = dict(outcome.programs)
    rules = [named[name] for name in others]
    population = scoring_population(config, rules, "scoring")
    _check_rules(population, others, rules)
    table = population.score_rules(rules, plan.heldout, baselines, config.validation_seeds)
    return {**validated, **{name: float(np.mean([score.value for score in row]))
                            for name, row in zip(others, table)}}


def _run_source(args: argparse.Namespace) -> tuple[Config, Path, list[int], dict[str, float],
                                                  str]:
    """(config, run directory, candidate ids, their in-search validation means, report title)
    of `disco transfer RUN[:ID]`."""
    from disco_rules import api

    stored = split_ref(args.run)
    run_dir, cid = stored if stored is not None else (Path(args.run), None)
    if not run_dir.is_dir():
        raise CliError(f"{args.run}: no such run directory (RUN or RUN:ID)")
    if args.top is not None and cid is not None:
        raise CliError(f"{args.run}: --top scores the run's best, not one candidate; "
                       f"give RUN alone")
    with open_run(run_dir) as store:
        config = parse_config(store.config_text)
        api.find_task_modules(store)
        if args.top is not None:
            ids = [record.id for record, _ in store.top(args.top, by="validation")]
        elif cid is None:
            chosen = chosen_winner(store)
            ids = [] if chosen is None else [chosen.id]
        else:
            ids = [cid]
        if not ids:
            raise CliError(f"{run_dir}: no meta-validated program to choose a winner "
                           f"from (a network run, or no validation yet); name one with "
                           f"{run_dir}:ID")
        validated = {f"#{i}": float(np.mean(scores)) for i in ids
                     if (scores := [v.score for v in store.validation_of(i)])}
        done = store.last_generation()
    read = (f"archive through generation {done}" if done is not None
            else "no generation finished")
    return (config, run_dir, ids, validated,
            f"Transfer of {run_dir} ({read}; {config.generations} planned)")


def _config_source(args: argparse.Namespace) -> tuple[Config, None, list[int],
                                                     dict[str, float], str]:
    """(config, no run, no candidate ids, no validation means, report title) of `disco
    transfer CONFIG.toml PROGRAM ...`: the programs on the config's held-out tasks."""
    from disco_rules import api

    if args.top is not None:
        raise CliError(f"{args.run}: --top scores a run's best; a config has no candidates "
                       "(give RUN --top N)")
    if not args.programs:
        raise CliError(f"{args.run}: name the programs to score on its held-out tasks "
                       "(files or RUN:ID), e.g. disco transfer CONFIG.toml runs/x:12")
    try:
        config = api.read_config(args.run).config
    except ConfigError as error:
        raise CliError(str(error)) from None
    return config, None, [], {}, f"Transfer on the held-out tasks of {args.run}"
