"""How many of a run's children were near copies of an earlier working candidate?

Replays a finished run's archive in id order: a child trained on every task (generation 1
on, not screened) counts as a near copy when its rollout (`dsl.identity.rollout`) is within
TOL of a step of a working candidate of an earlier generation, as `[population]
near_duplicate = TOL` would have found it; prints the count and the validated copies.

    tar xzf docs/experiments/flagship9_gen20.tar.gz -C runs
    python docs/experiments/near_copies.py runs/flagship9 0.01

What it does not establish: what the run would have done with the option (its children and
tournaments would differ from generation 1 on).
"""

from __future__ import annotations

import sys

import numpy as np

from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import RunStore
from disco_rules.dsl.identity import nearest_rollout, rollout
from disco_rules.dsl.parser import parse
from disco_rules.dsl.simplify import simplify


def main(run_dir: str, tol: float) -> None:
    store = RunStore.open(run_dir, write=False)
    validated = {cid for (cid,) in store.query("SELECT DISTINCT candidate_id FROM validation")}
    rows = store.query("SELECT id, generation, text, status FROM candidates "
                       "WHERE status != ? ORDER BY id", (CandidateStatus.CACHED.value,))
    working: dict[int, tuple[int, np.ndarray]] = {}  # id -> (generation, rollout)
    copies, trained, validated_copies = [], 0, []
    for cid, generation, text, status in rows:
        trace = rollout(simplify(parse(text)))
        source, distance = nearest_rollout(
            trace, {s: other for s, (born, other) in working.items() if born < generation}, tol)
        if generation > 0 and status != CandidateStatus.SCREENED.value:
            trained += 1
            copies += [(cid, source, distance)] if source is not None else []
        if source is not None and cid in validated:
            validated_copies.append((cid, source, distance))
        if status == CandidateStatus.OK.value and trace is not None:
            working[cid] = (generation, trace)
    print(f"{run_dir}: {len(copies)} of {trained} children trained on every task (generation "
          f"1 on) were within {tol:g} of a step of an earlier generation's working candidate")
    for cid, source, distance in validated_copies:
        print(f"  validated #{cid}: a copy of #{source} ({distance:.2g} of a step apart)")


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
