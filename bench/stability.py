"""The numerical-robustness screen (dsl/stability.py) vs catching instability by training.

Both ways look at the same random programs (mutation chains from the example optimizers,
simplified as the search simplifies every candidate) in one process:

- screen: `instability(program)`, numpy on the fixed gradient battery (magnitudes 0 and
  1e-30..1e30, both signs, five patterns, several learning rates), one program at a time;
- training: what a search would otherwise rely on, a short training run of each program on a
  cheap task (the quadratic the quickstart screens with: 30 steps, 2 seeds x 3 learning
  rates), in batches of `--batch` programs through the vectorized interpreter, compiled once
  before timing; a program is flagged when every run of it diverged or went non-finite.

Prints the time per program of each way and their ratio, and the agreement table: programs
the screen refuses that train without trouble here are what the battery's extreme
magnitudes (exact zeros, 1e-30, 1e30) exist for; programs that diverge here but pass the
screen are unstable only through the task (too large a step), which training catches.

    python bench/stability.py [--programs 256] [--batch 16] [--seed 0]
"""

from __future__ import annotations

import statistics
import time

import jax
import numpy as np

from common import random_programs, screen_arguments
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.train import evaluate_population
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.stability import instability

MAX_STATEMENTS = 16
TASK = Task.make("quadratic", horizon=30)
LRS = (0.001, 0.01, 0.1)


def main() -> None:
    args = screen_arguments(__doc__, 256)
    programs = random_programs(args.programs, args.seed, MAX_STATEMENTS)
    encoding = Encoding(max_statements=MAX_STATEMENTS)
    keys = task_keys(TASK, 2, args.seed)

    screen_seconds, refused = [], []
    for program in programs:
        started = time.perf_counter()
        refused.append(instability(program) is not None)
        screen_seconds.append(time.perf_counter() - started)

    def train(batch: list) -> np.ndarray:
        padded = batch + [batch[-1]] * (args.batch - len(batch))
        result = evaluate_population(TASK, encoding, encoding.encode_population(padded),
                                     LRS, keys)
        bad = np.asarray(jax.block_until_ready(result.diverged), bool)  # [P, lrs, seeds]
        return np.all(bad.reshape(len(padded), -1), axis=1)[:len(batch)]

    train(programs[:args.batch])  # compile once, untimed
    started = time.perf_counter()
    diverged = np.concatenate([train(programs[i:i + args.batch])
                               for i in range(0, len(programs), args.batch)])
    train_per_program = (time.perf_counter() - started) / len(programs)

    screen_per_program = statistics.mean(screen_seconds)
    refused = np.asarray(refused)
    print(f"{len(programs)} random programs (seed {args.seed}); training: {TASK.key}, "
          f"{len(LRS)} lrs x 2 seeds, {args.batch} programs a call")
    print(f"screen   {1e3 * screen_per_program:8.2f} ms a program "
          f"(median {1e3 * statistics.median(screen_seconds):.2f})")
    print(f"training {1e3 * train_per_program:8.2f} ms a program")
    print(f"ratio training / screen: {train_per_program / screen_per_program:.1f}x")
    print("                      trains fine  diverges everywhere")
    for name, rows in (("screen passes ", ~refused), ("screen refuses", refused)):
        print(f"{name}        {np.sum(rows & ~diverged):11d}  {np.sum(rows & diverged):19d}")


if __name__ == "__main__":
    main()
