"""`disco transfer`'s tunings on one task, each in one compiled call vs split so that each
part can be cached as it finishes: several programs (one interpreter call vs one per
program) and AdamW's grid (one call vs one per weight decay).

Both ways train the same optimizers at the same grid points on the same keys. The interpreter
runs a call's programs one after another (`lax.map`), so that split changes only compilation
and dispatch; AdamW's grid is vectorized (`vmap`), so its split also changes how wide each
call is. Each way is timed cold (its first call compiles) and warm (a second time), on one
held-out-sized task; prints the times, their ratios and whether the two chose the same points
with the same losses. A few minutes on 2 cores.

    python bench/transfer_tunings.py [--programs 5] [--horizon 200]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from typing import Callable

import jax
import numpy as np

from disco_rules.discovery import transfer
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.tasks import Task
from disco_rules.dsl import library
from disco_rules.dsl.interpreter import Encoding

NAMES = ("sgd", "momentum", "adam", "adamw", "lion")


def timed(call: Callable[[], list[transfer.Tuned]]) -> tuple[float, list[transfer.Tuned]]:
    started = time.perf_counter()
    tuned = call()
    jax.block_until_ready([t.losses for t in tuned])
    return time.perf_counter() - started, tuned


def compare(title: str, whole: Callable[[], list[transfer.Tuned]],
            split: Callable[[], list[transfer.Tuned]], split_name: str) -> None:
    """Times both ways cold and warm and prints them, their ratio and whether they agree."""
    times = {}
    for name, call in (("one call", whole), (split_name, split)):
        cold, first = timed(call)
        warm, _ = timed(call)
        times[name] = (cold, warm, first)
    (c1, w1, a), (c2, w2, b) = times.values()
    same_points = all(x.lr == y.lr and x.schedule == y.schedule
                      and np.array_equal(x.weight_decay, y.weight_decay, equal_nan=True)
                      for x, y in zip(a, b))
    bitwise = all(np.array_equal(x.losses, y.losses) for x, y in zip(a, b))
    close = all(np.allclose(x.losses, y.losses, rtol=1e-5) for x, y in zip(a, b))
    print(title)
    for name, (cold, warm, _) in times.items():
        print(f"{name:>24}: {cold:6.1f} s cold (compiling), {warm:6.1f} s warm")
    print(f"  ratio (split / one call): cold {c2 / c1:.2f}, warm {w2 / w1:.2f}; same points: "
          f"{same_points}; same losses: {'bit for bit' if bitwise else close}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=5, choices=range(1, len(NAMES) + 1))
    parser.add_argument("--horizon", type=int, default=200)
    args = parser.parse_args()
    task = Task.make("conv_autoencoder", channels=4, batch_size=16, horizon=args.horizon)
    programs = [library.program(name) for name in NAMES[:args.programs]]
    encoding = Encoding(max_statements=max(len(p.body) for p in programs))
    grid, keys = transfer.GRID, task_keys(task, 2, 1)
    print(f"{task.key}, 2 seeds")
    compare(f"{len(programs)} programs x {len(grid.lrs)} lrs x {len(grid.schedules)} schedules:",
            lambda: transfer.tune_programs(task, encoding, programs, grid, keys),
            lambda: [transfer.tune_programs(task, encoding, [p], grid, keys)[0]
                     for p in programs], "one call per program")

    def per_decay() -> list[transfer.Tuned]:  # as `evaluate_task` tunes AdamW
        tuned = [transfer.tune_adamw(task, replace(grid, weight_decays=(d,)), keys)
                 for d in grid.weight_decays]
        return [min(tuned, key=lambda t: t.score)]
    compare(f"AdamW, {len(grid.lrs)} lrs x {len(grid.schedules)} schedules x "
            f"{len(grid.weight_decays)} weight decays:",
            lambda: [transfer.tune_adamw(task, grid, keys)], per_decay,
            "one call per weight decay")


if __name__ == "__main__":
    main()
