"""The `disco` command line. Every error is one line on stderr with a non-zero exit code."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import math
import os
import sqlite3
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, NoReturn, Sequence

import numpy as np

from disco_rules.cluster.address import ClusterUnreachableError
from disco_rules.cluster.reasons import debug_traceback
from disco_rules.discovery.config import ConfigError, check_count, load_config, parse_config
from disco_rules.discovery.store import ARCHIVE_NAME, RunStore, StoreError, write_atomically
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program, ProgramError

if TYPE_CHECKING:
    from disco_rules.discovery.verdict import Verdict


SUBMIT_ATTEMPTS = 60  # 2 s apart: a fresh head on a busy machine can take a minute to take jobs


_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})  # a full disk, a size limit


class CliError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


# -- programs by reference: a file, or RUN:ID -----------------------------------------------

def _split_ref(ref: str) -> tuple[Path, int] | None:
    """(run dir, candidate id) for `RUN:ID`, None for anything else."""
    head, sep, tail = ref.rpartition(":")
    if sep and tail.isdigit() and Path(head).is_dir():
        return Path(head), int(tail)
    return None


def open_run(run_dir: str | Path, write: bool = False) -> RunStore:
    """The run's store: a snapshot to read, or (write) the run itself, under its lock."""
    try:
        return RunStore.open(run_dir, write=write)
    except StoreError as error:
        raise CliError(str(error)) from None


def _stored_candidate(ref: str, run_dir: Path, cid: int):
    """The archived candidate `cid` of `run_dir`; CliError if there is none."""
    with open_run(run_dir) as store:
        try:
            return store.candidate(cid)
        except KeyError:
            raise CliError(f"{ref}: run {run_dir} has no candidate {cid} "
                           f"(see `disco inspect {run_dir}`)") from None


def load_program(ref: str) -> Program:
    """The program named by `ref`: a file of program text, or `RUN:ID` from a run's archive."""
    stored = _split_ref(ref)
    if stored is not None:
        record = _stored_candidate(ref, *stored)
        if record.weights is not None:
            raise CliError(f"{ref} is a {record.kind} network, not a program: export it with "
                           f"`disco export {ref} --format jax` or plot it with "
                           f"`disco plot {ref} --drift -o FILE.png`")
        return parse(record.text)
    path = Path(ref)
    if path.is_dir() and (path / ARCHIVE_NAME).is_file():
        raise CliError(_name_a_candidate(ref))
    if not path.is_file():
        raise CliError(f"{ref}: no such program file or RUN:ID")
    try:
        return parse(path.read_text())
    except ProgramError as error:
        raise CliError(f"{ref}: {error}") from None
    except UnicodeDecodeError:
        raise CliError(f"{ref}: not a text file") from None


def _name_a_candidate(run_dir: str) -> str:
    """What to write instead of a run directory where a candidate is wanted: RUN:ID, with
    the id of the run's best (by meta-validation, else training fitness, as inspect ranks)."""
    with open_run(run_dir) as store:
        best = store.top(1, by="validation") or store.top(1)
    example = f", e.g. its best, {run_dir}:{best[0][0].id}" if best else ""
    return (f"{run_dir} is a run directory: name one of its candidates as {run_dir}:ID"
            f"{example} (see `disco inspect {run_dir}`)")


def load_network(ref: str):
    """(network shape, weights) of a network candidate `RUN:ID`; None for anything else."""
    stored = _split_ref(ref)
    if stored is None:
        return None
    record = _stored_candidate(ref, *stored)
    if record.weights is None:
        return None
    from disco_rules.discovery.search.kinds import network_from_text  # imports JAX

    return network_from_text(record.text), record.weights


# -- program commands ----------------------------------------------------------------------

def _cmd_simplify(args: argparse.Namespace) -> None:
    from disco_rules.dsl.simplify import simplify

    program = load_program(args.program)
    simplified = simplify(program)
    print(simplified, end="")
    removed = len(program.body) - len(simplified.body)
    print(f"# {len(program.body)} -> {len(simplified.body)} statements ({removed} removed)")


def _describe_program(program: Program) -> None:
    from disco_rules.dsl.identity import canonical_hash, fingerprint
    from disco_rules.dsl.simplify import simplify
    from disco_rules.dsl.slots import slot_of

    slot = slot_of(program)  # a drift program reads (ratio, advantage, progress)
    try:
        slot.check(program)
    except ProgramError as error:
        raise CliError(str(error)) from None
    used = program.used_names()
    print(program, end="")
    print(f"slot:        {slot.name}")
    print(f"hash:        {canonical_hash(program, slot)}")
    print(f"fingerprint: {fingerprint(program, slot)}")
    print(f"statements:  {len(program.body)} ({len(simplify(program).body)} after simplify)")
    marked = [name if name in used else f"{name} (unused)"
              for name in slot.inputs if name in program.params]
    print(f"inputs:      {', '.join(marked) if marked else 'none'}")
    state = slot.state_names(program)
    print(f"state:       {', '.join(state) if state else 'none'}")


