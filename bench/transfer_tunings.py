"""`disco transfer`'s tuning of several programs on one task: all in one interpreter call
vs one call per program (so each program's tuning can be cached as it finishes).

Both ways train the same programs at the same grid points on the same keys; the interpreter
runs a call's programs one after another (`lax.map`), so the work is the same and only
compilation and dispatch differ. Each way is timed cold (its first call compiles) and warm
(a second time), on one held-out-sized task; prints the times, their ratios and whether the
two gave the same losses (they should, bit for bit). About 1-3 minutes on 2 cores.

    python bench/transfer_tunings.py [--programs 5] [--horizon 200]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from disco_rules.discovery import transfer
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.tasks import Task
from disco_rules.dsl import library
from disco_rules.dsl.interpreter import Encoding

NAMES = ("sgd", "momentum", "adam", "adamw", "lion")


def timed(call) -> tuple[float, list[transfer.Tuned]]:
    started = time.perf_counter()
    tuned = call()
    jax.block_until_ready([t.losses for t in tuned])
    return time.perf_counter() - started, tuned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=5, choices=range(1, len(NAMES) + 1))
    parser.add_argument("--horizon", type=int, default=200)
    args = parser.parse_args()
    task = Task.make("conv_autoencoder", channels=4, batch_size=16, horizon=args.horizon)
    programs = [library.program(name) for name in NAMES[:args.programs]]
    encoding = Encoding(max_statements=max(len(p.body) for p in programs))
    grid, keys = transfer.GRID, task_keys(task, 2, 1)

    def together() -> list[transfer.Tuned]:
        return transfer.tune_programs(task, encoding, programs, grid, keys)

    def apart() -> list[transfer.Tuned]:
        return [transfer.tune_programs(task, encoding, [p], grid, keys)[0] for p in programs]

    times = {}
    for name, call in (("one call", together), ("one call per program", apart)):
        cold, first = timed(call)
        warm, second = timed(call)
        times[name] = (cold, warm, first)
    same = all(np.array_equal(a.losses, b.losses) and a.lr == b.lr
               for a, b in zip(times["one call"][2], times["one call per program"][2]))
    print(f"{task.key}: {len(programs)} programs x {len(grid.lrs)} lrs x "
          f"{len(grid.schedules)} schedules x 2 seeds")
    for name, (cold, warm, _) in times.items():
        print(f"{name:>22}: {cold:6.1f} s cold (compiling), {warm:6.1f} s warm")
    (c1, w1, _), (c2, w2, _) = times.values()
    print(f"ratio (per program / one call): cold {c2 / c1:.2f}, warm {w2 / w1:.2f}; "
          f"same tunings: {same}")


if __name__ == "__main__":
    main()
