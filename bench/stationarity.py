"""The step-count screen (dsl/stationarity.py), compiled, vs the same screen one step at a time
in numpy, and vs finding a step-counted schedule by training.

All three ways look at the same random programs (mutation chains from the example
optimizers, simplified as the search simplifies every candidate) in one process:

- screen: `step_schedules(programs)`, the compiled interpreter on unchanging gradient noise
  over 300 and 3000 steps, `--batch` programs a call (a generation's children), compiled
  once before timing (the compile time is printed: JAX's persistent cache keeps it);
- numpy: the same measurement one program and one step at a time with the reference
  evaluator (`reference_steps` at both horizons: the screen before it was compiled), whose
  verdicts must be the screen's;
- training: the least a search would otherwise spend to see a rule's steps at two horizons,
  a training run of each program on a cheap task (linear regression on the diabetes data,
  `tabular` at depth 0) at the same two horizons, one learning rate and 2 seeds, in batches
  of `--batch` programs through the vectorized interpreter, compiled once before timing.

Prints the time per program of each way, their ratios, how many programs the screen refuses
(and for which reason: steps that depend on the step count, or updates that stop being
finite) and how many verdicts differ from numpy's.

    python bench/stationarity.py [--programs 64] [--batch 16] [--seed 0]
"""

from __future__ import annotations

import time

import jax
import numpy as np

from common import random_programs, screen_arguments
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.train import evaluate_population
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.stationarity import (HORIZONS, LR, reference_steps, step_schedules,
                                          verdict)

MAX_STATEMENTS = 16


def main() -> None:
    args = screen_arguments(__doc__, 64)
    programs = random_programs(args.programs, args.seed, MAX_STATEMENTS)
    encoding = Encoding(max_statements=MAX_STATEMENTS)
    tasks = [Task.make("tabular", dataset="diabetes", depth=0, horizon=horizon)
             for horizon in HORIZONS]
    batches = [programs[i:i + args.batch] for i in range(0, len(programs), args.batch)]

    started = time.perf_counter()
    step_schedules(programs[:1])  # compile once
    compile_seconds = time.perf_counter() - started
    started = time.perf_counter()
    reasons = [r for batch in batches for r in step_schedules(batch)]
    screen_per_program = (time.perf_counter() - started) / len(programs)

    started = time.perf_counter()
    numpy_reasons = [verdict(np.stack([reference_steps(program, h) for h in HORIZONS]))
                     for program in programs]
    numpy_per_program = (time.perf_counter() - started) / len(programs)

    def train(batch: list) -> None:
        padded = batch + [batch[-1]] * (args.batch - len(batch))
        for task in tasks:
            result = evaluate_population(task, encoding, encoding.encode_population(padded),
                                         (LR,), task_keys(task, 2, args.seed))
            jax.block_until_ready(result.diverged)

    train(batches[0])  # compile once, untimed
    started = time.perf_counter()
    for batch in batches:
        train(batch)
    train_per_program = (time.perf_counter() - started) / len(programs)

    counted = sum(bool(r) and r.startswith("a schedule counted") for r in reasons)
    unbounded = sum(bool(r) and r.startswith("its update is not finite") for r in reasons)
    differ = sum(a != b for a, b in zip(reasons, numpy_reasons))
    print(f"{len(programs)} random programs (seed {args.seed}); {args.batch} programs a "
          f"compiled call; training: {tasks[0].key} at horizons {HORIZONS}, lr {LR:g} x 2 seeds")
    print(f"screen   {1e3 * screen_per_program:8.1f} ms a program (compiling once: "
          f"{compile_seconds:.1f} s)")
    print(f"numpy    {1e3 * numpy_per_program:8.1f} ms a program")
    print(f"training {1e3 * train_per_program:8.1f} ms a program")
    print(f"ratio numpy / screen: {numpy_per_program / screen_per_program:.2f}x; "
          f"training / screen: {train_per_program / screen_per_program:.2f}x")
    print(f"refused: {counted} with a schedule counted in steps, {unbounded} with updates "
          f"that stop being finite, of {len(programs)}; verdicts that differ from numpy's: "
          f"{differ}")


if __name__ == "__main__":
    main()
