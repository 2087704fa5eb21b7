"""Which meta-validated candidate each choice rule picks in program runs: the search's own
(the simplest within one paired standard error of the best, selection.simplest_within_noise),
the best held-out mean, and the best lower bound (mean - 2 SE, the verdict's own test).

    python docs/experiments/choice_rules.py runs/flagship runs/capped runs/v3 runs/tuned
"""

from __future__ import annotations

import sys

from disco_rules.discovery.selection import Validated, simplest_within_noise
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def validated(run_dir: str) -> list[Validated]:
    """The run's meta-validated programs: id, simplified size, scores in task order."""
    with RunStore.open(run_dir, write=False) as store:
        return [Validated(record.id, len(simplify(parse(record.text)).body),
                          tuple(v.score for v in sorted(rows, key=lambda v: v.task)))
                for record, rows in store.validated()]


def described(candidate: Validated) -> str:
    return (f"#{candidate.id} ({candidate.size} statements, "
            f"{candidate.mean:+.3f} ± {candidate.standard_error:.3f})")


def main(run_dirs: list[str]) -> None:
    print("| run | simplest within one SE (the search's) | best mean | best mean - 2 SE |")
    print("|---|---|---|---|")
    for run_dir in run_dirs:
        candidates = validated(run_dir)
        chosen = simplest_within_noise(candidates)
        best = max(candidates, key=lambda c: c.mean)
        bound = max(candidates, key=lambda c: c.mean - 2 * c.standard_error)
        print(f"| {run_dir} | {described(chosen)} | {described(best)} | {described(bound)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
