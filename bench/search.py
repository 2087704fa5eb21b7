"""The full search loop on Ray actors vs in-process, on the same config and seed.

Runs one small program search (written below) twice in this process, generation by
generation in turn, so that a noisy shared machine slows both alike:

- through Ray: `EvaluatorPool` with `--actors` actors of 1 CPU each (default 2) on Ray started
  in-process with `start_ray(None)`, as `disco launch` does;
- in-process: `LocalPool`, one evaluator in this process, no Ray.

Compile caches are warmed first on both (every task shape on every actor, then generation 0
untimed, which also tunes the AdamW baselines), so the timed generations compare steady-state
throughput. Prints ratios only, never absolute claims (the numbers are from a shared machine):

1. evaluations (unique candidates trained) per second of each way, and the cost of Ray and
   bookkeeping, (ray_time - local_time) / ray_time (goal: under 20%). With 2 actors on 2 cores
   Ray may beat the single in-process evaluator; the number is printed either way, and
   `--actors 1` compares one actor with one in-process evaluator.
2. The driver's bookkeeping time (everything outside `pool.map`: ask, dedupe, simplify,
   hashing, scoring, archive writes, checkpoints) as a share of each run's time.
3. The share of evaluations saved by deduplication over the whole run: candidates asked for
   against candidates trained, with cache hits by canonical hash and by functional fingerprint.

It also checks that both runs archive identical candidates with identical fitness (they
should: same config and seed, results come back in submission order) and says so if not.

Most of the run time is compilation (warm-up and generation 0); a steady-state generation
is short, so the default of 20 generations costs little and gives a less noisy timed window.
About 3-4 minutes on 2 cores.

    python bench/search.py [--generations 20] [--actors 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import ray

from disco_rules.cluster.local import LocalPool
from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray
from disco_rules.discovery.config import Config, parse_config, warm_start_paths
from disco_rules.discovery.evaluator import Evaluator, ProgramsItem
from disco_rules.api import create_run
from disco_rules.discovery.search.engine import Engine, make_engine
from disco_rules.discovery.plan import TaskPlan, load_warm_start
from disco_rules.discovery.status import CandidateStatus
from disco_rules.discovery.store import CandidateRecord, RunStore
from disco_rules.dsl.interpreter import Encoding

# A shorter quickstart (examples/quickstart.toml): same tasks, funnel and validation.
CONFIG = """
seed = {seed}
generations = {generations}

[population]
size = 24
tournament = 4
children = 16
warm_start = ["sgd"]
max_statements = 16

[tasks]
seeds = 2
lr_grid = [0.003, 0.03, 0.3]
train = [
    {{ family = "mlp_regression", horizon = 100 }},
    {{ family = "quadratic", horizon = 100 }},
]
heldout = [
    {{ family = "classification", horizon = 100 }},
]

[screen]
task = {{ family = "quadratic", horizon = 30 }}
min_fitness = -3.0

[validation]
every = 4
top = 3

[cluster]
num_actors = {actors}
batch_size = 16
"""


class TimedPool:
    """A pool that records the time spent inside `map` and what it was asked to run."""

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self.seconds = 0.0
        self.items = 0
        self.programs = 0  # program trainings sent per task, padding included

    def map(self, items: Sequence[Any]) -> list[Any]:
        self.items += len(items)
        self.programs += sum(int(i.programs.ops.shape[0]) for i in items
                             if isinstance(i, ProgramsItem))
        started = time.perf_counter()
        try:
            return self.pool.map(items)
        finally:
            self.seconds += time.perf_counter() - started

    def reset(self) -> None:
        self.seconds, self.items, self.programs = 0.0, 0, 0


@dataclass
class Run:
    """One of the two searches and what its timed generations took."""

    name: str
    search: Engine
    store: RunStore
    timed: TimedPool
    cold_seconds: float = 0.0  # generation 0, compiles and baselines included
    seconds: float = 0.0  # timed generations, wall clock of Search.step
    evaluated: int = 0
    candidates: int = 0

    def step(self, timed: bool) -> None:
        started = time.perf_counter()
        report = self.search.step()
        elapsed = time.perf_counter() - started
        if timed:
            self.seconds += elapsed
            self.evaluated += report.evaluated
            self.candidates += report.candidates
        else:
            self.cold_seconds += elapsed

    @property
    def rate(self) -> float:
        return self.evaluated / self.seconds if self.seconds > 0 else 0.0

    @property
    def bookkeeping(self) -> float:
        return self.seconds - self.timed.seconds


def run_in_turn(runs: Sequence[Run], generations: int) -> None:
    """Generation 0 of each run untimed (baselines, first archive writes), then the timed
    generations in turn, the first to go alternating so neither always runs on a warmer
    machine."""
    for run in runs:
        run.step(timed=False)
        run.timed.reset()
    for g in range(1, generations):
        for run in (runs if g % 2 else runs[::-1]):
            run.step(timed=True)
        so_far = ", ".join(f"{run.name} {run.seconds:6.1f} s" for run in runs)
        print(f"gen {g:3d} done: {so_far} so far", flush=True)


def warmup_items(config: Config, encoding: Encoding, warm: Sequence) -> list[ProgramsItem]:
    """One work item of the search's compiled shape for every task it can run."""
    population = encoding.encode_population(
        [warm[i % len(warm)] for i in range(config.cluster.batch_size)])
    return [ProgramsItem(task, population, config.tasks.lr_grid, config.tasks.seeds,
                         config.seed) for task in TaskPlan.from_config(config).all()]


