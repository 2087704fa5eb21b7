"""The complexity-fitness hall of fame of a run (`disco inspect RUN --pareto`): its
meta-validated programs as `selection.Validated` rows, sized by their simplified program, its
shortlist, the run's chosen winner among them, and what still awaits fresh seeds."""

from __future__ import annotations

import math
from itertools import islice

from disco_rules.discovery.config import parse_config
from disco_rules.discovery.selection import Validated, ranked_by_surety, surest
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def validated_programs(store: RunStore) -> list[Validated]:
    """The run's meta-validated programs (network candidates have no statements and are left
    out): size = statements of the simplified program, scores = one per held-out task."""
    return [Validated(record.id, len(simplify(parse(record.text)).body),
                      tuple(v.score for v in records))
            for record, records in store.validated() if record.weights is None]


def shortlist(store: RunStore) -> list[Validated]:
    """The run's shortlist: its `validation.shortlist` validated programs most surely ahead
    (`selection.ranked_by_surety`) among those that can be trained again at their tuned
    points (`_tuned_points_archived`); none when fewer than two (nothing to choose between)."""
    size = parse_config(store.config_text).validation.shortlist
    if size < 2:
        return []
    listed = list(islice((c for c in ranked_by_surety(validated_programs(store))
                          if _tuned_points_archived(store, c.id)), size))
    return listed if len(listed) >= 2 else []


def shortlisted(store: RunStore) -> list[Validated]:
    """The shortlist with each program's scores on the shortlist's fresh seeds (one per
    held-out task) in place of its validation's; none until all of it is scored."""
    listed = [Validated(c.id, c.size, tuple(row.score for row in store.shortlist_of(c.id)))
              for c in shortlist(store)]
    return listed if all(c.scores for c in listed) else []


def awaiting_shortlist(store: RunStore) -> list[Validated]:
    """The shortlist's programs yet to be scored on the shortlist's fresh seeds."""
    return [c for c in shortlist(store) if not store.shortlist_of(c.id)]


def chosen_winner(store: RunStore) -> Validated | None:
    """The run's winner among its meta-validated programs: the surest on the shortlist's
    fresh seeds once its shortlist is scored, else the surest validated (`selection.surest`);
    None for a network run or before any validation."""
    validated = validated_programs(store)
    fresh = surest(shortlisted(store))
    if fresh is None:
        return surest(validated)
    return next(c for c in validated if c.id == fresh.id)


def awaiting_confirmation(store: RunStore) -> Validated | None:
    """The chosen winner when it is yet to be confirmed on fresh seeds
    (discovery/confirmation.py): its shortlist scored, it not confirmed, and its tuned lr and
    the baseline's loss archived on every held-out task it was validated on (an optimizer
    run's; an RL run's baselines have no loss, a network run no validated program). None
    otherwise."""
    if awaiting_shortlist(store):
        return None
    chosen = chosen_winner(store)
    if chosen is None or store.confirmation_of(chosen.id) \
            or not _tuned_points_archived(store, chosen.id):
        return None
    return chosen


def unfinished(store: RunStore) -> bool:
    """Whether a run past its last generation still has work: its shortlist or its
    confirmation (what `disco resume` of a finished run does)."""
    return bool(awaiting_shortlist(store)) or awaiting_confirmation(store) is not None


def _tuned_points_archived(store: RunStore, candidate_id: int) -> bool:
    """Whether a validated candidate can be trained again at its tuned points: its tuned lr
    and the baseline's finite loss archived on every held-out task it was validated on."""
    tuned = {row.task: row.lr for row in store.scores_of(candidate_id)}
    for row in store.validation_of(candidate_id):
        baseline = store.baseline(row.task)
        if not (math.isfinite(tuned.get(row.task, math.nan)) and baseline is not None
                and math.isfinite(baseline.loss)):
            return False
    return True
