"""One generation's work on 1, 2 and 4 Ray actors vs in-process, and Ray's cost per item.

All in one process, on Ray started in-process (`start_ray(None)`, as `disco launch` does):

1. Throughput. The same list of work items as one search generation sends (default: 8
   `ProgramsItem`s of 16 programs: 4 chunks of 64 simplified random programs x 2 training
   tasks, mlp_regression and quadratic, 2 seeds x 3 learning rates, 100 steps) evaluated by
   `EvaluatorPool` with 1, 2 and 4 actors and by `LocalPool` in this process. Actors reserve
   1 CPU each, except the 4-actor pool whose actors reserve 0.5 CPU each (4 on 2 cores:
   oversubscribed, said in the output). Every pool is warmed first (every task shape
   compiled on every actor; the compile time per actor per task shape is printed), then
   timed rounds of Ray and local alternate, so that a noisy shared machine slows both
   alike. Prints the median time per round and ratios.
2. Dispatch overhead. A trivial evaluator that returns a canned result of the real size at
   once, fed the same real items through `pool.map`: the round trip per item (pickling the
   item and the result, the actor call, the driver's bookkeeping) against a direct call in
   this process, and against a real item's evaluation time. Also the pickled sizes of an
   item and of its result.
3. The driver's bookkeeping per candidate (what does not scale with actors): mutate, canonical
   hash, fingerprint, simplify, program text, encoding items and scoring their results
   (`score_programs` on a pool that answers at once), a dedupe lookup and the dedupe
   dictionaries' memory per entry, and archiving one generation of candidates and scores in
   SQLite (one transaction).

Prints ratios and per-item figures from a shared 2-core machine; about 2-3 minutes.

    python bench/cluster_throughput.py [--rounds 3] [--items 8] [--batch 16]
"""

from __future__ import annotations

import argparse
import functools
import os
import pickle
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
import ray

from disco_rules.cluster.local import LocalPool
from disco_rules.cluster.pool import EvaluatorPool, PoolConfig, start_ray
from disco_rules.discovery.config import parse_config
from disco_rules.discovery.evaluator import Evaluator, ProgramsItem
from disco_rules.discovery.scoring import score_programs
from disco_rules.discovery.store import CandidateRecord, RunStore, ScoreRecord
from disco_rules.discovery.tasks import Task
from disco_rules.dsl import library
from disco_rules.dsl.identity import canonical_hash, fingerprint
from disco_rules.dsl.interpreter import Encoding
from disco_rules.dsl.mutate import MutationConfig, mutation_chain
from disco_rules.dsl.printer import to_text
from disco_rules.dsl.simplify import simplify
from common import random_programs

MAX_STATEMENTS = 16
TASKS = (Task.make("mlp_regression", horizon=100), Task.make("quadratic", horizon=100))
LRS = (0.003, 0.03, 0.3)
SEEDS = 2
RUN_SEED = 0


class Canned:
    """A trivial evaluator: returns the same real-sized result for every item, at once."""

    def __init__(self, result: Any) -> None:
        self.result = result

    def __call__(self, item: Any) -> Any:
        return self.result




