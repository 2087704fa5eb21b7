"""Commands that turn a rule into something to use or look at: export (Python source), plot
(a run, its levels, a drift) and distill (a drift network into a program)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np

from disco_rules.discovery.cli.errors import NO_ROOM, CliError
from disco_rules.discovery.cli.refs import load_network, load_program, open_run, split_ref
from disco_rules.discovery.cli.tables import score_cells, score_header
from disco_rules.discovery.store import write_atomically
from disco_rules.dsl.program import Program, ProgramError


def export(args: argparse.Namespace) -> None:
    """`disco export`: a program or network as self-contained Python, to stdout or -o."""
    from disco_rules.export import export as export_rule
    from disco_rules.export import export_name

    stored = split_ref(args.program)
    network = load_network(args.program)
    try:
        if network is not None:
            source = export_rule(network, args.format, origin=f" from {args.program}")
        else:  # a stored candidate is named after its run; a file keeps its program's name
            source = export_rule(load_program(args.program), args.format,
                                 name=args.name or (export_name(*stored) if stored else None))
    except (ProgramError, ValueError) as error:
        raise CliError(f"{args.program}: {error}") from None
    if args.output:
        _write_output(args.output, source)
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        print(source, end="")


def _write_output(path: str, text: str) -> None:
    """Write `text` to the file `path` whole or not at all (`store.write_atomically`), so
    that a full disk leaves no half-written file, and an older one intact."""
    try:
        write_atomically(Path(path), text.encode())
    except OSError as error:
        hint = ": free some disk space, or raise the file-size limit (ulimit -f)" \
            if error.errno in NO_ROOM else ""
        raise CliError(f"{path}: {error.strerror or error}{hint}") from None


def plot(args: argparse.Namespace) -> None:
    """`disco plot`: a run's fitness and curves, its sampled levels, or a rule's drift."""
    from disco_rules.discovery import plot as plots

    if args.levels and args.drift:
        raise CliError("plot: either --levels or --drift, not both (--levels plots a run's "
                       "sampled levels, --drift a candidate's drift)")
    if args.levels:
        with open_run(args.target) as store:
            sampled = store.sampled_levels()
        if not sampled:
            raise CliError(f"{args.target}: no sampled levels (the run has no [scheduler], "
                           "or no generation has finished)")
        plots.plot_levels(sampled, args.target, args.output)
    elif args.drift:
        plots.plot_drift(_drift_function(args.target), args.target, args.output)
    elif split_ref(args.target) is not None:
        raise CliError(f"{args.target}: a candidate is plotted with --drift; a run "
                       f"directory without :ID plots the run")
    else:
        with open_run(args.target) as store:
            plots.plot_run(store, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def _drift_function(ref: str) -> tuple[Callable[..., np.ndarray], bool]:
    """(drift of numpy (ratio, advantage, progress), whether it depends on progress) for a
    network candidate or an objective-slot program (file or RUN:ID)."""
    from disco_rules.discovery.search.kinds import population_kind

    network = load_network(ref)
    if network is not None:
        shape, weights = network
        if not population_kind(shape.kind).drift:
            raise CliError(f"{ref} is an {shape.kind} network, which has no drift to plot; "
                           f"export it with `disco export {ref} --format jax`")
        return (lambda r, a, p: np.asarray(shape.apply(weights, r, a, p)),
                shape.temporally_aware)
    from disco_rules.dsl.evaluate import evaluate
    from disco_rules.dsl.slots import OBJECTIVE, slot_of

    program = load_program(ref)
    if slot_of(program) != OBJECTIVE:
        raise CliError(f"{ref}: {program.name}({', '.join(program.params)}) is an optimizer "
                       f"program; --drift plots drift programs of ({', '.join(OBJECTIVE.inputs)})"
                       " and drift networks")
    try:
        OBJECTIVE.check(program)
    except ProgramError as error:
        raise CliError(f"{ref}: --drift plots drift functions: {error}") from None
    return (lambda r, a, p: np.asarray(evaluate(program, {"ratio": r, "advantage": a,
                                                          "progress": p})[0]),
            "progress" in program.used_names())


def distill(args: argparse.Namespace) -> None:
    """`disco distill`: a drift program fitted to a drift network, optionally checked."""
    from disco_rules.discovery.distill import DistillConfig
    from disco_rules.discovery.distill import distill as fit_program
    from disco_rules.discovery.search.kinds import population_kind

    network = load_network(args.network)
    if network is None or not population_kind(network[0].kind).drift:
        raise CliError(f"{args.network}: distill takes a drift network candidate RUN:ID "
                       "(of an lpo or ta-lpo run)")
    from disco_rules.discovery.progress import Progress

    shape, weights = network
    with Progress().phase("distilling: programs scored", args.evaluations) as phase:
        result = fit_program(lambda r, a, p: np.asarray(shape.apply(weights, r, a, p)),
                         shape.temporally_aware,
                         DistillConfig(evaluations=args.evaluations, seed=args.seed),
                         on_evaluation=phase.advance)
    print(result.program, end="")
    print(f"# relative squared error against {args.network} on the grid: {result.error:.4f}")
    if args.output:
        _write_output(args.output, str(result.program))
        print(f"wrote {args.output}", file=sys.stderr)
    if args.check:
        _check_distilled(args.network, network, result.program)


def _check_distilled(ref: str, network: tuple[Any, np.ndarray], program: Program) -> None:
    """The distilled program and the network it came from, trained as PPO's drift on the
    run's held-out tasks (as the run's population scores rules)."""
    from disco_rules.discovery.cli.score import run_tasks, scoring_population

    run_dir = split_ref(ref)[0]
    config, tasks, baselines = run_tasks(run_dir, "heldout")
    names = [f"network {ref}", "distilled program"]
    rules = [network, program]
    population = scoring_population(config, rules, "checking")
    table = population.score_rules(rules, tasks, baselines, config.tasks.seeds)
    print(f"trained as PPO's drift on the held-out tasks of {run_dir} "
          f"({config.tasks.seeds} seeds; 1 = tuned PPO):")
    width = max(len(name) for name in names)
    print(f"  {'':<{width}}{score_header(len(tasks))}   (mean ± standard error over seeds)")
    for name, row in zip(names, table):
        print(f"  {name:<{width}}{score_cells(row)}")