def _cmd_export(args: argparse.Namespace) -> None:
    from disco_rules.export import export, export_name

    stored = _split_ref(args.program)
    network = load_network(args.program)
    try:
        if network is not None:
            source = export(network, args.format, origin=f" from {args.program}")
        else:  # a stored candidate is named after its run; a file keeps its program's name
            source = export(load_program(args.program), args.format,
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
            if error.errno in _NO_ROOM else ""
        raise CliError(f"{path}: {error.strerror or error}{hint}") from None


# -- runs ----------------------------------------------------------------------------------

def _format_fitness(value: float) -> str:
    return "-inf" if value == -math.inf else ("nan" if math.isnan(value) else f"{value:+.3f}")


_CELL = 16  # width of a "+0.123 ± 0.045" column


def _score_header(tasks: int) -> str:
    """The columns of `_score_cells`: T1 .. Tn, then mean."""
    return "".join(f"{'T' + str(i + 1):>{_CELL}}" for i in range(tasks)) + f"{'mean':>{_CELL}}"


def _score_cells(row) -> str:
    """A candidate's per-task scores (TaskScores) and their mean, each "mean ± SE" over seeds;
    the mean's SE is sqrt(sum of the tasks' squared SEs) / tasks (seeds independent)."""
    def cell(value: float, se: float) -> str:
        text = _format_fitness(value)
        return text if math.isnan(se) or not math.isfinite(value) else f"{text} ± {se:.3f}"

    mean = sum(score.value for score in row) / len(row)
    mean_se = math.sqrt(sum(score.se ** 2 for score in row)) / len(row)
    return "".join(f"{cell(score.value, score.se):>{_CELL}}" for score in row) \
        + f"{cell(mean, mean_se):>{_CELL}}"


def _serve_metrics(args: argparse.Namespace, pool):
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


@contextlib.contextmanager
def _started_pool(config, address: str | None, progress) -> Iterator[Any]:
    """The run's Ray evaluator actors, shown as a phase while Ray starts; shut down after."""
    with progress.phase("starting Ray and the search", at_once=True):  # and their imports
        from disco_rules.api import make_pool
        from disco_rules.discovery.search import engine  # noqa: F401 - slow imports, shown

        pool = make_pool(config, address)
    try:
        yield pool
    finally:
        pool.shutdown()


def _drive(store: RunStore, config, args: argparse.Namespace, generations: int, pool,
           progress) -> None:
    from disco_rules.discovery.plan import TaskPlan
    from disco_rules.discovery.progress import ProgressPool, follow_generations, task_roles
    from disco_rules.discovery.search.engine import make_engine

    server = None
    try:
        metrics, server = _serve_metrics(args, pool)
        # each generation's work items as they finish, then its lines
        shown = ProgressPool(pool, progress, roles=task_roles(TaskPlan.from_config(config)))

        def observe(report) -> None:
            if metrics is not None:
                metrics.observe(report, pool)

        search = make_engine(config, store, shown, follow_generations(shown, observe))
        search.restore()
        shown.context = f"generation {search.generation}"
        started = time.perf_counter()
        if search.generation >= generations:
            print(f"run already has {search.generation} generations (asked for {generations})")
        search.run(generations)
        elapsed = time.perf_counter() - started
    except KeyboardInterrupt:
        print(f"interrupted; continue with: disco resume {store.run_dir}", file=sys.stderr)
        raise
    finally:
        if server is not None:
            server.shutdown()
    _print_summary(store, elapsed)


def _shown(pool, context: str):
    """`pool`, whose work shows its progress on stderr under `context`."""
    from disco_rules.discovery.progress import Progress, ProgressPool

    return ProgressPool(pool, Progress(), context)


def _phase(label: str):
    """A phase of work known to take seconds, shown on stderr from its start
    (see discovery/progress.py)."""
    from disco_rules.discovery.progress import Progress

    return Progress().phase(label, at_once=True)


def _print_summary(store: RunStore, elapsed: float) -> None:
    from disco_rules.discovery.search.kinds import population_kind
    from disco_rules.discovery.verdict import with_error

    print(f"\nrun directory: {store.run_dir}  ({store.count()} candidates archived, "
          f"{elapsed:.0f} s)")
    winners = store.top(3, by="validation")
    if winners:
        print("best by meta-validation score on held-out tasks:")
        for record, value in winners:
            print(f"  #{record.id:<5d} validation {_format_fitness(value)}  "
                  f"training fitness {_format_fitness(record.fitness)}")
        chosen = _simplest_validated(store)
        if chosen is not None:
            print(f"chosen: #{chosen.id}, the simplest program within one standard error of "
                  f"the best ({chosen.size} statements, validation "
                  f"{with_error(chosen.mean, chosen.standard_error, len(chosen.scores))})")
        best = winners[0][0] if chosen is None else store.candidate(chosen.id)
        held_out = {v.task: v.score for v in store.validation_of(best.id)}
        baselines = {task: store.baseline(task) for task in held_out}
        for task in sorted(held_out):
            baseline = baselines[task]
            print(f"  held-out {task}{'' if baseline is None else _baseline_note(baseline)}")
        print(_score_scale(baselines))
        for line in _winner_verdict(store, best.id)[0]:
            print(line)
        ref = f"{store.run_dir}:{best.id}"
        if best.weights is not None:
            print(f"\nbest network (#{best.id}): {best.kind}, {best.weights.size} weights")
            plot = f"  |  disco plot {ref} --drift -o drift.png" \
                if population_kind(best.kind).drift else ""
            print(f"next: disco export {ref} --format jax{plot}")
        else:
            from disco_rules.dsl.simplify import simplify

            print(f"\n{'best' if chosen is None else 'chosen'} program (#{best.id}, "
                  f"simplified):\n{simplify(parse(best.text))}")
            print(f"next: disco inspect {store.run_dir}  |  disco export {ref} --format optax")


def _simplest_validated(store: RunStore):
    """The run's winner among meta-validated programs (`selection.simplest_within_noise`);
    None for a network run or before any validation."""
    from disco_rules.discovery.pareto import validated_programs
    from disco_rules.discovery.selection import simplest_within_noise

    return simplest_within_noise(validated_programs(store))


def _winner_verdict(store: RunStore, winner: int) -> tuple[list[str], Verdict | None]:
    """(lines, Verdict) on the run's winner against its tuned baseline from its own
    meta-validation scores (one per held-out task, the mean over the validation seeds, so the
    standard error is over tasks), grouped by family (discovery/verdict.py): its verdict line
    if it beats the baseline beyond noise, else plainly that no candidate does (or that the
    winner does not and which validated candidate does). On RL tasks a score is the final
    return normalised so that 1 = the tuned baseline (PPO; A2C for LPG), so margins are over 1.
    No lines (None) if the winner was never validated."""
    from disco_rules.discovery.search.kinds import population_kind
    from disco_rules.discovery.verdict import by_family, judge, winner_text

    scores = {record.id: {v.task: v.score for v in records}
              for record, records in store.validated()}
    if winner not in scores:
        return [], None
    rl = _is_rl([store.baseline(task) for task in scores[winner]])
    reference = 1.0 if rl else 0.0
    if rl:
        agent = population_kind(parse_config(store.config_text).population.kind).agent
        baseline = "tuned A2C" if agent == "lpg" else "tuned PPO"
    else:
        baseline = "tuned AdamW"
    verdicts = {cid: judge(by_family(values), reference) for cid, values in scores.items()}
    beating = sorted(((f"#{cid}", v) for cid, v in verdicts.items()
                      if v.kind == "beats" and cid != winner), key=lambda item: -item[1].mean)
    lines = [f"verdict: {winner_text(f'#{winner}', verdicts[winner], baseline, beating)}"]
    lines += _against_warm_start(store, winner, scores)
    if not rl:
        lines.append(f"  (on the held-out tasks that chose it; `disco transfer "
                     f"{store.run_dir}` retests it on fresh seeds and variants of them)")
    return lines, verdicts[winner]


def _against_warm_start(store: RunStore, winner: int,
                        scores: dict[int, dict[str, float]]) -> list[str]:
    """The line on the winner against the warm start its lineage begins at, from their paired
    meta-validation scores (`verdict.against`); none when the run has no validated warm start
    at the root of the winner's lineage."""
    from disco_rules.discovery.verdict import against

    from disco_rules.discovery.search.kinds import population_kind

    root = store.lineage(winner)[-1]
    population = parse_config(store.config_text).population
    if population_kind(population.kind).networks:
        return []  # a network population's warm start is a single mean, not a program
    warm_starts = len(population.warm_start)
    if root.parent_id is not None or root.generation != 0 or root.id >= warm_starts \
            or root.id not in scores or root.text is None:
        return []
    name = f"#{root.id} ({parse(root.text).name})"
    if root.id == winner:
        return [f"  the chosen rule is its warm start {name}: nothing the search found beats "
                "it beyond noise on the held-out tasks"]
    return ["  " + against(f"#{winner}", scores[winner], f"its warm start {name}",
                           scores[root.id])]


def _is_rl(baselines: Sequence) -> bool:
    """Whether these archived baselines are of RL tasks: each RL baseline is a return, with
    no loss; every optimizer baseline has one (also in runs of disco 0.1, which did not name
    the optimizer). False when none is archived."""
    found = [b for b in baselines if b is not None]
    return bool(found) and all(math.isnan(b.loss) for b in found)


def _score_scale(baselines: dict) -> str:
    """What a score means (optimizer tasks: against the tuned AdamW; RL tasks: normalised
    return); whether the winner beats the baseline is the verdict's to say, with its noise."""
    if _is_rl(list(baselines.values())):
        return ("score: final return normalised per task, 0 = an untrained agent, 1 = the "
                "tuned baseline (PPO; A2C for LPG), above 1 = better than it")
    return ("score: log(baseline loss / candidate loss) per task, 0 = the tuned baseline, "
            "negative = worse than it, +0.1 = about 10% lower loss")


def _baseline_note(baseline) -> str:
    """What score 0 is on a task: its tuned baseline, e.g. "  (0 = adamw(lr=0.01, wd=0.01),
    8 seeds)"; "" where the archive does not name it (RL tasks)."""
    if not baseline.name:
        return ""
    seeds = "" if baseline.seeds is None else f", {baseline.seeds} seeds"
    return f"  (0 = {baseline.name}{seeds})"


def _cmd_launch(args: argparse.Namespace) -> None:
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
        _drive(store, config, args, config.generations, pool, progress)


def _overridden(config, text: str, args: argparse.Namespace) -> tuple:
    """The config and its text with the command line's --generations and --seed."""
    from disco_rules import api

    try:
        return api.with_overrides(config, text, generations=args.generations,
                                  seed=getattr(args, "seed", None))
    except ConfigError as error:
        raise CliError(f"--{error}") from None


def _newest_checkpoint(store: RunStore) -> tuple | None:
    """The run's newest intact checkpoint; each unreadable newer one is a one-line warning
    (when none is intact, CheckpointError alone is the error)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint = store.load_checkpoint()
    for warning in caught:
        print(f"disco: warning: {warning.message}", file=sys.stderr)
    return checkpoint


def _cmd_resume(args: argparse.Namespace) -> None:
    from disco_rules import api

    with open_run(args.run, write=True) as store:
        config = parse_config(store.config_text)
        if args.generations is not None:
            config, text = _overridden(config, store.config_text, args)
            store.set_config_text(text)
        checkpoint = _newest_checkpoint(store)
        done = -1 if checkpoint is None else checkpoint[0]
        if done + 1 >= config.generations:  # said before Ray and JAX start
            raise CliError(f"{store.run_dir} is finished ({done + 1} of {config.generations} "
                           f"generations); run more with `disco resume {store.run_dir} "
                           f"--generations {done + 11}`")
        print(f"resuming {store.run_dir} after generation {done}", flush=True)
        api.compilation_cache(config)  # before JAX loads, so that it caches all it compiles
        with _phase("loading JAX to estimate memory"):
            from disco_rules.discovery import footprint  # imports JAX
            from disco_rules.discovery.progress import Progress

            api.find_task_modules(store)
            footprint.check_memory(config, args.address)
        progress = Progress()
        with _started_pool(config, args.address, progress) as pool:
            _drive(store, config, args, config.generations, pool, progress)


def _cmd_inspect(args: argparse.Namespace) -> None:
    stored = _split_ref(args.target)
    if args.pareto:
        if stored is not None or not Path(args.target).is_dir():
            raise CliError(f"{args.target}: --pareto reads a run directory (RUN, not RUN:ID "
                           "or a program file)")
        _inspect_pareto(Path(args.target), args.json)
    elif args.levels:
        if stored is not None or not Path(args.target).is_dir():
            raise CliError(f"{args.target}: --levels reads a run directory (RUN, not RUN:ID "
                           "or a program file)")
        _inspect_levels(Path(args.target), args.json)
    elif stored is not None:
        _inspect_candidate(*stored, as_json=args.json)
    elif Path(args.target).is_dir():
        _inspect_run(Path(args.target), args.top, args.json, args.by)
    else:
        _describe_program(load_program(args.target))


def _ranked(store: RunStore, top: int, by: str) -> list:
    """The run's best `top` distinct candidates: by training fitness, or (by="validation") the
    validated ones by meta-validation score first, as the launch summary ranks winners, then
    the others by fitness."""
    if top < 0:
        raise CliError("--top: expected a non-negative integer")
    if by == "fitness":
        return [r for r, _ in store.top(top, by="fitness")]
    ranked = [r for r, _ in store.top(top, by="validation")]
    listed = {r.hash for r in ranked}
    rest = [r for r, _ in store.top(top + len(ranked), by="fitness") if r.hash not in listed]
    return ranked + rest[:top - len(ranked)]


def _inspect_run(run_dir: Path, top: int, as_json: bool, by: str = "validation") -> None:
    with open_run(run_dir) as store:
        validated = {r.id: v for r, v in store.top(10 ** 9, by="validation")}
        rows = [{"id": r.id, "generation": r.generation, "fitness": r.fitness,
                 "validation": validated.get(r.id), "status": r.status, "hash": r.hash,
                 "statements": None if r.weights is not None else len(parse(r.text).body),
                 "program": r.text} for r in _ranked(store, top, by)]
        if as_json:
            print(json.dumps({"run": str(run_dir), "candidates": store.count(), "by": by,
                              "top": rows}, indent=2, default=_json_float))
            return
        order = ("validated candidates first, by meta-validation score on held-out tasks, "
                 "then by training fitness" if by == "validation" else "by training fitness")
        print(f"run {run_dir}: {store.count()} candidates archived, "
              f"{len(store.top(10 ** 9))} distinct candidates; {order}")
        print(f"{'id':>6} {'gen':>4} {'fitness':>8} {'valid.':>8} {'stmts':>5}  hash")
        for row in rows:
            validation = "" if row["validation"] is None else _format_fitness(row["validation"])
            statements = "-" if row["statements"] is None else row["statements"]
            print(f"{row['id']:>6} {row['generation']:>4} {_format_fitness(row['fitness']):>8} "
                  f"{validation:>8} {statements:>5}  {row['hash']}")


def _inspect_pareto(run_dir: Path, as_json: bool) -> None:
    """The complexity-fitness hall of fame: per program size the best meta-validated program,
    marking the Pareto front and the chosen winner (simplest within one standard error)."""
    from disco_rules.discovery.pareto import validated_programs
    from disco_rules.discovery.selection import (MIN_SAMPLES_FOR_SE, best_per_size,
                                                 pareto_front, simplest_within_noise)
    from disco_rules.dsl.simplify import simplify

    with open_run(run_dir) as store:
        validated = validated_programs(store)
        texts = {c.id: str(simplify(parse(store.candidate(c.id).text)))
                 for c in best_per_size(validated)}
        chosen = simplest_within_noise(validated)
        verdict_lines, verdict = ([], None) if chosen is None else \
            _winner_verdict(store, chosen.id)
    if not validated:
        raise CliError(f"{run_dir}: no meta-validated program yet (a network run, or no "
                       "validation has run)")
    front = {c.id for c in pareto_front(validated)}
    rows = [{"size": c.size, "id": c.id, "validation": c.mean,
             "standard_error": c.standard_error, "samples": len(c.scores),
             "pareto": c.id in front, "chosen": chosen is not None and c.id == chosen.id,
             "program": texts[c.id]} for c in best_per_size(validated)]
    if as_json:
        print(json.dumps({"run": str(run_dir), "validated": len(validated),
                          "chosen": None if chosen is None else chosen.id,
                          "verdict": None if verdict is None else {
                              "kind": verdict.kind, "mean": verdict.mean, "se": verdict.se,
                              "families_ahead": verdict.families_ahead,
                              "families": verdict.families,
                              "text": verdict_lines[0].removeprefix("verdict: ")},
                          "sizes": rows}, indent=2, default=_json_float))
        return
    print(f"run {run_dir}: the best of {len(validated)} meta-validated programs per size "
          "(statements of the simplified program)")
    print(f"valid. = mean score over the held-out tasks, +- its standard error (from "
          f"{MIN_SAMPLES_FOR_SE} results or more); * on the Pareto front; > chosen: the "
          "simplest within one standard error of the best")
    print(f"{'':2}{'size':>4} {'id':>6} {'valid.':>8} {'+-':>6}")
    for row in rows:
        mark = (">" if row["chosen"] else " ") + ("*" if row["pareto"] else " ")
        error = f"{row['standard_error']:.3f}" if row["samples"] >= MIN_SAMPLES_FOR_SE else ""
        print(f"{mark}{row['size']:>4} {row['id']:>6} {_format_fitness(row['validation']):>8} "
              f"{error:>6}")
    if chosen is not None:
        print(f"\nchosen #{chosen.id}:\n{texts[chosen.id]}", end="")
        print("\n".join(["", *verdict_lines]))


def _inspect_levels(run_dir: Path, as_json: bool) -> None:
    """What the run's levels are drawn from, and the scheduler's level buffer in the newest
    checkpoint, highest regret first."""
    from disco_rules.discovery.levels import Levels, buffer_rows
    from disco_rules.discovery.scoring import FITNESS_CAP

    from disco_rules.api import find_task_modules

    with open_run(run_dir) as store:
        checkpoint = _newest_checkpoint(store)
        sampled = store.sampled_levels()
        find_task_modules(store)
        levels = Levels.from_config(parse_config(store.config_text), FITNESS_CAP)
    if checkpoint is None or "levels" not in checkpoint[1]:
        raise CliError(f"{run_dir}: no level buffer (the run has no [scheduler], or no "
                       "generation has finished)")
    generation, buffer = checkpoint[0], buffer_rows(checkpoint[1]["levels"])
    if as_json:
        print(json.dumps({"run": str(run_dir), "generation": generation, "buffer": buffer},
                         indent=2, default=_json_float))
        return
    if levels is not None:
        print(levels.summary())
    print(f"run {run_dir}: level buffer after generation {generation} "
          f"({len(buffer)} levels, highest regret first)")
    print(f"{'regret':>8} {'sampled':>7} {'last':>5}  level")
    for row in buffer:
        print(f"{row['regret']:>8.3f} {row['times_sampled']:>7d} {row['last_sampled']:>5d}  "
              f"{row['level']}")
    replayed = sum(row.replayed for row in sampled)
    print(f"{len({row.task for row in sampled})} distinct levels sampled in "
          f"{len(sampled)} draws ({replayed} replayed from the buffer)")


def _json_float(value):
    return str(value)


def _inspect_candidate(run_dir: Path, cid: int, as_json: bool) -> None:
    with open_run(run_dir) as store:
        try:
            lineage = store.lineage(cid)
        except KeyError:
            raise CliError(f"{run_dir}:{cid}: no such candidate "
                           f"(see `disco inspect {run_dir}`)") from None
        record = lineage[0]
        scores = store.scores_of(cid)
        validation = {v.task: v.score for v in store.validation_of(cid)}
        if as_json:
            print(json.dumps({
                "id": record.id, "generation": record.generation, "status": record.status,
                "reason": record.reason, "fitness": record.fitness, "hash": record.hash,
                "fingerprint": record.fingerprint, "program": record.text,
                "lineage": [r.id for r in lineage],
                "scores": {s.task: {"score": s.score, "loss": s.loss, "lr": s.lr}
                           for s in scores}, "validation": validation,
            }, indent=2, default=_json_float))
            return
        if record.weights is not None:
            print(f"{record.kind} network {record.text}, {record.weights.size} weights "
                  f"(norm {float((record.weights ** 2).sum()) ** 0.5:.3f})")
        else:
            print(record.text, end="")
        print(f"candidate #{record.id}, generation {record.generation}: {record.status}"
              f"{' (' + record.reason + ')' if record.reason else ''}, "
              f"fitness {_format_fitness(record.fitness)}")
        print(f"hash {record.hash}  fingerprint {record.fingerprint}")
        print("lineage: " + " <- ".join(
            f"#{r.id} ({_format_fitness(r.fitness)})" for r in lineage))
        for s in scores:
            kind = "held-out" if s.task in validation else "training"
            detail = f"  loss {s.loss:.4g}  lr {s.lr:g}" if record.weights is None else \
                f"  final return {s.curve[-1]:.4g}" if s.curve else ""
            print(f"  {kind:8s} {s.task}: score {_format_fitness(s.score)}{detail}")


def _run_tasks(run_dir: str | Path, which: str) -> tuple:
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
    return config, tasks, baselines


def _cmd_score(args: argparse.Namespace) -> None:
    import dataclasses

    from disco_rules.discovery.search.kinds import population_kind

    try:
        seeds = None if args.seeds is None else check_count("tasks.seeds", args.seeds)
    except ConfigError as error:
        raise CliError(f"--seeds: {str(error).split(': ', 1)[1]}") from None
    config, tasks, baselines = _run_tasks(args.run, args.tasks)
    if seeds is not None:
        config = dataclasses.replace(config, tasks=dataclasses.replace(config.tasks,
                                                                       seeds=seeds))
    if population_kind(config.population.kind).networks:
        table, what = _score_networks(args.candidates, config, tasks, baselines)
    else:
        table, what = _score_programs(args.candidates, config, tasks, baselines)
    print(f"{args.tasks} tasks of {args.run}, {config.tasks.seeds} seeds; score = {what}")
    for i, task in enumerate(tasks):
        print(f"  T{i + 1}: {task.key}{_baseline_note(baselines[task.key])}")
    print("each: mean ± standard error over seeds; the mean column's over the tasks' seeds")
    width = max(len("candidate"), *(len(ref) for ref in args.candidates))  # names in full
    print(f"{'candidate':<{width}}{_score_header(len(tasks))}")
    for ref, row in zip(args.candidates, table):
        print(f"{ref:<{width}}{_score_cells(row)}")


def _score_programs(refs: list[str], config, tasks, baselines) -> tuple[list, str]:
    from disco_rules.discovery.plan import TaskPlan, program_slot

    slot = program_slot(TaskPlan.from_config(config))
    what = ("final return as PPO's drift, normalised by tuned PPO's (1: as good)"
            if slot.name == "objective"
            else "log(tuned baseline loss / program loss), each at its best lr")
    return _program_scores([load_program(ref) for ref in refs], config, tasks, baselines), what


def _program_scores(programs: list[Program], config, tasks, baselines) -> list:
    """Per program, per task: its score as the run scores its candidates (in this process)."""
    import functools

    from disco_rules.api import compilation_cache
    from disco_rules.cluster.local import LocalPool
    from disco_rules.discovery.evaluator import Evaluator
    from disco_rules.discovery.plan import TaskPlan, program_slot
    from disco_rules.discovery.scoring import score_programs
    from disco_rules.dsl.interpreter import Encoding, EncodingError

    size = max(config.population.max_statements, *(len(p.body) for p in programs))
    slot = program_slot(TaskPlan.from_config(config))
    encoding = Encoding(slot=slot, max_statements=size)
    try:
        for program in programs:
            encoding.encode(program)
    except (EncodingError, ProgramError) as error:
        raise CliError(str(error)) from None
    pool = _shown(LocalPool(functools.partial(Evaluator, size, compilation_cache(config))),
                  "scoring")
    return score_programs(pool, config, encoding, programs, tasks, baselines)


def _score_networks(refs: list[str], config, tasks, baselines) -> tuple[list, str]:
    """Networks of the run's shape and, in a drift-network run, drift programs (files or
    RUN:ID of a program run), each trained as the run trains its candidates."""
    import functools

    from disco_rules.api import compilation_cache
    from disco_rules.cluster.local import LocalPool
    from disco_rules.discovery.evaluator import Evaluator
    from disco_rules.discovery.scoring import score_rules
    from disco_rules.discovery.search.kinds import network_text, population_kind
    from disco_rules.discovery.search.networks import agent_of, network_of
    from disco_rules.dsl.interpreter import Encoding
    from disco_rules.dsl.slots import OBJECTIVE

    network, agent = network_of(config), agent_of(config)
    drift = population_kind(network.kind).drift
    networks: dict[int, np.ndarray] = {}
    programs: dict[int, Program] = {}
    for i, ref in enumerate(refs):
        loaded = load_network(ref)
        if loaded is not None and loaded[0] == network:
            networks[i] = loaded[1]
        elif loaded is None and drift:
            program = load_program(ref)
            try:
                OBJECTIVE.check(program)
            except ProgramError as error:
                raise CliError(f"{ref}: not a drift program: {error}") from None
            programs[i] = program
        else:
            raise CliError(f"{ref}: not a {network.kind} network of this run's shape "
                           f"({network_text(network)})"
                           + (" or a drift program" if drift else ""))
    pool = _shown(LocalPool(functools.partial(Evaluator, config.population.max_statements,
                                              compilation_cache(config))), "scoring")
    table: list = [None] * len(refs)
    if networks:
        rows = score_rules(pool, config, network, agent, np.stack(list(networks.values())),
                           tasks, baselines, config.seed)
        table = _place(table, networks, rows)
    if programs:
        encoding = Encoding(slot=OBJECTIVE,
                            max_statements=max(len(p.body) for p in programs.values()))
        rows = score_rules(pool, config, encoding, agent,
                           encoding.encode_population(list(programs.values())), tasks,
                           baselines, config.seed)
        table = _place(table, programs, rows)
    return table, "final return normalised by the tuned baseline's (1: as good)"


def _place(table: list, positions: dict, rows: list) -> list:
    """`table` with `rows` put at the indices of `positions`, in order."""
    for index, row in zip(positions, rows):
        table[index] = row
    return table


def _cmd_transfer(args: argparse.Namespace) -> None:
    """The run's candidate (RUN:ID, or its chosen winner) and PROGRAM files against AdamW
    tuned per task on the run's held-out tasks and their variants (discovery/transfer.py)."""
    from disco_rules import api
    from disco_rules.dsl import library

    stored = _split_ref(args.run)
    run_dir, cid = stored if stored is not None else (Path(args.run), None)
    if not run_dir.is_dir():
        raise CliError(f"{args.run}: no such run directory (RUN or RUN:ID)")
    seeds, tasks = args.seeds, args.tasks
    if args.top is not None and cid is not None:
        raise CliError(f"{args.run}: --top scores the run's best, not one candidate; "
                       f"give RUN alone")
    with open_run(run_dir) as store:
        config = parse_config(store.config_text)
        api.find_task_modules(store)
        if args.top is not None:
            ids = [record.id for record, _ in store.top(args.top, by="validation")]
        elif cid is None:
            chosen = _simplest_validated(store)
            ids = [] if chosen is None else [chosen.id]
        else:
            ids = [cid]
        if not ids:
            raise CliError(f"{run_dir}: no meta-validated program to choose a winner "
                           f"from (a network run, or no validation yet); name one with "
                           f"{run_dir}:ID")
        validated = {f"#{i}": float(np.mean([v.score for v in store.validation_of(i)]))
                     for i in ids}
    loaded = [(f"#{i}", load_program(f"{run_dir}:{i}")) for i in ids]
    loaded += [(ref, load_program(ref)) for ref in args.programs]
    _check_optimizers(loaded)
    run_seed = config.seed + 1 if args.run_seed is None else args.run_seed
    test_seed = run_seed + 1 if args.test_seed is None else args.test_seed
    cache = _read_cache(args.cache)
    status = api.open_run(run_dir).status()
    api.compilation_cache(config)  # the runs' own JAX compilation cache
    from disco_rules.discovery import transfer as protocol
    from disco_rules.discovery.plan import TaskPlan
    from disco_rules.discovery.progress import Progress
    from disco_rules.discovery.scoring import with_seeds

    programs: dict[str, Program] = {}
    for name, program in loaded:  # a file is named by its stem, unless that name is taken
        stem = name if name.startswith("#") else Path(name).stem
        programs[stem if stem not in programs and stem not in protocol.REFERENCES
                 else name] = program
    candidates = list(programs)
    programs.update({name: library.program(name) for name in protocol.REFERENCES})
    plan = TaskPlan.from_config(config)
    if any(task.kind == "rl" for task in plan.heldout):
        raise CliError(f"{run_dir}: its held-out tasks are RL tasks; transfer compares "
                       "optimizers with tuned AdamW on optimizer tasks")
    total = len(protocol.suite(plan)) if tasks is None else tasks
    provenance = protocol.provenance(args.argv)  # the code that runs: read before a long run
    with Progress().phase("transfer: tasks trained", total) as phase:
        def on_task(row) -> None:
            if args.cache is not None:  # kept after every task: a stopped run loses one
                temporary = Path(args.cache).with_suffix(".tmp")
                temporary.write_text(json.dumps(cache))
                temporary.replace(args.cache)
            phase.advance()

        outcome = protocol.transfer(plan, programs, seeds=seeds, run_seed=run_seed,
                                    test_seed=test_seed, grid=protocol.GRID, tasks=tasks,
                                    cache=cache, on_task=on_task)
    in_search = None
    if args.top is not None:  # the others as the run's meta-validation would have scored them
        others = [name for name in programs if name not in validated]
        with open_run(run_dir) as store:
            baselines = {task.key: store.baseline(task.key) for task in plan.heldout}
        seen = with_seeds(config, config.validation.seeds or config.tasks.seeds)
        table = _program_scores([programs[name] for name in others], seen, plan.heldout,
                                baselines)
        in_search = {**validated, **{name: float(np.mean([score.value for score in row]))
                                     for name, row in zip(others, table)}}
    read = (f"archive through generation {status.generations - 1}" if status.generations
            else "no generation finished")
    report = protocol.report(
        outcome, programs, candidates,
        f"Transfer of {run_dir} ({read}; {status.target_generations} planned)",
        provenance, in_search)
    print(report, end="")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report)
        protocol.plot_curves(outcome, candidates[0], out.with_suffix(".png"))
        print(f"wrote {out} and {out.with_suffix('.png')}", file=sys.stderr)


