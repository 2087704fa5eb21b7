"""Successive halving in the funnel (`[screen] keep`) vs the plain funnel, same config and seed.

Runs the small program search of bench/search.py twice in this process, in-process
(`LocalPool`, one evaluator shared by both), generation by generation in turn (the first to
go alternating) so that a noisy shared machine slows both alike:

- plain: `[screen] keep = 1.0`, every child that passes `min_fitness` trains on the training
  tasks (today's funnel);
- halving: `[screen] keep = --keep` (default 0.25), only the best ceil(keep * new children)
  by screen fitness do.

The training tasks' horizon is set to --horizon (default 2000; the screen task keeps 30
steps): halving pays where a full evaluation costs many screens, as in
examples/optimizer_search.toml, and at bench/search.py's 100 steps a generation is mostly the
driver's bookkeeping. `cluster.batch_size` is set to --batch (default 1, so that the work done
is the programs trained): work items are padded to the batch size, so with a batch as large as
a generation's children the few kept programs would cost a full item and hide the saving (on
a cluster, size batch_size to the kept count).

Compile caches are warmed first (every task shape), then generation 0 runs untimed (it also
tunes the AdamW baselines). Prints, per configuration, over the timed generations: children
considered (asked for and not cached) per hour, candidates fully evaluated (trained on the
training tasks) per hour, seconds per generation, and the best training fitness reached over
the whole run; and the ratios halving / plain. Rates are from a shared machine: read the
ratios. The two searches part ways at the first cut (different members, so different children
and cache hits), and the best fitness is one seed's. About 2 minutes on 2 shared cores.

    python bench/halving.py [--generations 40] [--keep 0.25] [--horizon 2000] [--batch 1]
                            [--seed 0]
"""

from __future__ import annotations

import argparse
import functools
import math
import tempfile
import time
from pathlib import Path

from disco_rules.api import create_run
from disco_rules.cluster.local import LocalPool
from disco_rules.discovery.config import parse_config, warm_start_paths
from disco_rules.discovery.evaluator import Evaluator
from disco_rules.discovery.plan import load_warm_start
from disco_rules.discovery.search.engine import make_engine
from disco_rules.discovery.status import CandidateStatus
from disco_rules.dsl.interpreter import Encoding

from search import CONFIG, Run, TimedPool, archive, run_in_turn, warmup_items


def config_text(seed: int, generations: int, keep: float, horizon: int, batch: int) -> str:
    """bench/search.py's config with `[screen] keep`, the training tasks' horizon and the
    batch size set."""
    text = CONFIG.format(seed=seed, generations=generations, actors=1)
    for old, new in [*((f'{{ family = "{family}", horizon = 100 }},',
                        f'{{ family = "{family}", horizon = {horizon} }},')
                       for family in ("mlp_regression", "quadratic")),
                     ("min_fitness = -3.0\n", f"min_fitness = -3.0\nkeep = {keep!r}\n"),
                     ("batch_size = 16\n", f"batch_size = {batch}\n")]:
        if old not in text:
            raise SystemExit(f"bench/search.py's config no longer has {old.strip()!r}")
        text = text.replace(old, new)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=40,
                        help="generations per run; generation 0 is the untimed warm-up")
    parser.add_argument("--keep", type=float, default=0.25, help="the halving run's screen.keep")
    parser.add_argument("--horizon", type=int, default=2000, help="the training tasks' steps")
    parser.add_argument("--batch", type=int, default=1, help="cluster.batch_size of both runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.generations < 2:
        parser.error("--generations: need at least 2 (generation 0 is untimed)")

    texts = {name: config_text(args.seed, args.generations, keep, args.horizon, args.batch)
             for name, keep in (("plain", 1.0), ("halving", args.keep))}
    configs = {name: parse_config(text) for name, text in texts.items()}
    config = configs["plain"]
    encoding = Encoding(max_statements=config.population.max_statements)
    warm = load_warm_start(warm_start_paths(config, Path.cwd()), encoding)
    pool = LocalPool(functools.partial(Evaluator, config.population.max_statements))

    with tempfile.TemporaryDirectory(prefix="disco-halving-") as tmp:
        runs = []
        for name, text in texts.items():
            store = create_run(Path(tmp) / name, "bench", text, warm)
            timed = TimedPool(pool)
            search = make_engine(configs[name], store, timed)
            search.restore()
            runs.append(Run(name, search, store, timed))
        plain, halving = runs
        try:
            started = time.perf_counter()
            pool.map(warmup_items(config, encoding, warm))  # every task shape, compiled once
            warm_seconds = time.perf_counter() - started
            run_in_turn(runs, args.generations)
            records = {run.name: archive(run.store) for run in runs}
        finally:
            for run in runs:
                run.store.close()

    timed_gens = args.generations - 1
    print(f"\nsearch: bench/search.py's config, seed {args.seed}, {args.generations} generations "
          f"(0 untimed), {config.population.children} children a generation, training horizon "
          f"{args.horizon} (screen 30), batch {args.batch}, in-process")
    print(f"warm-up {warm_seconds:.1f} s; generation 0: plain {plain.cold_seconds:.1f} s, "
          f"halving {halving.cold_seconds:.1f} s (compiles and baselines: the first pays)")
    rows: dict[str, list[float]] = {}
    for run in runs:
        timed = [r for r in records[run.name] if r.generation > 0]
        full = sum(r.status not in (CandidateStatus.SCREENED, CandidateStatus.CACHED)
                   for r in timed)
        cut = sum(bool(r.reason) and r.reason.startswith("screen rank ") for r in timed)
        best = max((r.fitness for r in records[run.name] if r.status == CandidateStatus.OK),
                   default=-math.inf)
        hours = run.seconds / 3600
        rows[run.name] = [run.evaluated / hours, full / hours, run.seconds / timed_gens, best]
        print(f"  {run.name} (keep {configs[run.name].screen.keep:g}): {run.evaluated} children "
              f"considered, {full} fully evaluated, {cut} cut by rank in {run.seconds:.1f} s; "
              f"pool.map {100 * run.timed.seconds / run.seconds:.0f}% of the time")
    plain_row, halving_row = rows["plain"], rows["halving"]
    print(f"\n  {'':26s}{'plain':>10s}{'halving':>10s}  halving / plain")
    for i, (label, form) in enumerate([("children considered / h", ".0f"),
                                       ("fully evaluated / h", ".0f"),
                                       ("seconds / generation", ".3f"),
                                       ("best training fitness", ".4f")]):
        a, b = halving_row[i], plain_row[i]
        compared = f"{a - b:+.4f} (difference)" if i == 3 else \
            (f"{a / b:.2f}x" if b else "n/a")
        print(f"  {label:26s}{b:>10{form}}{a:>10{form}}  {compared}")

if __name__ == "__main__":
    main()
