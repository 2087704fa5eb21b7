"""XLA's CPU backend at LLVM optimization level 1 (disco's trainers) vs its default level.

For each task, in one process: the compiled population trainer (4 programs x 7 lrs x 2
seeds, the vectorized interpreter) and the AdamW grid trainer (7 lrs x 2 schedules x 2
seeds), each compiled and run once at JAX's default options and once with
`train.CPU_COMPILER_OPTIONS`, the order alternating from task to task. Prints compile and
run seconds of each way, their ratios, and whether the two ways' validation curves are
equal bit for bit. The tasks: the quickstart's held-out tasks and the flagship's cheaper
held-out ones (at shorter horizons: the run time grows with the horizon, compilation does
not).

    python bench/compile_level.py [--quick]
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import disco_rules.discovery.inner.train as train
from common import EXAMPLES
from disco_rules.discovery.evaluator import task_keys
from disco_rules.discovery.inner.schedules import grid, named
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.parser import parse

TASKS = (
    Task.make("rnn", horizon=100),
    Task.make("rnn", seq_len=5, width=32, horizon=150),
    Task.make("mlp_regression", in_dim=16, width=32, depth=2, horizon=200),
    Task.make("classification", width=64, depth=1, horizon=200, batch_size=64),
    Task.make("conv_autoencoder", channels=4, batch_size=16, horizon=200),
    Task.make("code_lm", heads=2, head_dim=8, context=16, batch_size=8, horizon=200),
    Task.make("matrix_completion", rank=8, batch_size=32, horizon=1000),
)
LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
SCHEDULES = (named("constant", 0.05, 0.0), named("cosine", 0.05, 0.0))
ENCODING = Encoding(max_statements=16)
PROGRAMS = ENCODING.encode_population(
    [parse((EXAMPLES / f"{name}.py").read_text()) for name in ("sgd", "momentum", "adam", "lion")])


def timed(task: Task, options: dict | None) -> tuple[float, float, list[np.ndarray]]:
    """Compile and run seconds of both trainers of `task` under `options`, and their curves."""
    train.CPU_COMPILER_OPTIONS = options
    train._COMPILED.clear()
    keys = task_keys(task, 2, 0)
    points = grid(LRS, SCHEDULES)
    programs = train._population_fn(task, ENCODING, (4, len(LRS), 2))
    adamw = train._grid_fn(task, (len(points.lr), 2))
    calls = [(programs, (PROGRAMS, grid(LRS, SCHEDULES[:1]), keys, train._floats(task))),
             (adamw, (train._floats(task), points, jnp.full(len(points.lr), 1e-4), keys))]
    compile_s = run_s = 0.0
    curves = []
    for fn, args in calls:
        args = jax.tree.map(jnp.asarray, args)
        start = time.perf_counter()
        executable = fn.lower(*args).compile()
        compile_s += time.perf_counter() - start
        start = time.perf_counter()
        result = jax.block_until_ready(executable(*args))
        run_s += time.perf_counter() - start
        curves.append(np.asarray(result.curve))
    return compile_s, run_s, curves


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first three tasks only")
    args = parser.parse_args()
    level_1 = dict(train.CPU_COMPILER_OPTIONS)
    totals = np.zeros(4)
    print(f"{'task':<40} {'compile default':>16} {'level 1':>8} {'run default':>12} "
          f"{'level 1':>8}  same curves")
    for i, task in enumerate(TASKS[:3] if args.quick else TASKS):
        if i % 2 == 0:
            (c0, r0, curves0), (c1, r1, curves1) = timed(task, None), timed(task, level_1)
        else:
            (c1, r1, curves1), (c0, r0, curves0) = timed(task, level_1), timed(task, None)
        same = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(curves0, curves1))
        totals += (c0, c1, r0, r1)
        print(f"{task.key[:40]:<40} {c0:>15.1f}s {c1:>7.1f}s {r0:>11.1f}s {r1:>7.1f}s  {same}")
    c0, c1, r0, r1 = totals
    print(f"{'total':<40} {c0:>15.1f}s {c1:>7.1f}s {r0:>11.1f}s {r1:>7.1f}s")
    print(f"level 1 / default: compile {c1 / c0:.2f}x, run {r1 / r0:.2f}x, "
          f"compile + run {(c1 + r1) / (c0 + r0):.2f}x")


if __name__ == "__main__":
    main()
