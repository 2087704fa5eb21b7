"""What a program search's children became, by the warm start they descend from.

Reads a finished run's archive: each child of generations 1 on is traced through its
parents to a warm start (generation 0's mutants count as their warm start's); per lineage
and per generation it counts children, new functions trained on every task, (near) copies
and refusals, and the best fitness at birth of a new function; then each generation's
parents by lineage (a parent was a member of that generation's population) and the last
checkpoint's population.

    tar xzf docs/experiments/flagship_screen7_gen20.tar.gz -C runs
    python docs/experiments/lineages.py runs/flagship_screen7

What it does not establish: why a lineage did well (a child's fitness at birth is its mean
over one generation's tasks; running fitness changes as a member is scored on more levels).
"""

from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict

from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import RunStore


def outcome(status: str, reason: str | None) -> str:
    """A child's outcome in a few words: trained, copy, near copy, unstable, step count,..."""
    reason = reason or ""
    if status == CandidateStatus.CACHED.value:
        return "near copy" if reason.startswith("nearly") else "copy"
    if status == CandidateStatus.SCREENED.value:
        if reason.startswith("unstable"):
            return "unstable"
        if "counted in steps" in reason or "within 3000" in reason:
            return "step count"
        return "screen task"
    return "trained" if status == CandidateStatus.OK.value else "failed in training"


def main(run_dir: str) -> None:
    store = RunStore.open(run_dir, write=False)
    rows = store.query("SELECT id, generation, parent_id, status, reason, fitness "
                       "FROM candidates ORDER BY id")
    parent = {cid: pid for cid, _, pid, _, _, _ in rows}
    warm = [cid for cid, generation, pid, *_ in rows if generation == 0 and pid is None]

    def root(cid: int) -> int:
        while parent[cid] is not None:
            cid = parent[cid]
        return cid

    counts: dict[int, Counter] = defaultdict(Counter)
    best: dict[int, tuple[float, int]] = {}
    distinct: dict[int, set[int]] = defaultdict(set)  # generation -> its children's parents
    for cid, generation, pid, status, reason, fitness in rows:
        if generation == 0:
            continue
        lineage = root(cid)
        kind = outcome(status, reason)
        counts[lineage][kind] += 1
        distinct[generation].add(pid)
        if kind == "trained" and fitness is not None and math.isfinite(fitness):
            best[lineage] = max(best.get(lineage, (-math.inf, -1)), (fitness, cid))
    parents = {g: Counter(root(pid) for pid in ids) for g, ids in distinct.items()}

    kinds = ["trained", "copy", "near copy", "unstable", "step count", "screen task",
             "failed in training"]
    print(f"children of generations 1 on, by warm start ({run_dir})")
    print(f"{'warm start':>10} {'children':>8} " + " ".join(f"{k:>12}" for k in kinds)
          + "  best new function at birth")
    for lineage in warm:
        c = counts[lineage]
        top = best.get(lineage)
        print(f"{'#' + str(lineage):>10} {sum(c.values()):>8} "
              + " ".join(f"{c[k]:>12}" for k in kinds)
              + (f"  #{top[1]} {top[0]:+.3f}" if top else "  none"))
    print("\ndistinct parents per generation, by warm start: "
          + " ".join(f"#{w}" for w in warm))
    for generation in sorted(parents):
        print(f"  generation {generation:>2}: "
              + " ".join(f"{parents[generation][w]:>3}" for w in warm))
    checkpoint = store.load_checkpoint()
    if checkpoint is not None:
        generation, state = checkpoint
        members = state["population"]
        by_lineage = Counter(root(m["id"]) for m in members)
        fittest = max(members, key=lambda m: m["fitness"])
        print(f"\npopulation after generation {generation}: "
              + ", ".join(f"{by_lineage[w]} of #{w}'s lineage" for w in warm)
              + f"; fittest #{fittest['id']} {fittest['fitness']:+.3f}; warm starts still "
              f"in it: {sorted(m['id'] for m in members if m['id'] in warm) or 'none'}")


if __name__ == "__main__":
    main(sys.argv[1])