def _check_optimizers(programs: Sequence[tuple[str, Program]]) -> None:
    """CliError naming the first (name, program) that is not an optimizer-slot program."""
    from disco_rules.dsl.slots import OPTIMIZER, slot_of

    for name, program in programs:
        try:
            if slot_of(program) != OPTIMIZER:
                raise ProgramError(f"{program.name}({', '.join(program.params)}) is a drift "
                                   "program")
            OPTIMIZER.check(program)
        except ProgramError as error:
            raise CliError(f"{name}: transfer scores optimizer programs: {error}") from None


def _read_cache(path: str | None) -> dict:
    """The finished tunings in `path` (none if it does not exist yet); CliError if unreadable."""
    if path is None or not Path(path).exists():
        return {}
    try:
        cache = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CliError(f"--cache {path}: not a cache of disco transfer ({error})") from None
    if not isinstance(cache, dict):
        raise CliError(f"--cache {path}: not a cache of disco transfer (not a JSON object)")
    return cache


def _cmd_distill(args: argparse.Namespace) -> None:
    from disco_rules.discovery.distill import DistillConfig, distill
    from disco_rules.discovery.search.kinds import population_kind

    network = load_network(args.network)
    if network is None or not population_kind(network[0].kind).drift:
        raise CliError(f"{args.network}: distill takes a drift network candidate RUN:ID "
                       "(of an lpo or ta-lpo run)")
    if args.evaluations < 1:
        raise CliError("--evaluations: expected a positive integer")
    from disco_rules.discovery.progress import Progress

    shape, weights = network
    with Progress().phase("distilling: programs scored", args.evaluations) as phase:
        result = distill(lambda r, a, p: np.asarray(shape.apply(weights, r, a, p)),
                         shape.temporally_aware,
                         DistillConfig(evaluations=args.evaluations, seed=args.seed),
                         on_evaluation=phase.advance)
    print(result.program, end="")
    print(f"# relative squared error against {args.network} on the grid: {result.error:.4f}")
    if args.output:
        _write_output(args.output, str(result.program))
        print(f"wrote {args.output}", file=sys.stderr)
    if args.check:
        _check_distilled(args.network, weights, result.program)


