"""Two program runs side by side, round by round of meta-validation: the best candidate
validated in the round (held-out mean), the mean of the round's candidates, the best so far,
and which warm start the round's fully trained candidates descend from.

    python docs/experiments/compare_rounds.py runs/flagship runs/capped
"""

from __future__ import annotations

import sys
from collections import Counter

import numpy as np

from disco_rules.discovery.store import RunStore


def rounds(run_dir: str) -> list[tuple[int, int, float, float, float, Counter]]:
    """Per validation round: (generation, best id, its held-out mean, the round's mean, best so
    far, warm-start roots of the fully trained candidates born since the previous round)."""
    rows, previous, best = [], -1, -np.inf
    with RunStore.open(run_dir, write=False) as store:
        for (generation,) in store.query("SELECT DISTINCT generation FROM validation ORDER BY 1"):
            means = dict(store.query(
                "SELECT candidate_id, AVG(score) FROM validation WHERE generation = ? "
                "GROUP BY candidate_id", (generation,)))
            top = max(means, key=means.get)
            best = max(best, means[top])
            born = store.query("SELECT id FROM candidates WHERE generation > ? AND generation "
                               "<= ? AND status = 'ok'", (previous, generation))
            roots = Counter(store.lineage(cid)[-1].text.split("(")[0].removeprefix("def ")
                            for (cid,) in born)
            rows.append((generation, top, means[top], float(np.mean(list(means.values()))), best,
                         roots))
            previous = generation
    return rows


def main(*run_dirs: str) -> None:
    for run_dir in run_dirs:
        print(run_dir)
        print("  gen  best of the round  round mean  best so far  trained since the last round, "
              "by warm start")
        for generation, top, mean, average, best, roots in rounds(run_dir):
            lines = ", ".join(f"{name} {n}" for name, n in roots.most_common())
            print(f"  {generation:3d}  #{top:<5d} {mean:+.3f}     {average:+.3f}      {best:+.3f}"
                  f"       {lines}")


if __name__ == "__main__":
    main(*sys.argv[1:])
