"""The complexity-fitness hall of fame of a run (`disco inspect RUN --pareto`): its
meta-validated programs as `selection.Validated` rows, sized by their simplified program, and
the run's chosen winner among them, and whether it awaits its confirmation."""

from __future__ import annotations

import math

from disco_rules.discovery.selection import Validated, surest
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def validated_programs(store: RunStore) -> list[Validated]:
    """The run's meta-validated programs (network candidates have no statements and are left
    out): size = statements of the simplified program, scores = one per held-out task."""
    return [Validated(record.id, len(simplify(parse(record.text)).body),
                      tuple(v.score for v in records))
            for record, records in store.validated() if record.weights is None]


def chosen_winner(store: RunStore) -> Validated | None:
    """The run's winner among its meta-validated programs (`selection.surest`); None for a
    network run or before any validation."""
    return surest(validated_programs(store))


def awaiting_confirmation(store: RunStore) -> Validated | None:
    """The chosen winner when it is yet to be confirmed on fresh seeds
    (discovery/confirmation.py): not confirmed, and its tuned lr and the baseline's loss
    archived on every held-out task it was validated on (an optimizer run's; an RL run's
    baselines have no loss, a network run no validated program). None otherwise."""
    chosen = chosen_winner(store)
    if chosen is None or store.confirmation_of(chosen.id):
        return None
    tuned = {row.task: row.lr for row in store.scores_of(chosen.id)}
    for row in store.validation_of(chosen.id):
        baseline = store.baseline(row.task)
        if not (math.isfinite(tuned.get(row.task, math.nan)) and baseline is not None
                and math.isfinite(baseline.loss)):
            return None
    return chosen
