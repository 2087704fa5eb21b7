"""`disco transfer`'s tasks one after another in this process vs at once on Ray actors.

Runs the same small suite (the held-out tasks below and their variants, every optimizer
tuned over a small grid) twice in this process: in the driver, as `disco transfer` does by
default, and on `--actors` Ray actors of 1 CPU each started in-process (`make_transfer_pool`,
as `disco transfer --address` does on a cluster). Each way compiles its own trainers (no
persistent compilation cache), so the times include compilation, as a user's first transfer
does. Prints both wall times, their ratio and whether the two gave the same numbers (they
should, bit for bit). Ray's start is timed apart. About 2-4 minutes on 2 cores.

    python bench/transfer_pool.py [--actors 2] [--tasks 6]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from disco_rules.api import make_transfer_pool
from disco_rules.discovery import transfer
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.plan import TaskPlan
from disco_rules.dsl import library

CONFIG = """\
seed = 0
[tasks]
train = [{ family = "quadratic", dim = 4, horizon = 20 }]
heldout = [{ family = "mlp_regression", width = 16, batch_size = 32, horizon = 200 },
           { family = "quadratic", dim = 8, horizon = 200 }]
[cluster]
compilation_cache = false
num_actors = %d
"""
GRID = transfer.Grid((1e-3, 1e-2, 1e-1), (0.0, 1e-2), (transfer.CONSTANT,), past_edge=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=6)
    args = parser.parse_args()
    config = parse_config(CONFIG % args.actors)
    plan = TaskPlan.from_config(config)
    programs = {name: library.program(name) for name in ("sgd", "adam", "lion")}
    kwargs = dict(seeds=2, run_seed=1, test_seed=2, grid=GRID, tasks=args.tasks)

    started = time.perf_counter()
    here = transfer.transfer(plan, programs, **kwargs)
    here_s = time.perf_counter() - started

    started = time.perf_counter()
    pool = make_transfer_pool(config, None)
    ray_start_s = time.perf_counter() - started
    try:
        started = time.perf_counter()
        pooled = transfer.transfer(plan, programs, pool=pool, **kwargs)
        pooled_s = time.perf_counter() - started
    finally:
        pool.shutdown()
    same = all(np.array_equal(a.baseline.losses, b.baseline.losses)
               and all(np.array_equal(a.scores(n), b.scores(n)) for n in programs)
               for a, b in zip(here.results, pooled.results))
    print(f"{len(here.results)} tasks, {len(programs)} programs + tuned AdamW, grid of "
          f"{len(GRID.lrs)} lrs x {len(GRID.weight_decays)} weight decays, 2 seeds")
    print(f"in the driver, one task after another: {here_s:.1f} s")
    print(f"on {args.actors} Ray actors of 1 CPU:  {pooled_s:.1f} s "
          f"(+ {ray_start_s:.1f} s to start Ray and the actors)")
    print(f"ratio (driver / actors): {here_s / pooled_s:.2f}; same numbers: {same}")


if __name__ == "__main__":
    main()
