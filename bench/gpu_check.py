"""Device check: does an evaluator actor get a GPU, and how fast is one work item on it?

Starts Ray in this process (`start_ray(None)`, as `disco launch` does), then:

1. one evaluator actor of 1 CPU: prints `actor_device_info()` (the JAX devices it sees) and
   times one `ProgramsItem` (compile + first run, then the median of warm runs);
2. if Ray's cluster has a GPU: one actor with `num_gpus=1` (Ray sets CUDA_VISIBLE_DEVICES for
   it; the pool disables JAX's memory preallocation), the same prints and timings, whether
   JAX in the actor really runs on the GPU (a `cpu` device there means a CPU-only jaxlib:
   install JAX's CUDA wheels), whether its results agree with the CPU actor's, and the ratio
   of warm times, GPU against CPU.

On a machine without a GPU it says so, times the CPU actor only, and exits 0. The work item
is one search work item: `--batch` simplified random programs (mutation chains of the example
optimizers) training an MLP (`mlp_regression`, 100 steps) at 3 learning rates x 2 seeds.
Try `--batch 16` (the default, a search's usual item) and `--batch 256` (an item sized to a
GPU) on a GPU node.

    python bench/gpu_check.py [--batch 16] [--repeats 3]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import numpy as np
import ray

from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray
from disco_rules.cluster.results import Failed
from common import random_programs
from disco_rules.discovery.evaluator import Evaluator, ProgramsItem
from disco_rules.discovery.tasks import Task
from disco_rules.dsl.interpreter import Encoding

MAX_STATEMENTS = 16
TASK = Task.make("mlp_regression", horizon=100)
LRS = (0.003, 0.03, 0.3)
SEEDS = 2


def work_item(batch: int, seed: int = 0) -> ProgramsItem:
    """One ProgramsItem of `batch` simplified random programs."""
    encoding = Encoding(max_statements=MAX_STATEMENTS)
    programs = random_programs(batch, seed, MAX_STATEMENTS)
    return ProgramsItem(TASK, encoding.encode_population(programs), LRS, SEEDS, 0)


def on_actor(config: PoolConfig, item: ProgramsItem, repeats: int) -> dict:
    """Device info, compile + first run, warm runs and the result of one actor."""
    pool = EvaluatorPool(functools.partial(Evaluator, MAX_STATEMENTS), config)
    try:
        devices = ray.get(pool.actors[0].actor_device_info.remote(), timeout=300)
        started = time.perf_counter()
        (result,) = pool.map([item])
        first = time.perf_counter() - started
        warm = []
        for _ in range(repeats):
            started = time.perf_counter()
            pool.map([item])
            warm.append(time.perf_counter() - started)
    finally:
        pool.shutdown()
    if isinstance(result, Failed):
        raise SystemExit(f"the work item failed on the actor: {result.reason}")
    return {"devices": devices, "first": first, "warm": statistics.median(warm),
            "result": result}


def report(name: str, run: dict, batch: int) -> None:
    print(f"{name} actor: JAX devices {run['devices']}")
    print(f"   compile + first item: {run['first']:.2f} s; warm item: {run['warm']:.3f} s "
          f"({1e3 * run['warm'] / batch:.1f} ms per program, {len(LRS)} lrs x {SEEDS} seeds)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16, help="programs in the work item")
    parser.add_argument("--repeats", type=int, default=3, help="warm runs to time")
    args = parser.parse_args()

    start_ray(None)
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0)
    print(f"Ray resources: {resources.get('CPU', 0):g} CPU, {gpus:g} GPU")
    item = work_item(args.batch)
    print(f"work item: {args.batch} programs on {TASK.key}, {len(LRS)} lrs x {SEEDS} seeds")

    cpu = on_actor(PoolConfig(num_actors=1, num_cpus_per_actor=1), item, args.repeats)
    report("CPU", cpu, args.batch)
    if gpus < 1:
        import jax

        print(f"no GPU is visible: Ray's resources list none (JAX in this process sees "
              f"{[str(d) for d in jax.devices()]}); timed on CPU only")
        ray.shutdown()
        return 0

    gpu = on_actor(PoolConfig(num_actors=1, num_cpus_per_actor=1, num_gpus_per_actor=1),
                   item, args.repeats)
    report("GPU", gpu, args.batch)
    if not any("cuda" in d.lower() or "gpu" in d.lower() for d in gpu["devices"]):
        print("WARNING: Ray gave the actor a GPU but JAX there sees no GPU device: the "
              "environment has a CPU-only jaxlib (install JAX's CUDA wheels, e.g. "
              "`pip install -U \"jax[cuda12]\"`)")
    a, b = cpu["result"].final_loss, gpu["result"].final_loss
    both = np.isfinite(a) & np.isfinite(b)
    gap = float(np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(a[both]), 1e-12))) \
        if both.any() else 0.0
    same = bool(np.array_equal(np.isfinite(a), np.isfinite(b)))
    print(f"results: finite in the same places: {same}; largest relative difference of "
          f"final losses: {gap:.2e}")
    print(f"warm item, GPU against CPU: {cpu['warm'] / gpu['warm']:.2f}x "
          f"({'faster' if gpu['warm'] < cpu['warm'] else 'slower'} on the GPU)")
    ray.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