def generation_items(n_items: int, batch: int, seed: int) -> tuple[list[ProgramsItem], list]:
    """`n_items` work items: chunks of `batch` programs, one item per chunk and task."""
    encoding = Encoding(max_statements=MAX_STATEMENTS)
    chunks = max(1, n_items // len(TASKS))
    programs = random_programs(chunks * batch, seed, MAX_STATEMENTS)
    items = [ProgramsItem(task, encoding.encode_population(programs[c * batch:(c + 1) * batch]),
                          LRS, SEEDS, RUN_SEED)
             for task in TASKS for c in range(chunks)]
    return items, programs


def timed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def same_results(a: list, b: list) -> bool:
    return all(x._fields == y._fields and all(np.array_equal(u, v, equal_nan=True)
                                              for u, v in zip(x, y)) for x, y in zip(a, b))


def throughput(items: list[ProgramsItem], rounds: int, cores: int) -> dict[str, Any]:
    """Median seconds per round of `items` on 1, 2, 4 actors and in-process."""
    factory = functools.partial(Evaluator, MAX_STATEMENTS)
    local = LocalPool(factory)
    warm = {task.family: next(i for i in items if i.task == task) for task in TASKS}
    local_compile = {key: timed(lambda item=item: local.map([item])) for key, item in warm.items()}
    reference = local.map(items)
    local_item = statistics.median(timed(lambda item=item: local.map([item])) for item in items)
    out: dict[str, Any] = {"local_compile": local_compile, "local_item": local_item,
                           "configs": []}
    local_rounds: list[float] = []
    for actors in (1, 2, 4):
        cpus = 1.0 if actors <= cores else cores / actors
        pool = EvaluatorPool(factory, PoolConfig(num_actors=actors, num_cpus_per_actor=cpus))
        try:
            ray.get([a.actor_device_info.remote() for a in pool.actors])  # actors started
            # compile every task shape on every actor (all actors at once)
            first = {key: timed(lambda item=item: ray.get([a.evaluate.remote(item)
                                                           for a in pool.actors]))
                     for key, item in warm.items()}
            again = {key: timed(lambda item=item: ray.get([a.evaluate.remote(item)
                                                           for a in pool.actors]))
                     for key, item in warm.items()}
            ray_rounds, mine_local = [], []
            for r in range(rounds):
                order = ("ray", "local") if r % 2 == 0 else ("local", "ray")
                for which in order:
                    if which == "ray":
                        started = time.perf_counter()
                        results = pool.map(items)
                        ray_rounds.append(time.perf_counter() - started)
                        assert same_results(results, reference), "Ray and local results differ"
                    else:
                        mine_local.append(timed(lambda: local.map(items)))
            local_rounds += mine_local
            out["configs"].append({
                "actors": actors, "cpus": cpus, "round": statistics.median(ray_rounds),
                "local_round": statistics.median(mine_local),
                "compile": {k: first[k] - again[k] for k in first}, "first": first,
                "retries": pool.retries})
        finally:
            pool.shutdown()
    out["local_round"] = statistics.median(local_rounds)
    return out


def dispatch(items: list[ProgramsItem], result: Any, repeats: int) -> dict[str, float]:
    """Seconds per item through pool.map with a canned evaluator, and directly."""
    canned = Canned(result)
    direct = timed(lambda: [canned(item) for _ in range(repeats) for item in items])
    out = {"direct": direct / (repeats * len(items))}
    for actors in (1, 2):
        pool = EvaluatorPool(functools.partial(Canned, result),
                             PoolConfig(num_actors=actors, num_cpus_per_actor=1))
        try:
            pool.map(items)  # actors started and warm
            seconds = timed(lambda: [pool.map(items) for _ in range(repeats)])
            out[f"pool{actors}"] = seconds / (repeats * len(items))
            small = timed(lambda: [pool.map([0] * len(items)) for _ in range(repeats)])
            out[f"pool{actors}_tiny"] = small / (repeats * len(items))
        finally:
            pool.shutdown()
    return out


SCORE_CONFIG = """
seed = 0
[population]
max_statements = {max_statements}
[tasks]
seeds = {seeds}
lr_grid = [{lrs}]
train = [{{ family = "quadratic", horizon = 100 }}]
heldout = [{{ family = "classification", horizon = 100 }}]
[cluster]
batch_size = {batch}
"""


def bookkeeping(n: int, seed: int, result: Any, batch: int) -> dict[str, float]:
    """Driver-side seconds per candidate of each step the search does for it."""
    rng = np.random.default_rng(seed)
    parents = [library.program(name) for name in ("sgd", "momentum", "adam", "adamw", "lion")]
    config = MutationConfig(max_statements=MAX_STATEMENTS)
    encoding = Encoding(max_statements=MAX_STATEMENTS)
    out: dict[str, float] = {}

    started = time.perf_counter()
    children = [mutation_chain(parents[i % len(parents)], rng, 3, config) for i in range(n)]
    out["mutate x3"] = (time.perf_counter() - started) / n
    for name, fn in (("canonical_hash", canonical_hash), ("fingerprint", fingerprint),
                     ("simplify", simplify), ("to_text", to_text)):
        started = time.perf_counter()
        values = [fn(child) for child in children]
        out[name] = (time.perf_counter() - started) / n
        if name == "canonical_hash":
            hashes = values
        if name == "simplify":
            simple = values

    # scoring: score_programs with a pool that returns a real result at once, so all that is
    # timed is encoding the items and turning results into fitness and archive rows
    config = parse_config(SCORE_CONFIG.format(max_statements=MAX_STATEMENTS, seeds=SEEDS,
                                              lrs=", ".join(map(str, LRS)), batch=batch))
    canned = LocalPool(functools.partial(Canned, result))
    baselines = {task.key: 1.0 for task in TASKS}
    started = time.perf_counter()
    score_programs(canned, config, encoding, simple, TASKS, baselines)
    out[f"encode + score ({len(TASKS)} tasks, results ready)"] = \
        (time.perf_counter() - started) / n

    # dedupe: two dicts (canonical hash -> id, fingerprint -> id), one entry each per
    # evaluated candidate: memory per entry (fresh key string and id) with tracemalloc on a
    # table of 100k entries, and the time of a lookup (half hits, half misses)
    width = len(hashes[0])
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = {f"{i:0{width}x}": 10**6 + i for i in range(100_000)}
    per_entry = (tracemalloc.get_traced_memory()[0] - before) / len(table)
    tracemalloc.stop()
    lookups = hashes + [f"{i:0{width}x}" for i in range(len(hashes))]
    started = time.perf_counter()
    for key in lookups:
        table.get(key)
    out["dedupe lookup (dict)"] = (time.perf_counter() - started) / len(lookups)
    out[f"dedupe bytes per entry (one dict, {width}-char keys)"] = per_entry

    # archive: one generation of n candidates with 2 training scores each (100-point curves)
    with tempfile.TemporaryDirectory(prefix="disco-bench-") as tmp:
        store = RunStore.create(Path(tmp) / "run", "seed = 0\n")
        candidates = [CandidateRecord(id=i, generation=0, parent_id=None, kind="program",
                                      text=to_text(c), hash=hashes[i], fingerprint=hashes[i],
                                      fitness=0.1, status="ok", reason=None)
                      for i, c in enumerate(children)]
        scores = [ScoreRecord(candidate_id=i, task=t.key, score=0.1, loss=0.5, lr=0.03,
                              curve=np.linspace(1, 0, 100)) for i in range(n) for t in TASKS]
        started = time.perf_counter()
        store.add_generation(0, candidates, scores)
        out["archive (1 transaction, 2 scores each)"] = (time.perf_counter() - started) / n
        store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per pool")
    parser.add_argument("--items", type=int, default=8, help="work items per round")
    parser.add_argument("--batch", type=int, default=16, help="programs per work item")
    parser.add_argument("--repeats", type=int, default=25, help="maps in the dispatch test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    cores = os.cpu_count() or 1
    start_ray(None, num_cpus=cores)
    items, _ = generation_items(args.items, args.batch, args.seed)
    print(f"work: {len(items)} ProgramsItems of {args.batch} programs on "
          f"{' and '.join(t.key for t in TASKS)}; {SEEDS} seeds x {len(LRS)} lrs; "
          f"{cores} cores; Ray in-process", flush=True)
    t = throughput(items, args.rounds, cores)
    result = Evaluator(MAX_STATEMENTS)(items[0])  # warm by now
    item_bytes = len(pickle.dumps(items[0]))
    result_bytes = len(pickle.dumps(result))
    print(f"pickled sizes: item {item_bytes} B ({item_bytes / args.batch:.0f} B per program), "
          f"result {result_bytes} B ({result_bytes / args.batch:.0f} B per program)")

    print("\n1. one generation's items, median of "
          f"{args.rounds} rounds each (Ray and local rounds alternate)")
    print("   compile + first item, in-process: "
          + ", ".join(f"{k} {v:.1f} s" for k, v in t["local_compile"].items())
          + f"; a warm item: {t['local_item']:.2f} s")
    print(f"   local (LocalPool, 1 evaluator in this process): {t['local_round']:.2f} s "
          f"per round, {len(items) / t['local_round']:.2f} items/s")
    for c in t["configs"]:
        note = "" if c["cpus"] >= 1 else f" (oversubscribed: {c['cpus']:g} CPU each)"
        compile_s = ", ".join(f"{k} {v:.1f} s" for k, v in c["compile"].items())
        print(f"   ray, {c['actors']} actor(s) x {c['cpus']:g} CPU{note}: {c['round']:.2f} s "
              f"per round, {len(items) / c['round']:.2f} items/s; vs local in the same "
              f"rounds: {c['local_round'] / c['round']:.2f}x")
        print(f"      compile per actor per task shape (all actors at once): {compile_s}")
    base = t["configs"][0]["round"]
    print("   scaling against 1 actor: " + ", ".join(
        f"{c['actors']} actors {base / c['round']:.2f}x" for c in t["configs"][1:]), flush=True)

    d = dispatch(items, result, args.repeats)
    print(f"\n2. dispatch overhead: a canned evaluator, {args.repeats} maps of {len(items)} "
          "real items (real-sized results)")
    print(f"   direct call: {1e6 * d['direct']:.1f} us per item")
    for actors in (1, 2):
        per = d[f"pool{actors}"]
        print(f"   pool.map, {actors} actor(s): {1e3 * per:.2f} ms per item "
              f"({per / d['direct']:.0f}x a direct call; {100 * per / t['local_item']:.2f}% of "
              f"a real item's {t['local_item']:.2f} s); tiny items (int -> same result): "
              f"{1e3 * d[f'pool{actors}_tiny']:.2f} ms")

    b = bookkeeping(512, args.seed, result, args.batch)
    print("\n3. driver bookkeeping per candidate (512 candidates)")
    for name, value in b.items():
        if "bytes" in name:
            print(f"   {name}: {value:.0f} B")
        else:
            print(f"   {name}: {1e6 * value:.1f} us")
    per_candidate = sum(v for k, v in b.items() if "bytes" not in k)
    print(f"   total: {1e3 * per_candidate:.2f} ms per candidate on the driver")
    ray.shutdown()


if __name__ == "__main__":
    main()