def archive(store: RunStore) -> list[CandidateRecord]:
    return [store.candidate(i) for i in range(store.count())]


def same_fitness(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def compare(a: list[CandidateRecord], b: list[CandidateRecord]) -> str:
    """'identical', or what differs first between two archives."""
    if len(a) != len(b):
        return f"DIFFERENT: {len(a)} vs {len(b)} candidates archived"
    for x, y in zip(a, b):
        if (x.text, x.hash, x.parent_id, x.status) != (y.text, y.hash, y.parent_id, y.status):
            return (f"DIFFERENT from candidate {x.id} (generation {x.generation}): "
                    f"program, parent or status differ ({x.status} vs {y.status})")
        if not same_fitness(x.fitness, y.fitness):
            return (f"DIFFERENT from candidate {x.id} (generation {x.generation}): fitness "
                    f"{x.fitness!r} vs {y.fitness!r}")
    return "identical"


def dedupe_counts(records: list[CandidateRecord]) -> tuple[int, int, int]:
    """(trained, hits by canonical hash, hits by fingerprint only), as Search decides them:
    a candidate is a hash hit if a trained candidate before it has its hash, else a
    fingerprint hit."""
    trained_hashes: set[str] = set()
    trained = by_hash = by_fingerprint = 0
    for record in sorted(records, key=lambda r: r.id):
        if record.status == CandidateStatus.CACHED:
            if record.hash in trained_hashes:
                by_hash += 1
            else:
                by_fingerprint += 1
        else:
            trained += 1
            trained_hashes.add(record.hash)
    return trained, by_hash, by_fingerprint


def pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "  n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=20,
                        help="generations per run; generation 0 is the untimed warm-up")
    parser.add_argument("--actors", type=int, default=2, help="Ray actors of 1 CPU each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.generations < 2:
        parser.error("--generations: need at least 2 (generation 0 is untimed)")
    if args.actors < 1:
        parser.error("--actors: need at least 1")

    text = CONFIG.format(seed=args.seed, generations=args.generations, actors=args.actors)
    config = parse_config(text)
    encoding = Encoding(max_statements=config.population.max_statements)
    warm = load_warm_start(warm_start_paths(config, Path.cwd()), encoding)
    factory = functools.partial(Evaluator, config.population.max_statements)

    # More actors than cores: let Ray oversubscribe rather than leave actors unscheduled.
    cores = os.cpu_count() or 1
    start_ray(None, num_cpus=args.actors if args.actors > cores else None)
    ray_pool = EvaluatorPool(factory, PoolConfig(
        num_actors=args.actors, num_cpus_per_actor=1, max_retries=config.cluster.max_retries))
    local_pool = LocalPool(factory)

    with tempfile.TemporaryDirectory(prefix="disco-bench-") as tmp:
        runs = []
        for name, pool in (("ray", ray_pool), ("local", local_pool)):
            store = create_run(Path(tmp) / name, "bench", text, warm)
            timed = TimedPool(pool)
            search = make_engine(config, store, timed)
            search.restore()
            runs.append(Run(name, search, store, timed))
        ray_run, local_run = runs
        try:
            # Warm-up: every task shape compiled on every actor and in this process ...
            items = warmup_items(config, encoding, warm)
            started = time.perf_counter()
            ray.get([actor.evaluate.remote(item) for actor in ray_pool.actors
                     for item in items])
            ray_warm = time.perf_counter() - started
            started = time.perf_counter()
            local_pool.map(items)
            local_warm = time.perf_counter() - started
            run_in_turn(runs, args.generations)
            records = [archive(run.store) for run in runs]
        finally:
            ray_pool.shutdown()
            for run in runs:
                run.store.close()

    timed_gens = args.generations - 1
    print(f"\nsearch: {args.generations} generations (0 untimed), population "
          f"{config.population.size}, {config.population.children} children, tasks "
          f"{', '.join(t['family'] for t in config.tasks.train)} (+ screen, held-out), "
          f"{config.tasks.seeds} seeds x {len(config.tasks.lr_grid)} lrs, batch "
          f"{config.cluster.batch_size}; Ray: {args.actors} actor(s) x 1 CPU on {cores} cores")
    print(f"warm-up (compile every task shape): ray {ray_warm:.1f} s (all actors at once), "
          f"local {local_warm:.1f} s; generation 0: ray {ray_run.cold_seconds:.1f} s, "
          f"local {local_run.cold_seconds:.1f} s")
    print(f"archives of the two runs: {compare(*records)}")
    if ray_run.evaluated != local_run.evaluated:
        print(f"  (evaluated in timed generations: ray {ray_run.evaluated}, "
              f"local {local_run.evaluated}; rates below are per evaluation)")

    print(f"\n1. throughput over {timed_gens} timed generations ({ray_run.evaluated} "
          f"candidates trained of {ray_run.candidates} asked for), shared machine: ratios only")
    for run in runs:
        print(f"   {run.name:5s}: {run.rate:7.2f} evaluations/s  (pool.map "
              f"{pct(run.timed.seconds, run.seconds)} of the time, {run.timed.items} work items)")
    faster = ray_run.rate / local_run.rate if local_run.rate else float("nan")
    print(f"   ray / local throughput: {faster:.2f}x")
    cost = (ray_run.seconds - local_run.seconds) / ray_run.seconds
    verdict = "meets" if cost < 0.20 else "misses"
    print(f"   Ray and bookkeeping cost, (ray_time - local_time) / ray_time: {100 * cost:+.1f}% "
          f"({verdict} the goal of < 20%)")
    if cost < 0:
        print(f"   (negative: {args.actors} actors in parallel outrun one in-process evaluator; "
              "`--actors 1` compares one with one)")
    map_cost = (ray_run.timed.seconds - local_run.timed.seconds) / ray_run.timed.seconds
    print(f"   inside pool.map alone: {100 * map_cost:+.1f}% of Ray's map time")

    print("\n2. driver bookkeeping (outside pool.map: ask, dedupe, simplify, hashing, "
          "scoring, archive, checkpoints)")
    for run in runs:
        per_gen = run.bookkeeping / timed_gens
        print(f"   {run.name:5s}: {pct(run.bookkeeping, run.seconds)} of the run's time "
              f"({1e3 * per_gen:.0f} ms per generation)")

    asked = len(records[0])
    trained, by_hash, by_fingerprint = dedupe_counts(records[0])
    print(f"\n3. deduplication over the whole run (generations 0-{args.generations - 1}, "
          f"ray's archive)")
    print(f"   candidates asked for: {asked}; trained: {trained} ({pct(trained, asked)})")
    print(f"   evaluations saved: {asked - trained} ({pct(asked - trained, asked)}): "
          f"{by_hash} by canonical hash, {by_fingerprint} by functional fingerprint only")
    screened = sum(r.status == CandidateStatus.SCREENED for r in records[0])
    print(f"   of the trained, {screened} stopped at the screen task")
    if records[1] and dedupe_counts(records[1]) != (trained, by_hash, by_fingerprint):
        print(f"   (local run's archive: trained, by hash, by fingerprint = "
              f"{dedupe_counts(records[1])})")


if __name__ == "__main__":
    main()