def _check_distilled(ref: str, weights: np.ndarray, program: Program) -> None:
    """The distilled program and the network (`weights`) it came from, trained as PPO's
    drift on the run's held-out tasks."""
    import functools

    from disco_rules.api import compilation_cache
    from disco_rules.cluster.local import LocalPool
    from disco_rules.discovery.evaluator import Evaluator
    from disco_rules.discovery.scoring import score_rules
    from disco_rules.discovery.search.networks import agent_of, network_of
    from disco_rules.dsl.interpreter import Encoding
    from disco_rules.dsl.slots import OBJECTIVE

    run_dir = _split_ref(ref)[0]
    config, tasks, baselines = _run_tasks(run_dir, "heldout")
    pool = _shown(LocalPool(functools.partial(Evaluator, config.population.max_statements,
                                              compilation_cache(config))), "checking")
    network, agent = network_of(config), agent_of(config)
    encoding = Encoding(slot=OBJECTIVE, max_statements=max(16, len(program.body)))
    programs = encoding.encode_population([program])
    rows = [(f"network {ref}", score_rules(pool, config, network, agent,
                                                 weights[None], tasks, baselines,
                                                 config.seed)[0]),
            ("distilled program", score_rules(pool, config, encoding, agent, programs, tasks,
                                              baselines, config.seed)[0])]
    print(f"trained as PPO's drift on the held-out tasks of {run_dir} "
          f"({config.tasks.seeds} seeds; 1 = tuned PPO):")
    width = max(len(name) for name, _ in rows)
    print(f"  {'':<{width}}{_score_header(len(tasks))}   (mean ± standard error over seeds)")
    for name, row in rows:
        print(f"  {name:<{width}}{_score_cells(row)}")


