"""The complexity-fitness hall of fame of a run (`disco inspect RUN --pareto`): its
meta-validated programs as `selection.Validated` rows, sized by their simplified program, and
the run's chosen winner among them."""

from __future__ import annotations

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
