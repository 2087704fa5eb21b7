"""Commands that read what a run or a file holds: inspect (a run, its Pareto front, its level
buffer, one candidate, a program file) and simplify."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from disco_rules.discovery.cli.errors import CliError
from disco_rules.discovery.cli.refs import load_program, newest_checkpoint, open_run, split_ref
from disco_rules.discovery.cli.summary import shortlist_lines, winner_verdict
from disco_rules.discovery.cli.tables import format_fitness, json_float
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.inner.schedules import suffix
from disco_rules.discovery.store import CandidateRecord, RunStore
from disco_rules.dsl.parser import parse
from disco_rules.dsl.program import Program, ProgramError


def simplify(args: argparse.Namespace) -> None:
    """`disco simplify`: the simplified program and how many statements went."""
    from disco_rules.dsl.simplify import simplify as simplify_program

    program = load_program(args.program)
    simplified = simplify_program(program)
    print(simplified, end="")
    removed = len(program.body) - len(simplified.body)
    print(f"# {len(program.body)} -> {len(simplified.body)} statements ({removed} removed)")


def inspect(args: argparse.Namespace) -> None:
    """`disco inspect`: a run, its Pareto front or level buffer, a candidate, or a file."""
    stored = split_ref(args.target)
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


def _ranked(store: RunStore, top: int, by: str) -> list[CandidateRecord]:
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
                              "top": rows}, indent=2, default=json_float))
            return
        order = ("validated candidates first, by meta-validation score on held-out tasks, "
                 "then by training fitness" if by == "validation" else "by training fitness")
        print(f"run {run_dir}: {store.count()} candidates archived, "
              f"{len(store.top(10 ** 9))} distinct candidates; {order}")
        print(f"{'id':>6} {'gen':>4} {'fitness':>8} {'valid.':>8} {'stmts':>5}  hash")
        for row in rows:
            validation = "" if row["validation"] is None else format_fitness(row["validation"])
            statements = "-" if row["statements"] is None else row["statements"]
            print(f"{row['id']:>6} {row['generation']:>4} {format_fitness(row['fitness']):>8} "
                  f"{validation:>8} {statements:>5}  {row['hash']}")


def _inspect_pareto(run_dir: Path, as_json: bool) -> None:
    """The complexity-fitness hall of fame: per program size the best meta-validated program,
    marking the Pareto front, the scored shortlist, and the chosen winner
    (`pareto.chosen_winner`), listed in its size's place where it is not that size's best."""
    from disco_rules.discovery.pareto import chosen_winner, shortlisted, validated_programs
    from disco_rules.discovery.selection import MIN_SAMPLES_FOR_SE, best_per_size, pareto_front
    from disco_rules.dsl.simplify import simplify

    with open_run(run_dir) as store:
        validated = validated_programs(store)
        chosen = chosen_winner(store)
        fresh = shortlisted(store)
        listed = sorted({*best_per_size(validated), *([] if chosen is None else [chosen])},
                        key=lambda c: (c.size, -c.mean, c.id))
        texts = {c.id: str(simplify(parse(store.candidate(c.id).text))) for c in listed}
        verdict_lines, verdict = ([], None) if chosen is None else \
            winner_verdict(store, chosen.id)
        confirmed = chosen is not None and bool(store.confirmation_of(chosen.id))
        shortlist_text = shortlist_lines(store)
    if not validated:
        raise CliError(f"{run_dir}: no meta-validated program yet (a network run, or no "
                       "validation has run)")
    front = {c.id for c in pareto_front(validated)}
    rows = [{"size": c.size, "id": c.id, "validation": c.mean,
             "standard_error": c.standard_error, "lower_bound": c.lower_bound,
             "samples": len(c.scores), "pareto": c.id in front,
             "chosen": chosen is not None and c.id == chosen.id, "program": texts[c.id]}
            for c in listed]
    if as_json:
        print(json.dumps({"run": str(run_dir), "validated": len(validated),
                          "chosen": None if chosen is None else chosen.id,
                          "shortlist": [{"id": c.id, "mean": c.mean,
                                         "standard_error": c.standard_error,
                                         "lower_bound": c.lower_bound} for c in fresh],
                          "verdict": None if verdict is None else {
                              "kind": verdict.kind, "mean": verdict.mean, "se": verdict.se,
                              "families_ahead": verdict.families_ahead,
                              "families": verdict.families,
                              "standard_errors_needed": verdict.needs,
                              "fresh_seeds": confirmed,
                              "text": verdict_lines[0].removeprefix("verdict: ")},
                          "sizes": rows}, indent=2, default=json_float))
        return
    print(f"run {run_dir}: the best of {len(validated)} meta-validated programs per size "
          "(statements of the simplified program)")
    print(f"valid. = mean score over the held-out tasks, +- its standard error and mean - 2 SE "
          f"(from {MIN_SAMPLES_FOR_SE} results or more); * on the Pareto front; > chosen: the "
          "highest mean - 2 SE (on the shortlist's fresh seeds once they are scored), the "
          "program most surely ahead of the baseline")
    print(f"{'':2}{'size':>4} {'id':>6} {'valid.':>8} {'+-':>6} {'-2SE':>8}")
    for row in rows:
        mark = (">" if row["chosen"] else " ") + ("*" if row["pareto"] else " ")
        enough = row["samples"] >= MIN_SAMPLES_FOR_SE
        error = f"{row['standard_error']:.3f}" if enough else ""
        lower = format_fitness(row["lower_bound"]) if enough else ""
        print(f"{mark}{row['size']:>4} {row['id']:>6} {format_fitness(row['validation']):>8} "
              f"{error:>6} {lower:>8}")
    for line in shortlist_text:
        print(line)
    if chosen is not None:
        print(f"\nchosen #{chosen.id}:\n{texts[chosen.id]}", end="")
        print("\n".join(["", *verdict_lines]))


def _inspect_levels(run_dir: Path, as_json: bool) -> None:
    """What the run's levels are drawn from, and the scheduler's level buffer in the newest
    checkpoint, highest regret first."""
    from disco_rules.api import find_task_modules
    from disco_rules.discovery.levels import Levels, buffer_rows
    from disco_rules.discovery.scoring import FITNESS_CAP

    with open_run(run_dir) as store:
        checkpoint = newest_checkpoint(store)
        sampled = store.sampled_levels()
        find_task_modules(store)
        levels = Levels.from_config(parse_config(store.config_text), FITNESS_CAP)
    if checkpoint is None or "levels" not in checkpoint[1]:
        raise CliError(f"{run_dir}: no level buffer (the run has no [scheduler], or no "
                       "generation has finished)")
    generation, buffer = checkpoint[0], buffer_rows(checkpoint[1]["levels"])
    if as_json:
        print(json.dumps({"run": str(run_dir), "generation": generation, "buffer": buffer},
                         indent=2, default=json_float))
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
                "scores": {s.task: {"score": s.score, "loss": s.loss, "lr": s.lr,
                                    "schedule": s.schedule}
                           for s in scores}, "validation": validation,
            }, indent=2, default=json_float))
            return
        if record.weights is not None:
            print(f"{record.kind} network {record.text}, {record.weights.size} weights "
                  f"(norm {float((record.weights ** 2).sum()) ** 0.5:.3f})")
        else:
            print(record.text, end="")
        print(f"candidate #{record.id}, generation {record.generation}: {record.status}"
              f"{' (' + record.reason + ')' if record.reason else ''}, "
              f"fitness {format_fitness(record.fitness)}")
        print(f"hash {record.hash}  fingerprint {record.fingerprint}")
        print("lineage: " + " <- ".join(
            f"#{r.id} ({format_fitness(r.fitness)})" for r in lineage))
        for s in scores:
            kind = "held-out" if s.task in validation else "training"
            detail = f"  loss {s.loss:.4g}  lr {s.lr:g}{suffix(s.schedule)}" \
                if record.weights is None else \
                f"  final return {s.curve[-1]:.4g}" if s.curve else ""
            print(f"  {kind:8s} {s.task}: score {format_fitness(s.score)}{detail}")