def _cmd_submit(args: argparse.Namespace) -> None:
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
    except AuthenticationError:
        raise CliError(f"{args.address} wants the cluster's auth token: set RAY_AUTH_MODE=token "
                       "and put the token in ~/.ray/auth_token or RAY_AUTH_TOKEN") from None
    except (ConnectionError, RuntimeError, ValueError) as error:
        lines = str(error).strip().splitlines()
        raise CliError(f"could not submit to {args.address}: "
                       f"{lines[0] if lines else type(error).__name__}") from None
    print(f"submitted job {job} to {args.address}: {entrypoint}")
    print(f"follow it with: ray job logs --follow {job} --address {args.address}")
    print(f"run directory on the cluster: {run_dir} (`disco status {run_dir}` there)")


def _cmd_status(args: argparse.Namespace) -> None:
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
        }, indent=2, default=_json_float))
        return
    state = "finished" if status.finished else \
        f"running ({status.writer})" if status.writer else \
        f"stopped (continue with: disco resume {status.run_dir})"
    print(f"run {status.run_dir}: {status.generations} of {status.target_generations} "
          f"generations, {state}")
    print(f"candidates {status.candidates}, trained {status.evaluated}, cached "
          f"{status.cache_hits}, screened {status.screened}, failed {status.failed}")
    if status.best_fitness is not None:
        print(f"population: best {_format_fitness(status.best_fitness)}, "
              f"median {_format_fitness(status.median_fitness)}")
    if status.best_validated is not None:
        cid, value = status.best_validated
        print(f"best by meta-validation: #{cid} ({_format_fitness(value)})")


