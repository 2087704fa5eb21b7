"""Which meta-validated candidate each choice rule picks in program runs: the search's former
rule (the simplest within one paired standard error of the best, the one-standard-error
rule, kept here as `simplest_within_noise`), the best held-out mean, and the best lower bound
(mean - 2 SE, the verdict's own test: `selection.surest`, the search's rule since).

    python docs/experiments/choice_rules.py runs/flagship runs/capped runs/v3 runs/tuned
"""

from __future__ import annotations

import math
import sys

import numpy as np

from disco_rules.discovery.selection import Validated, standard_error, surest
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def validated(run_dir: str) -> list[Validated]:
    """The run's meta-validated programs: id, simplified size, scores in task order."""
    with RunStore.open(run_dir, write=False) as store:
        return [Validated(record.id, len(simplify(parse(record.text)).body),
                          tuple(v.score for v in sorted(rows, key=lambda v: v.task)))
                for record, rows in store.validated()]


def simplest_within_noise(candidates: list[Validated]) -> Validated:
    """The smallest rule whose mean is at least the best mean less one standard error of
    their paired gap (ties: the higher mean, then the lower id)."""
    finite = [c for c in candidates if math.isfinite(c.mean)]
    best = min(finite, key=lambda c: (-c.mean, c.id))

    def gap_error(other: Validated) -> float:
        if len(other.scores) != len(best.scores):
            return best.standard_error
        return standard_error(np.subtract(best.scores, other.scores)) \
            if len(best.scores) >= 2 else 0.0

    close = [c for c in finite if c.mean >= best.mean - gap_error(c)]
    return min(close, key=lambda c: (c.size, -c.mean, c.id))


def described(candidate: Validated) -> str:
    return (f"#{candidate.id} ({candidate.size} statements, "
            f"{candidate.mean:+.3f} ± {candidate.standard_error:.3f})")


def main(run_dirs: list[str]) -> None:
    print("| run | simplest within one SE (the search's former) | best mean | "
          "best mean - 2 SE (the search's since) |")
    print("|---|---|---|---|")
    for run_dir in run_dirs:
        candidates = validated(run_dir)
        chosen = simplest_within_noise(candidates)
        best = max(candidates, key=lambda c: c.mean)
        bound = surest(candidates)
        print(f"| {run_dir} | {described(chosen)} | {described(best)} | {described(bound)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
