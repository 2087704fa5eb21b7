"""The summary a launch or resume ends with: winners, held-out tasks, what a score means,
the verdict on the chosen winner, and the commands to run next."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

from disco_rules.discovery.cli.tables import baseline_note, format_fitness
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.parser import parse

if TYPE_CHECKING:
    from disco_rules.discovery.verdict import Verdict


def print_summary(store: RunStore, elapsed: float) -> None:
    """The run's summary on stdout, `elapsed` seconds after its generations began."""
    from disco_rules.discovery.search.kinds import population_kind
    from disco_rules.discovery.verdict import with_error

    print(f"\nrun directory: {store.run_dir}  ({store.count()} candidates archived, "
          f"{elapsed:.0f} s)")
    winners = store.top(3, by="validation")
    if winners:
        print("best by meta-validation score on held-out tasks:")
        for record, value in winners:
            print(f"  #{record.id:<5d} validation {format_fitness(value)}  "
                  f"training fitness {format_fitness(record.fitness)}")
        from disco_rules.discovery.pareto import chosen_winner

        chosen = chosen_winner(store)
        listed = shortlist_lines(store)
        for line in listed:
            print(line)
        if chosen is not None:
            on = "mean - 2 SE on the shortlist's fresh seeds" if listed \
                else "validation mean - 2 SE"
            print(f"chosen: #{chosen.id}, the program most surely ahead of the baseline "
                  f"(highest {on}; {chosen.size} statements, validation "
                  f"{with_error(chosen.mean, chosen.standard_error, len(chosen.scores))})")
        best = winners[0][0] if chosen is None else store.candidate(chosen.id)
        held_out = {v.task: v.score for v in store.validation_of(best.id)}
        baselines = {task: store.baseline(task) for task in held_out}
        for task in sorted(held_out):
            baseline = baselines[task]
            print(f"  held-out {task}{'' if baseline is None else baseline_note(baseline)}")
        print(_score_scale(baselines))
        for line in winner_verdict(store, best.id)[0]:
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


def shortlist_lines(store: RunStore) -> list[str]:
    """The scored shortlist (`pareto.shortlisted`), each program's validation and shortlist
    scores; none before it is scored or without one."""
    from disco_rules.discovery.pareto import shortlisted, validated_programs
    from disco_rules.discovery.verdict import with_error

    listed = shortlisted(store)
    if not listed:
        return []
    validated = {c.id: c for c in validated_programs(store)}
    seeds = store.shortlist_of(listed[0].id)[0].seeds
    lines = [f"shortlist: the {len(listed)} validated programs most surely ahead, trained "
             f"again at their tuned points on {seeds} fresh seed{'' if seeds == 1 else 's'} "
             "per held-out task:"]
    for c in listed:
        v = validated[c.id]
        lines.append(f"  #{c.id:<5d} validation {with_error(v.mean, v.standard_error, len(v.scores))}"
                     f"  shortlist {with_error(c.mean, c.standard_error, len(c.scores))}")
    return lines


def winner_verdict(store: RunStore, winner: int) -> tuple[list[str], Verdict | None]:
    """(lines, Verdict) on the run's winner against its tuned baseline, grouped by family
    (discovery/verdict.py), one score per held-out task (so the standard error is over
    tasks). Where the run confirmed the winner (discovery/confirmation.py) the verdict is
    judged on those fresh seeds, beside its numbers on the seeds that chose it; otherwise on
    its meta-validation scores: its verdict line if it beats the baseline beyond noise, else
    plainly that no candidate does (or that the winner does not and which validated candidate
    does). On RL tasks a score is the final return normalised so that 1 = the tuned baseline
    (PPO; A2C for LPG), so margins are over 1. No lines (None) if the winner was never
    validated."""
    from disco_rules.discovery.search.kinds import population_kind
    from disco_rules.discovery.verdict import (Kind, by_family, confirmed_text, judge,
                                               winner_text)

    scores = {record.id: {v.task: v.score for v in records}
              for record, records in store.validated()}
    if winner not in scores:
        return [], None
    rl = _is_rl([store.baseline(task) for task in scores[winner]])
    reference = 1.0 if rl else 0.0
    baseline = "tuned AdamW"
    if rl:  # the agent's own algorithm, as the run's population kind names it
        kind = population_kind(parse_config(store.config_text).population.kind)
        baseline = f"tuned {kind.agent_baseline}"
    verdicts = {cid: judge(by_family(values), reference) for cid, values in scores.items()}
    confirmation = store.confirmation_of(winner)
    if confirmation:
        fresh = judge(by_family({row.task: row.score for row in confirmation}), reference)
        seeds = confirmation[0].seeds
        listed = store.shortlist_of(winner)
        chose = f"on the seeds that chose it: {verdicts[winner].numbers()}" if not listed else (
            "on the shortlist's seeds that chose it: "
            f"{judge(by_family({r.task: r.score for r in listed}), reference).numbers()}; on "
            f"its validation's: {verdicts[winner].numbers()}")
        lines = [f"verdict: {confirmed_text(f'#{winner}', fresh, baseline)}",
                 f"  on {seeds} fresh seed{'' if seeds == 1 else 's'} per held-out task, each "
                 f"at its tuned lr; {chose}"]
        lines += _against_warm_start(store, winner, scores)
        lines.append(f"  (`disco transfer {store.run_dir}` retests it on variants of the "
                     "held-out tasks)")
        return lines, fresh
    beating = sorted(((f"#{cid}", v) for cid, v in verdicts.items()
                      if v.kind is Kind.BEATS and cid != winner), key=lambda item: -item[1].mean)
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
    from disco_rules.discovery.search.kinds import population_kind
    from disco_rules.discovery.verdict import against

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


def _is_rl(baselines: Sequence[Any]) -> bool:
    """Whether these archived baselines are of RL tasks: each RL baseline is a return, with
    no loss; every optimizer baseline has one (also in runs of disco 0.1, which did not name
    the optimizer). False when none is archived."""
    found = [b for b in baselines if b is not None]
    return bool(found) and all(math.isnan(b.loss) for b in found)


def _score_scale(baselines: dict[str, Any]) -> str:
    """What a score means (optimizer tasks: against the tuned AdamW; RL tasks: normalised
    return); whether the winner beats the baseline is the verdict's to say, with its noise."""
    if _is_rl(list(baselines.values())):
        return ("score: final return normalised per task, 0 = an untrained agent, 1 = the "
                "tuned baseline (PPO; A2C for LPG), above 1 = better than it")
    return ("score: log(baseline loss / candidate loss) per task, 0 = the tuned baseline, "
            "negative = worse than it, +0.1 = about 10% lower loss")