def _cmd_plot(args: argparse.Namespace) -> None:
    from disco_rules.discovery import plot

    if args.levels and args.drift:
        raise CliError("plot: either --levels or --drift, not both (--levels plots a run's "
                       "sampled levels, --drift a candidate's drift)")
    if args.levels:
        with open_run(args.target) as store:
            sampled = store.sampled_levels()
        if not sampled:
            raise CliError(f"{args.target}: no sampled levels (the run has no [scheduler], "
                           "or no generation has finished)")
        plot.plot_levels(sampled, args.target, args.output)
    elif args.drift:
        plot.plot_drift(_drift_function(args.target), args.target, args.output)
    elif _split_ref(args.target) is not None:
        raise CliError(f"{args.target}: a candidate is plotted with --drift; a run "
                       f"directory without :ID plots the run")
    else:
        with open_run(args.target) as store:
            plot.plot_run(store, args.output)
    print(f"wrote {args.output}", file=sys.stderr)


def _drift_function(ref: str):
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


# -- the parser ----------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line, like every other error (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"disco: error: {message} (see `{self.prog} --help`)\n")


def _port(text: str) -> int:
    """argparse type: a TCP port, 0 (any free one) to 65535."""
    port = int(text) if text.strip().isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0-65535, got {text!r}")
    return port


