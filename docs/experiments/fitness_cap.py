"""How well training fitness predicts the held-out score, per cap on one task's score.

Reads a run's archive (read-only) and, over its meta-validated candidates, prints Spearman's
rank correlation between the held-out (meta-validation) mean and the mean training score with
each task's score counted at most `cap`, for all of them and for those within 0.25 of AdamW.

    python docs/experiments/fitness_cap.py runs/flagship
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np
from scipy.stats import spearmanr

from disco_rules.discovery.store import RunStore

CAPS = (5.0, 2.0, 1.0, 0.5, 0.25, 0.1)


def main(run_dir: str) -> None:
    with RunStore.open(run_dir, write=False) as store:
        validation_rows = store.query("SELECT candidate_id, task, score FROM validation")
        scores = store.query("SELECT candidate_id, task, score FROM scores")
    held: dict[int, list[float]] = defaultdict(list)
    for cid, _, score in validation_rows:
        held[cid].append(score)
    heldout_tasks = {task for _, task, _ in validation_rows}
    train: dict[int, list[float]] = defaultdict(list)
    for cid, task, score in scores:
        if task not in heldout_tasks and score is not None:
            train[cid].append(score)
    most = max(map(len, held.values()))
    ids = sorted(c for c in held if len(held[c]) == most and train[c])
    validation = np.array([np.mean(held[c]) for c in ids])
    near = validation > -0.25
    print(f"{len(ids)} candidates meta-validated on all {most} held-out tasks, "
          f"{near.sum()} within 0.25 of AdamW there")
    print("cap   rho(all)  rho(near)  best by capped fitness (its held-out rank)")
    for cap in CAPS:
        fitness = np.array([np.mean(np.minimum(train[c], cap)) for c in ids])
        best = int(np.argmax(fitness))
        rank = int((validation > validation[best]).sum()) + 1
        print(f"{cap:<5g} {spearmanr(fitness, validation)[0]:+.2f}     "
              f"{spearmanr(fitness[near], validation[near])[0]:+.2f}      #{ids[best]} ({rank})")


if __name__ == "__main__":
    main(sys.argv[1])
