"""The step-count screen (dsl/stationarity.py) vs finding a step-counted schedule by training.

Both ways look at the same random programs (mutation chains from the example optimizers,
simplified as the search simplifies every candidate) in one process:

- screen: `step_schedule(program)`, numpy on unchanging gradient noise over 300 and 3000
  steps, one program at a time;
- training: the least a search would otherwise spend to see a rule's steps at two horizons,
  a training run of each program on a cheap task (linear regression on the diabetes data,
  `tabular` at depth 0) at the same two horizons,
  one learning rate and 2 seeds, in batches of `--batch` programs through the vectorized
  interpreter, compiled once before timing.

Prints the time per program of each way, their ratio, and how many programs the screen
refuses (and for which reason: steps that depend on the step count, or updates that stop
being finite).

    python bench/stationarity.py [--programs 64] [--batch 16] [--seed 0]
"""

from __future__ import annotations

import statistics
import time

import jax

from common import random_programs, screen_arguments
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.train import evaluate_population
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.stationarity import HORIZONS, LR, step_schedule

MAX_STATEMENTS = 16


def main() -> None:
    args = screen_arguments(__doc__, 64)
    programs = random_programs(args.programs, args.seed, MAX_STATEMENTS)
    encoding = Encoding(max_statements=MAX_STATEMENTS)
    tasks = [Task.make("tabular", dataset="diabetes", depth=0, horizon=horizon)
             for horizon in HORIZONS]

    screen_seconds, reasons = [], []
    for program in programs:
        started = time.perf_counter()
        reasons.append(step_schedule(program))
        screen_seconds.append(time.perf_counter() - started)

    def train(batch: list) -> None:
        padded = batch + [batch[-1]] * (args.batch - len(batch))
        for task in tasks:
            result = evaluate_population(task, encoding, encoding.encode_population(padded),
                                         (LR,), task_keys(task, 2, args.seed))
            jax.block_until_ready(result.diverged)

    train(programs[:args.batch])  # compile once, untimed
    started = time.perf_counter()
    for i in range(0, len(programs), args.batch):
        train(programs[i:i + args.batch])
    train_per_program = (time.perf_counter() - started) / len(programs)

    screen_per_program = statistics.mean(screen_seconds)
    counted = sum(bool(r) and r.startswith("a schedule counted") for r in reasons)
    unbounded = sum(bool(r) and r.startswith("its update is not finite") for r in reasons)
    print(f"{len(programs)} random programs (seed {args.seed}); training: {tasks[0].key} at "
          f"horizons {HORIZONS}, lr {LR:g} x 2 seeds, {args.batch} programs a call")
    print(f"screen   {1e3 * screen_per_program:8.1f} ms a program "
          f"(median {1e3 * statistics.median(screen_seconds):.1f})")
    print(f"training {1e3 * train_per_program:8.1f} ms a program")
    print(f"ratio training / screen: {train_per_program / screen_per_program:.2f}x")
    print(f"refused: {counted} with a schedule counted in steps, {unbounded} with updates "
          f"that stop being finite, of {len(programs)}")


if __name__ == "__main__":
    main()