def _positive(text: str) -> int:
    """argparse type: a positive integer."""
    number = int(text) if text.strip().isdigit() else 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return number


def _add_metrics_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--metrics-port", type=_port, metavar="PORT",
                         help="serve Prometheus metrics on this port (default: no server)")
    command.add_argument("--metrics-host", default="127.0.0.1", metavar="HOST",
                         help="address the metrics server binds to (default: 127.0.0.1)")


def build_parser() -> argparse.ArgumentParser:
    from disco_rules import export as export_formats

    parser = _Parser(prog="disco", description="Discover learning algorithms.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    launch = commands.add_parser("launch", help="start a search from a TOML config")
    launch.add_argument("config", help="config file (see examples/quickstart.toml)")
    launch.add_argument("--run-dir", help="where to write the run (default: runs/NAME-TIME)")
    launch.add_argument("--generations", type=int, help="override the config's generations")
    launch.add_argument("--seed", type=int,
                        help="override the config's seed (the same search, another seed)")
    launch.add_argument("--address", help="Ray cluster address (default: Ray in-process)")
    _add_metrics_options(launch)
    launch.set_defaults(handler=_cmd_launch)

    resume = commands.add_parser("resume", help="continue a run after a crash or Ctrl-C")
    resume.add_argument("run", help="run directory")
    resume.add_argument("--generations", type=int, help="run until this many generations")
    resume.add_argument("--address", help="Ray cluster address (default: Ray in-process)")
    _add_metrics_options(resume)
    resume.set_defaults(handler=_cmd_resume)

    inspect = commands.add_parser(
        "inspect", help="a run's best programs, one stored program (RUN:ID), or a program file")
    inspect.add_argument("target", help="RUN, RUN:ID or program file")
    inspect.add_argument("--top", type=int, default=10,
                         help="how many candidates of a run to list (default 10)")
    inspect.add_argument("--by", choices=["validation", "fitness"], default="validation",
                         help="rank a run's candidates by meta-validation score on held-out "
                              "tasks, validated ones first, as the launch summary does "
                              "(default), or by training fitness")
    inspect.add_argument("--json", action="store_true", help="machine-readable output")
    inspect.add_argument("--pareto", action="store_true",
                         help="the complexity-fitness hall of fame: per program size, the best "
                              "meta-validated program, the Pareto front and the chosen winner")
    inspect.add_argument("--levels", action="store_true",
                         help="the scheduler's level buffer: parameters, regret, times sampled")
    inspect.set_defaults(handler=_cmd_inspect)

    simplify = commands.add_parser("simplify", help="print the simplified program")
    simplify.add_argument("program", help="program file or RUN:ID")
    simplify.set_defaults(handler=_cmd_simplify)

    export = commands.add_parser("export", help="write the program or network as plain Python")
    export.add_argument("program", help="program file or RUN:ID (a program or a network)")
    export.add_argument("--format", required=True, choices=list(export_formats.FORMATS),
                        help=export_formats.formats_help())
    export.add_argument("--name", help="the Python name of an exported program (default: "
                                       "RUN_cID for a stored candidate, the program's own "
                                       "name for a file); a network keeps drift() or lpg()")
    export.add_argument("-o", "--output", help="file to write (default: stdout)")
    export.set_defaults(handler=_cmd_export)

    submit = commands.add_parser(
        "submit", help="hand a search to a Ray cluster's job server (ray job submit)")
    submit.add_argument("config", help="config file; its folder is sent as the working dir")
    submit.add_argument("--address", required=True,
                        help="the cluster's job server, e.g. http://127.0.0.1:8265")
    submit.add_argument("--run-dir", required=True,
                        help="run directory on the head node: an absolute path on storage "
                             "that outlives the job (a relative one lands in the job's "
                             "temporary working directory)")
    submit.add_argument("--generations", type=int, help="override the config's generations")
    submit.add_argument("--seed", type=int, help="override the config's seed")
    submit.set_defaults(handler=_cmd_submit)

    status = commands.add_parser("status", help="a run's progress, from its archive")
    status.add_argument("run", help="run directory")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=_cmd_status)

    score = commands.add_parser(
        "score", help="score programs or networks on a run's held-out (or training) tasks, "
                      "as the run scores its candidates")
    score.add_argument("candidates", nargs="+", help="program files or RUN:ID")
    score.add_argument("--run", required=True, help="run directory whose tasks to use")
    score.add_argument("--tasks", choices=["heldout", "train"], default="heldout",
                       help="the run's held-out tasks (default) or its training tasks")
    score.add_argument("--seeds", type=int, help="seeds per task (default: the run's)")
    score.set_defaults(handler=_cmd_score)

    transfer = commands.add_parser(
        "transfer", help="a run's winner (or RUN:ID) and program files against AdamW tuned per "
                         "task on the run's held-out tasks and variants of them, on fresh seeds")
    transfer.add_argument("run", metavar="RUN[:ID]",
                          help="run directory (scores its chosen winner: the simplest "
                               "meta-validated program within one standard error of the best) "
                               "or RUN:ID")
    transfer.add_argument("programs", nargs="*", metavar="PROGRAM",
                          help="program files (or RUN:ID) to score beside it and the "
                               "references (adam, lion, momentum)")
    transfer.add_argument("--seeds", type=_positive, default=8,
                          help="tuning seeds, and as many scoring seeds, per task (default 8)")
    transfer.add_argument("--run-seed", type=int,
                          help="the tuning keys' seed (default: the run's seed + 1, seeds its "
                               "meta-validation never used)")
    transfer.add_argument("--test-seed", type=int,
                          help="the scoring keys' seed (default: the tuning keys' seed + 1)")
    transfer.add_argument("--tasks", type=_positive,
                          help="evaluate only the first N tasks of the suite (the held-out "
                               "tasks come first, then the variants, cheapest first)")
    transfer.add_argument("--top", type=_positive, metavar="N",
                          help="the run's N best by meta-validation instead of its winner, "
                               "and a calibration table: each optimizer's in-search validation "
                               "score beside its transfer score, with their rank correlation")
    transfer.add_argument("--cache", metavar="FILE",
                          help="JSON file of finished tunings, read and extended after every "
                               "task (a rerun with other programs trains only those)")
    transfer.add_argument("--out", metavar="FILE.md",
                          help="also write the report here, and the first candidate's "
                               "curves beside it (.png)")
    transfer.set_defaults(handler=_cmd_transfer)

    distill = commands.add_parser(
        "distill", help="fit a drift program to a learned drift network (RUN:ID)")
    distill.add_argument("network", help="RUN:ID of an lpo or ta-lpo network")
    distill.add_argument("--evaluations", type=int, default=2000,
                         help="programs to score against the network (default 2000)")
    distill.add_argument("--seed", type=int, default=0,
                         help="seed of the program search (default 0)")
    distill.add_argument("-o", "--output", help="write the program to this file")
    distill.add_argument("--check", action="store_true",
                         help="then train PPO agents with it and with the network on the "
                              "run's held-out tasks")
    distill.set_defaults(handler=_cmd_distill)

    plot = commands.add_parser("plot", help="fitness over the run and the best candidate's "
                                            "curves against the baseline; or a drift")
    plot.add_argument("target", help="run directory; with --drift, RUN:ID or a program file")
    plot.add_argument("--drift", action="store_true",
                      help="the drift over (ratio, advantage) at several training progresses")
    plot.add_argument("--levels", action="store_true",
                      help="the parameters of the levels sampled over the run, by regret")
    plot.add_argument("-o", "--output", required=True, help="PNG file to write")
    plot.set_defaults(handler=_cmd_plot)
    return parser


def parse_arguments(argv: Sequence[str]) -> argparse.Namespace:
    """The parsed command line. Program files written after options (`disco transfer RUN
    --top 3 A.py`) join the command's PROGRAMs: argparse binds an optional list of
    positionals to the first run of them, and would refuse the later ones."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "programs", None), list) \
            and not any(word.startswith("-") for word in extra):
        args.programs += extra
    elif extra:
        parser.parse_args(argv)  # the usual one-line error for what is left over
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `disco` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_arguments(argv)
    args.argv = argv  # the command as typed, for reports that name it
    try:
        args.handler(args)
    except (CliError, ConfigError, StoreError, ClusterUnreachableError) as error:
        if os.environ.get("DISCO_DEBUG"):  # with what a one-line message hides
            print(debug_traceback(error), file=sys.stderr)
        print(f"disco: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - the CLI never shows a traceback by default
        if type(error) is sqlite3.DatabaseError:  # not a subclass (a query gone wrong)
            print(f"disco: error: a run's archive.sqlite is damaged ({error})", file=sys.stderr)
            return 2
        if isinstance(error, OSError) and error.filename is not None:  # a file named, the disk
            print(f"disco: error: {error.filename}: {error.strerror or error}", file=sys.stderr)
            return 2
        if isinstance(error, OSError) and error.errno in _NO_ROOM:  # a write that did not fit
            print(f"disco: error: cannot write ({error.strerror}): free some disk space, or "
                  "raise the file-size limit (ulimit -f), and run it again", file=sys.stderr)
            return 2
        if os.environ.get("DISCO_DEBUG"):
            raise
        print(f"disco: internal error: {type(error).__name__}: {error} "
              "(set DISCO_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
